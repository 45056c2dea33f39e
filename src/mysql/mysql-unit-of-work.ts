/**
 * A unit of work on one MariaDB/MySQL transaction, through a mysql2 pool: your repositories get
 * the transaction's executor (`?` placeholders), and (with an `outbox`) integration events are
 * appended to the outbox in that same transaction at commit. Begin one per handler invocation:
 * `transient(() => MysqlUnitOfWork.begin({ … }))`.
 */
import {
  type OpenTransaction,
  type Repository,
  SqlUnitOfWork,
  type SqlUnitOfWorkOptions,
} from '../index.js'
import { fromMysql2, type MysqlPool, type MysqlPoolConnection } from './mysql-client.js'

/** Options of {@link MysqlUnitOfWork.begin}. */
export interface MysqlUnitOfWorkOptions<
  R extends Record<string, Repository>,
> extends SqlUnitOfWorkOptions<R> {
  readonly pool: MysqlPool
}

export class MysqlUnitOfWork<R extends Record<string, Repository>> extends SqlUnitOfWork<R> {
  /** Takes a connection from the pool and starts a transaction on it. */
  static async begin<R extends Record<string, Repository>>(
    options: MysqlUnitOfWorkOptions<R>,
  ): Promise<MysqlUnitOfWork<R>> {
    const connection = await options.pool.getConnection()
    try {
      await connection.beginTransaction()
    } catch (error) {
      connection.destroy()
      throw error
    }
    return new MysqlUnitOfWork(mysqlTransaction(connection), options)
  }
}

function mysqlTransaction(connection: MysqlPoolConnection): OpenTransaction {
  const finish = async (end: () => Promise<void>): Promise<void> => {
    try {
      await end()
      connection.release()
    } catch (error) {
      // The connection's state is unknown: destroy it rather than return it to the pool.
      connection.destroy()
      throw error
    }
  }
  return {
    executor: fromMysql2(connection),
    commit: () => finish(() => connection.commit()),
    rollback: () => finish(() => connection.rollback()),
  }
}
