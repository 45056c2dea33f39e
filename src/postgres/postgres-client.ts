/**
 * The part of `pg` Switchyard calls, as structural types (no import of `pg`), and `fromPg`, which
 * turns a pool, a pool client or a client inside the user's own `BEGIN` into a `SqlExecutor`.
 */
import type { SqlExecutor, SqlResult } from '../index.js'

/** Anything with pg's `query(text, values)`: a `Pool`, a `PoolClient` or a `Client`. */
export interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** A `pg.Pool`: queries, and hands out clients for transactions and LISTEN. */
export interface PgPool extends PgQueryable {
  connect(): Promise<PgPoolClient>
}

/** A client checked out of a pool. */
export interface PgPoolClient extends PgQueryable {
  release(error?: Error | boolean): void
  on(
    event: 'notification',
    listener: (message: { channel: string; payload?: string | undefined }) => void,
  ): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  removeListener(event: 'error', listener: (error: Error) => void): unknown
}

/**
 * A `SqlExecutor` over a pg pool or client. Pass the client of your open transaction to append to
 * the outbox inside it.
 *
 * @example
 * const client = await pool.connect()
 * await client.query('BEGIN')
 * await outbox.append(fromPg(client), records)
 * await client.query('COMMIT')
 */
export function fromPg(queryable: PgQueryable): SqlExecutor {
  return {
    async query<R extends object>(
      sql: string,
      params: readonly unknown[] = [],
    ): Promise<SqlResult<R>> {
      const result = await queryable.query(sql, [...params])
      return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 }
    },
  }
}
