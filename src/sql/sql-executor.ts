/**
 * The one-method SQL port the stores talk through (pg-boss style): `query(sql, params)` returning
 * `{ rows, rowCount }`. Wrappers (`fromPg`, `fromPglite`, `fromMysql2`) adapt a driver's pool,
 * client or transaction, so `outbox.append(tx, …)` runs inside the user's own transaction.
 *
 * Contract: `query` runs one statement with positional parameters in the dialect's placeholder
 * style (`$1` for PostgreSQL and PGlite, `?` for MySQL/MariaDB); it never begins or commits a
 * transaction by itself; a driver error rejects the promise unchanged (stores wrap it with context).
 * The optional third argument carries hints (a statement name to prepare under) that an executor
 * may ignore.
 */
import { ConfigurationError } from '../errors.js'

/** Rows and the count of rows a statement affected. */
export interface SqlResult<R> {
  readonly rows: R[]
  readonly rowCount: number
}

/** Hints that come with one statement; an executor may ignore every one of them. */
export interface QueryOptions {
  /**
   * A name for a statement that is run again and again with the same text. An executor whose
   * driver keeps prepared statements per connection (`fromPg`) parses and plans it once per
   * connection under this name, instead of on every call. A name always comes with the same text.
   */
  readonly name?: string
}

/** Runs one SQL statement. */
export interface SqlExecutor {
  query<R extends object = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<SqlResult<R>>
}

/** What a database can do, for the stores to adapt to (Kysely-style capability flags). */
export interface DialectCapabilities {
  /** `FOR UPDATE SKIP LOCKED`. */
  readonly skipLocked: boolean
  /** `INSERT/UPDATE … RETURNING`. */
  readonly returning: boolean
  /** Several connections at once (PGlite has one). */
  readonly concurrentConnections: boolean
  /** `LISTEN` / `NOTIFY`. */
  readonly listenNotify: boolean
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/

/**
 * Checks a schema or table name at configuration time: a letter or underscore, then letters,
 * digits or underscores, 63 bytes at most (PostgreSQL's limit; MySQL allows 64). Quotes, `%`,
 * spaces and other characters are refused, never escaped, so no name can become SQL.
 */
export function validateIdentifier(name: unknown, what: string): string {
  if (typeof name !== 'string' || !IDENTIFIER.test(name) || Buffer.byteLength(name) > 63) {
    throw new ConfigurationError(
      `${what} must be an SQL identifier: a letter or _, then letters, digits or _, at most 63 bytes; got ${JSON.stringify(name)}`,
      { details: { option: what } },
    )
  }
  return name
}

/**
 * @internal The mark of an executor whose transaction has not sent `BEGIN` yet
 * (`PostgresUnitOfWork` inside a consumer's delivery): `executor[BEGIN_WITH](statement)` begins
 * the transaction with `statement` in the same round trip (one simple-query message, so the
 * statement has no parameters: literals only) and resolves with the statement's result. It
 * answers undefined once the transaction has begun: then run the statement as usual.
 */
export const BEGIN_WITH: unique symbol = Symbol.for('switchyard.begin-with')

/** @internal See {@link BEGIN_WITH}. */
export interface BeginWith {
  [BEGIN_WITH](statement: string): Promise<SqlResult<Record<string, unknown>>> | undefined
}
