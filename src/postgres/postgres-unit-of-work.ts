/**
 * A unit of work on one PostgreSQL transaction: your repositories get the transaction's executor,
 * and (with an `outbox`) integration events are appended to the outbox in that same transaction at
 * commit. Begin one per handler invocation: `transient(() => PostgresUnitOfWork.begin({ … }))`.
 */
import {
  type AggregateRoot,
  type OutboxWriter,
  type Repository,
  type SqlExecutor,
  UnitOfWork,
} from '../index.js'
import { fromPg, type PgPool, type PgPoolClient } from './postgres-client.js'

/** Options of {@link PostgresUnitOfWork.begin}. */
export interface PostgresUnitOfWorkOptions<R extends Record<string, Repository>> {
  readonly pool: PgPool
  /** Makes the repositories of this unit of work, given the transaction's executor. */
  readonly repositories: (tx: SqlExecutor) => R
  /** Appends integration events to the outbox inside the transaction. */
  readonly outbox?: OutboxWriter
}

export class PostgresUnitOfWork<R extends Record<string, Repository>> extends UnitOfWork {
  /** The transaction's executor, for your own statements. */
  readonly tx: SqlExecutor
  readonly repositories: R
  #client: PgPoolClient | undefined

  private constructor(client: PgPoolClient, options: PostgresUnitOfWorkOptions<R>) {
    super()
    this.#client = client
    this.tx = fromPg(client)
    this.repositories = options.repositories(this.tx)
    // Repositories built on TrackingRepository report what they track, so `added` hooks run.
    for (const repository of Object.values(this.repositories)) {
      if ('onTrack' in repository)
        (repository as { onTrack: unknown }).onTrack = (aggregate: AggregateRoot) =>
          this.tracked(aggregate)
    }
    options.outbox?.attach(this, this.tx)
  }

  /** Checks a client out of the pool and begins a transaction on it. */
  static async begin<R extends Record<string, Repository>>(
    options: PostgresUnitOfWorkOptions<R>,
  ): Promise<PostgresUnitOfWork<R>> {
    const client = await options.pool.connect()
    try {
      await client.query('BEGIN')
    } catch (error) {
      client.release(error instanceof Error ? error : true)
      throw error
    }
    return new PostgresUnitOfWork(client, options)
  }

  protected *participants(): Iterable<Repository> {
    yield* Object.values(this.repositories)
  }

  protected async commitTransaction(): Promise<void> {
    await this.#finish('COMMIT')
  }

  protected async rollbackTransaction(): Promise<void> {
    await this.#finish('ROLLBACK')
  }

  async #finish(statement: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    const client = this.#client
    if (client === undefined) return
    this.#client = undefined
    try {
      await client.query(statement)
      client.release()
    } catch (error) {
      // The connection's state is unknown: destroy it rather than return it to the pool.
      client.release(error instanceof Error ? error : true)
      throw error
    }
  }
}
