/**
 * The outbox on PostgreSQL through your own `pg` pool (the SQL is in sql/postgres-outbox-engine.ts).
 */
import { ConfigurationError, type WakeUpSource } from '../index.js'
import { PostgresInboxEngine, type PostgresInboxOptions } from '../sql/postgres-inbox-engine.js'
import { PostgresOutboxEngine, type PostgresOutboxOptions } from '../sql/postgres-outbox-engine.js'
import { fromPg, type PgPool, type PgQueryable } from './postgres-client.js'

export type { PostgresInboxOptions, PostgresOutboxOptions }

/** Options of {@link PostgresOutboxStore}. */
export interface PostgresOutboxStoreOptions extends PostgresOutboxOptions {
  /** Your `pg` Pool: the store's own statements (claims, marks) run on it, and LISTEN on one client of it. */
  readonly pool: PgQueryable | PgPool
}

/**
 * The outbox on PostgreSQL through `pg`. Append inside your transaction with
 * `store.append(fromPg(client), records)`; relays claim and mark through the pool, and wake on
 * NOTIFY (`listen`) when the pool can hand out a client.
 */
export class PostgresOutboxStore extends PostgresOutboxEngine implements WakeUpSource {
  readonly #pool: PgQueryable | PgPool

  constructor(options: PostgresOutboxStoreOptions) {
    super(fromPg(options.pool), options)
    this.#pool = options.pool
  }

  /**
   * Holds one pooled client in LISTEN and calls `wake` on each notification. A hint only: a lost
   * connection is not re-established: the relay then wakes on its poll interval only.
   */
  async listen(wake: () => void): Promise<() => Promise<void>> {
    const pool = this.#pool
    if (!('connect' in pool) || typeof pool.connect !== 'function') {
      throw new ConfigurationError(
        'listen() needs a pg Pool (something with connect()); polling works without it',
      )
    }
    const client = await pool.connect()
    const channel = this.names.channel
    let broken = false
    client.on('error', () => {
      broken = true // the relay keeps polling; released below
    })
    client.on('notification', (message) => {
      if (message.channel === channel) wake()
    })
    await client.query(`LISTEN "${channel}"`)
    return async () => {
      if (!broken) await client.query(`UNLISTEN "${channel}"`).catch(() => undefined)
      client.release(broken)
    }
  }
}

/** Options of {@link PostgresInboxStore}. */
export interface PostgresInboxStoreOptions extends PostgresInboxOptions {
  /** Your `pg` Pool (for `ensureSchema` and `cleanup`); `tryRecord` runs on the transaction you pass. */
  readonly pool: PgQueryable
}

/** The inbox on PostgreSQL: record each (consumer, message id) in the consumer's transaction. */
export class PostgresInboxStore extends PostgresInboxEngine {
  constructor(options: PostgresInboxStoreOptions) {
    super(fromPg(options.pool), options)
  }
}
