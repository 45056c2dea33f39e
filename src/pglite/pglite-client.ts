/**
 * The part of `@electric-sql/pglite` Switchyard calls, as structural types (no import of the
 * driver), and `fromPglite`, which turns a PGlite instance or one of its transactions into a
 * `SqlExecutor`.
 */
import type { SqlExecutor, SqlResult } from '../index.js'

/** Anything with PGlite's `query`: the database, or a transaction inside `db.transaction(...)`. */
export interface PgliteQueryable {
  query<T>(sql: string, params?: unknown[]): Promise<{ rows: T[]; affectedRows?: number }>
}

/** A PGlite database. */
export interface PgliteDatabase extends PgliteQueryable {
  transaction<T>(callback: (tx: PgliteQueryable) => Promise<T>): Promise<T>
  listen(channel: string, callback: (payload: string) => void): Promise<() => Promise<void>>
}

/**
 * A `SqlExecutor` over PGlite. Pass the `tx` of `db.transaction(async (tx) => …)` to append to the
 * outbox inside it.
 */
export function fromPglite(queryable: PgliteQueryable): SqlExecutor {
  return {
    async query<R extends object>(
      sql: string,
      params: readonly unknown[] = [],
    ): Promise<SqlResult<R>> {
      const result = await queryable.query<R>(sql, [...params])
      return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length }
    },
  }
}
