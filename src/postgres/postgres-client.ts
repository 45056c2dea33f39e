/**
 * The part of `pg` Switchyard calls, as structural types (no import of `pg`), and `fromPg`, which
 * turns a pool, a pool client or a client inside the user's own `BEGIN` into a `SqlExecutor`.
 */
import type { QueryOptions, SqlExecutor, SqlResult } from '../index.js'

/** A query with a name: pg prepares it once per connection and reuses the plan. */
export interface PgNamedQuery {
  readonly name: string
  readonly text: string
  readonly values: unknown[]
}

/**
 * Anything with pg's `query(text, values)`, which also takes `query({ name, text, values })`: a
 * `Pool`, a `PoolClient` or a `Client`.
 */
export interface PgQueryable {
  query(
    textOrConfig: string | PgNamedQuery,
    values?: unknown[],
  ): Promise<{ rows: unknown[]; rowCount: number | null }>
}

/** Options of {@link fromPg}. */
export interface FromPgOptions {
  /**
   * Run the statements that come with a name (the stores' own, run again and again) as pg named
   * statements, parsed and planned once per connection. Default true. Turn it off for a
   * connection pooler that cannot keep prepared statements (PgBouncer in transaction mode before
   * 1.21, or without `max_prepared_statements`), or for a `query` of your own that takes text only.
   */
  readonly prepare?: boolean
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
  removeListener(
    event: 'notification',
    listener: (message: { channel: string; payload?: string | undefined }) => void,
  ): unknown
}

/**
 * A `SqlExecutor` over a pg pool or client. Pass the client of your open transaction to append to
 * the outbox inside it. Statements the stores run often come with a name, and run as pg named
 * (prepared) statements, parsed and planned once per connection (see `options.prepare`).
 *
 * @example
 * const client = await pool.connect()
 * await client.query('BEGIN')
 * await outbox.append(fromPg(client), records)
 * await client.query('COMMIT')
 */
export function fromPg(queryable: PgQueryable, options: FromPgOptions = {}): SqlExecutor {
  const prepare = options.prepare ?? true
  return {
    async query<R extends object>(
      sql: string,
      params: readonly unknown[] = [],
      hints?: QueryOptions,
    ): Promise<SqlResult<R>> {
      return pgResult<R>(
        await pgQuery(queryable, sql, [...params], prepare ? hints?.name : undefined),
      )
    },
  }
}

/** @internal pg's answer to one statement. */
export type PgResult = Awaited<ReturnType<PgQueryable['query']>>

/** @internal Runs a statement with its values, as a pg named statement when it has a `name`. */
export function pgQuery(
  queryable: PgQueryable,
  sql: string,
  values: unknown[],
  name: string | undefined,
): Promise<PgResult> {
  return name === undefined
    ? queryable.query(sql, values)
    : queryable.query({ name, text: sql, values })
}

/** @internal A pg result as the port's `SqlResult`. */
export const pgResult = <R>(result: PgResult): SqlResult<R> => ({
  rows: result.rows as R[],
  rowCount: result.rowCount ?? 0,
})
