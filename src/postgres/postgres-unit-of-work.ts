/**
 * A unit of work on one PostgreSQL transaction: your repositories get the transaction's executor,
 * and (with an `outbox`) integration events are appended to the outbox in that same transaction at
 * commit. Begin one per handler invocation: `transient(() => PostgresUnitOfWork.begin({ … }))`.
 */
import {
  type OpenTransaction,
  type Repository,
  SqlUnitOfWork,
  type SqlUnitOfWorkOptions,
} from '../index.js'
import { fromPg, type PgPool, type PgPoolClient } from './postgres-client.js'

/** Options of {@link PostgresUnitOfWork.begin}. */
export interface PostgresUnitOfWorkOptions<
  R extends Record<string, Repository>,
> extends SqlUnitOfWorkOptions<R> {
  readonly pool: PgPool
}

export class PostgresUnitOfWork<R extends Record<string, Repository>> extends SqlUnitOfWork<R> {
  /** Checks a client out of the pool and begins a transaction on it. */
  static async begin<R extends Record<string, Repository>>(
    options: PostgresUnitOfWorkOptions<R>,
  ): Promise<PostgresUnitOfWork<R>> {
    const client = await options.pool.connect()
    // pg-pool stops listening to a client's errors while it is checked out: a connection lost
    // now would be an uncaught 'error' event that kills the process. The failed query rejects
    // anyway, so the listener only has to exist; it goes before the client goes back.
    const ignore = (): void => undefined
    client.on('error', ignore)
    try {
      await client.query('BEGIN')
    } catch (error) {
      client.removeListener('error', ignore)
      client.release(error instanceof Error ? error : true)
      throw error
    }
    return new PostgresUnitOfWork(pgTransaction(client, ignore), options)
  }
}

function pgTransaction(client: PgPoolClient, onError: (error: Error) => void): OpenTransaction {
  const finish = async (statement: 'COMMIT' | 'ROLLBACK'): Promise<void> => {
    try {
      await client.query(statement)
      client.removeListener('error', onError)
      client.release()
    } catch (error) {
      // The connection's state is unknown: destroy it rather than return it to the pool.
      client.removeListener('error', onError)
      client.release(error instanceof Error ? error : true)
      throw error
    }
  }
  return {
    executor: fromPg(client),
    commit: () => finish('COMMIT'),
    rollback: () => finish('ROLLBACK'),
  }
}
