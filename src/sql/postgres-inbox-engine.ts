/**
 * @internal The inbox in PostgreSQL's dialect (the `pg` and PGlite inbox stores). The primary key
 * (consumer, message_id) makes a racing duplicate wait for the first transaction, then conflict.
 *
 * When the transaction has not begun yet (`BEGIN_WITH`: a `PostgresUnitOfWork` in a consumer's
 * delivery), the record is sent with its `BEGIN`, in one round trip; that message has no
 * parameters, so the two values go as literals (postgres-literal.ts). A value a literal cannot
 * hold (a NUL character, or not text) takes the parameterized statement, which fails as it did.
 */
import type { InboxStore } from '../outbox/inbox-store.js'
import { lockedDdl } from './postgres-ddl.js'
import { pgLiteralSafe, pgTextLiteral } from './postgres-literal.js'
import { BEGIN_WITH, type BeginWith, type SqlExecutor, validateIdentifier } from './sql-executor.js'
import { storeOperation } from './store-operation.js'

/** Where the inbox lives. */
export interface PostgresInboxOptions {
  /** Default `switchyard`. */
  readonly schema?: string
  /** Default `inbox`. */
  readonly table?: string
}

/** The DDL of the inbox, for users who run their own migrations. */
export function inboxSchemaSql(options: PostgresInboxOptions = {}): string[] {
  const schema = validateIdentifier(options.schema ?? 'switchyard', 'schema')
  const table = validateIdentifier(options.table ?? 'inbox', 'table')
  return [
    `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
    `CREATE TABLE IF NOT EXISTS "${schema}"."${table}" (
  consumer    text NOT NULL,
  message_id  text NOT NULL,
  recorded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id)
)`,
    `CREATE INDEX IF NOT EXISTS "${table.slice(0, 40)}_recorded_at" ON "${schema}"."${table}" (recorded_at)`,
  ]
}

const literal = (value: unknown): value is string =>
  typeof value === 'string' && pgLiteralSafe(value)
const inserted = ({ rowCount }: { rowCount: number }): boolean => rowCount === 1

export class PostgresInboxEngine implements InboxStore {
  readonly #table: string
  constructor(
    private readonly db: SqlExecutor,
    private readonly options: PostgresInboxOptions,
  ) {
    this.#table = `"${validateIdentifier(options.schema ?? 'switchyard', 'schema')}"."${validateIdentifier(options.table ?? 'inbox', 'table')}"`
  }

  async ensureSchema(): Promise<void> {
    const schema = `"${validateIdentifier(this.options.schema ?? 'switchyard', 'schema')}"`
    // The same lock as the outbox's DDL for this schema: both may create the schema at once.
    await this.#run('ensureSchema', lockedDdl(schema, inboxSchemaSql(this.options)), [], this.db)
  }

  tryRecord(tx: SqlExecutor, consumer: string, messageId: string): Promise<boolean> {
    const begin = (tx as Partial<BeginWith>)[BEGIN_WITH]
    if (begin !== undefined && literal(consumer) && literal(messageId)) {
      const statement = this.#insert(`${pgTextLiteral(consumer)}, ${pgTextLiteral(messageId)}`)
      let recorded: Promise<{ rowCount: number }> | undefined
      try {
        recorded = begin.call(tx, statement)
      } catch (error) {
        recorded = Promise.reject(error)
      }
      if (recorded !== undefined)
        return recorded.then(inserted, (error: unknown) =>
          storeOperation('Inbox', this.#table, 'tryRecord', () => Promise.reject(error)),
        )
    }
    return this.#run('tryRecord', this.#insert('$1, $2'), [consumer, messageId], tx).then(inserted)
  }

  /** The record's statement, with `values` (two literals, or two parameters). */
  #insert(values: string): string {
    return `INSERT INTO ${this.#table} (consumer, message_id) VALUES (${values}) ON CONFLICT DO NOTHING`
  }

  async cleanup(olderThanMs: number, batchSize = 1000): Promise<number> {
    let total = 0
    for (;;) {
      const { rowCount } = await this.#run(
        'cleanup',
        `DELETE FROM ${this.#table} WHERE ctid IN (
           SELECT ctid FROM ${this.#table} WHERE recorded_at < now() - make_interval(secs => $1::float8 / 1000) LIMIT $2)`,
        [olderThanMs, batchSize],
        this.db,
      )
      total += rowCount
      if (rowCount < batchSize) return total
    }
  }

  #run(
    operation: string,
    sql: string,
    params: readonly unknown[],
    executor: SqlExecutor,
  ): Promise<{ rowCount: number }> {
    return storeOperation('Inbox', this.#table, operation, () => executor.query(sql, params))
  }
}
