/**
 * The part of `mysql2/promise` Switchyard calls, as structural types (no import of the driver),
 * and `fromMysql2`, which turns a pool, a pool connection or a connection inside your own
 * transaction into a `SqlExecutor`.
 */
import type { SqlExecutor, SqlResult } from '../index.js'

/** Anything with mysql2's promise `query(sql, values)`: a Pool, a PoolConnection or a Connection. */
export interface MysqlQueryable {
  query(sql: string, values?: unknown): Promise<[unknown, unknown]>
}

/** A mysql2/promise Pool. */
export interface MysqlPool extends MysqlQueryable {
  getConnection(): Promise<MysqlPoolConnection>
}

/** A connection checked out of a pool. */
export interface MysqlPoolConnection extends MysqlQueryable {
  beginTransaction(): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
  release(): void
  destroy(): void
}

/**
 * A `SqlExecutor` over mysql2. Pass the connection of your open transaction to append to the
 * outbox inside it. Statements use `?` placeholders.
 */
export function fromMysql2(queryable: MysqlQueryable): SqlExecutor {
  return {
    async query<R extends object>(
      sql: string,
      params: readonly unknown[] = [],
    ): Promise<SqlResult<R>> {
      const [result] = await queryable.query(sql, [...params])
      if (Array.isArray(result)) return { rows: result as R[], rowCount: result.length }
      return { rows: [], rowCount: (result as { affectedRows?: number }).affectedRows ?? 0 }
    },
  }
}
