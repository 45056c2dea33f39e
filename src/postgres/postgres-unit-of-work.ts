/**
 * A unit of work on one PostgreSQL transaction: your repositories get the transaction's executor,
 * and (with an `outbox`) integration events are appended to the outbox in that same transaction at
 * commit. Begin one per handler invocation: `transient(() => PostgresUnitOfWork.begin({ … }))`.
 *
 * Inside a consumer's delivery (a `Consumer` with an inbox), `BEGIN` is not sent on its own: it
 * goes out with the transaction's first statement, the inbox record, in one simple-query message
 * (`BEGIN; INSERT INTO inbox …`), which saves a round trip per message. The transaction is the
 * same; a unit of work that runs no statement at all then sends neither `BEGIN` nor `COMMIT`.
 */
import { deliveryScope } from '../core/delivery-scope.js'
import {
  type OpenTransaction,
  type QueryOptions,
  type Repository,
  type SqlExecutor,
  type SqlResult,
  SqlUnitOfWork,
  type SqlUnitOfWorkOptions,
} from '../index.js'
import { BEGIN_WITH, type BeginWith } from '../sql/sql-executor.js'
import {
  type PgPool,
  type PgPoolClient,
  pgQuery,
  type PgResult,
  pgResult,
} from './postgres-client.js'

/** Options of {@link PostgresUnitOfWork.begin}. */
export interface PostgresUnitOfWorkOptions<
  R extends Record<string, Repository>,
> extends SqlUnitOfWorkOptions<R> {
  readonly pool: PgPool
  /**
   * Run the statements that come with a name (the stores' appends and inbox records) as pg named
   * statements, parsed and planned once per connection, as `fromPg` does. Default true; `false`
   * for a pooler that cannot keep prepared statements.
   */
  readonly prepare?: boolean
}

export class PostgresUnitOfWork<R extends Record<string, Repository>> extends SqlUnitOfWork<R> {
  /**
   * Checks a client out of the pool and begins a transaction on it (inside a consumer's delivery,
   * `BEGIN` travels with the first statement: see the module comment).
   */
  static async begin<R extends Record<string, Repository>>(
    options: PostgresUnitOfWorkOptions<R>,
  ): Promise<PostgresUnitOfWork<R>> {
    const client = await options.pool.connect()
    // pg-pool stops listening to a client's errors while it is checked out: a connection lost
    // now would be an uncaught 'error' event that kills the process. The failed query rejects
    // anyway, so the listener only has to exist; it goes before the client goes back.
    client.on('error', ignore)
    const prepare = options.prepare ?? true
    if (deliveryScope.getStore() !== undefined)
      return new PostgresUnitOfWork(new PgTransaction(client, false, prepare), options)
    try {
      await client.query('BEGIN')
    } catch (error) {
      giveBack(client, error)
      throw error
    }
    return new PostgresUnitOfWork(new PgTransaction(client, true, prepare), options)
  }
}

const NO_PARAMS: readonly unknown[] = []
const ignore = (): void => undefined

/**
 * Returns the client to the pool, without the error listener `begin` added. Given the failure of
 * its last statement (whatever was thrown), the connection's state is unknown, so the pool destroys
 * it rather than hand it out again.
 */
function giveBack(client: PgPoolClient, ...failure: [unknown] | []): void {
  client.removeListener('error', ignore)
  if (failure.length === 0) client.release()
  else client.release(failure[0] instanceof Error ? failure[0] : true)
}

/**
 * `client.query`: a statement of the transaction's own (no parameters) or the user's (with a copy
 * of theirs, as `fromPg` passes them; as a pg named statement when it comes with a `name`).
 * Whatever goes wrong rejects, never throws.
 */
function send(
  client: PgPoolClient,
  sql: string,
  params?: readonly unknown[],
  name?: string,
): Promise<PgResult> {
  try {
    return params === undefined ? client.query(sql) : pgQuery(client, sql, [...params], name)
  } catch (error) {
    return Promise.reject(error)
  }
}

/** The result of the statement sent after `BEGIN` in one message. */
function secondResult(results: unknown): SqlResult<Record<string, unknown>> {
  const result = Array.isArray(results) ? (results[1] as PgResult | undefined) : undefined
  if (result === undefined)
    throw new Error('the driver returned no result for the statement sent with BEGIN')
  return pgResult(result)
}

/**
 * The transaction on one pooled client. Not `begun`: `BEGIN` waits for the first statement, and
 * goes out with it when that statement comes through `BEGIN_WITH` (else just before it).
 * Statements wait until `BEGIN` succeeded, so none ever runs outside the transaction.
 */
class PgTransaction implements OpenTransaction {
  readonly executor: SqlExecutor = new PgExecutor(this)
  readonly #client: PgPoolClient
  /** Undefined until `BEGIN` is sent; then settles with it (rejects if it failed). */
  #beginning: Promise<unknown> | undefined
  /** `BEGIN` succeeded: statements go straight out. */
  #ready: boolean
  /** Named statements run as pg named statements. */
  readonly #prepare: boolean

  constructor(client: PgPoolClient, begun: boolean, prepare: boolean) {
    this.#client = client
    this.#ready = begun
    this.#beginning = begun ? Promise.resolve() : undefined
    this.#prepare = prepare
  }

  query<Row extends object>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<SqlResult<Row>> {
    const name = this.#prepare ? options?.name : undefined
    if (!this.#ready) return this.#queryAfterBegin(sql, params, name)
    return send(this.#client, sql, params ?? NO_PARAMS, name).then(pgResult<Row>)
  }

  beginWith(statement: string): Promise<SqlResult<Record<string, unknown>>> | undefined {
    if (this.#beginning !== undefined) return undefined
    // One simple-query message, two statements: pg answers with one result per statement.
    const begun = send(this.#client, `BEGIN; ${statement}`).then((results) => {
      this.#ready = true
      return secondResult(results)
    })
    this.#beginning = begun // the caller awaits it: a failure is never unhandled
    return begun
  }

  commit(): Promise<void> {
    return this.#finish('COMMIT')
  }

  rollback(): Promise<void> {
    return this.#finish('ROLLBACK')
  }

  async #queryAfterBegin<Row extends object>(
    sql: string,
    params: readonly unknown[] | undefined,
    name: string | undefined,
  ): Promise<SqlResult<Row>> {
    await (this.#beginning ??= send(this.#client, 'BEGIN').then(() => {
      this.#ready = true
    }))
    return pgResult<Row>(await send(this.#client, sql, params ?? NO_PARAMS, name))
  }

  #finish(statement: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    const client = this.#client
    // A failed BEGIN fails the commit (COMMIT would answer ROLLBACK, without an error).
    const sent =
      this.#beginning === undefined
        ? undefined // nothing was sent: there is no transaction to end
        : statement === 'COMMIT' && !this.#ready
          ? this.#beginning.then(() => send(client, statement))
          : send(client, statement)
    if (sent === undefined) {
      giveBack(client)
      return Promise.resolve()
    }
    return sent.then(
      () => giveBack(client),
      (error: unknown) => {
        giveBack(client, error)
        throw error
      },
    )
  }
}

/** The transaction's executor: statements only (the unit of work ends the transaction). */
class PgExecutor implements SqlExecutor, BeginWith {
  readonly #transaction: PgTransaction
  constructor(transaction: PgTransaction) {
    this.#transaction = transaction
  }

  query<Row extends object>(
    sql: string,
    params?: readonly unknown[],
    options?: QueryOptions,
  ): Promise<SqlResult<Row>> {
    return this.#transaction.query(sql, params, options)
  }

  [BEGIN_WITH](statement: string): Promise<SqlResult<Record<string, unknown>>> | undefined {
    return this.#transaction.beginWith(statement)
  }
}
