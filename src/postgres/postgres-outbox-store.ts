/**
 * The outbox on PostgreSQL through your own `pg` pool (the SQL is in sql/postgres-outbox-engine.ts).
 */
import { ConfigurationError, type WakeUpSource } from '../index.js'
import { PostgresInboxEngine, type PostgresInboxOptions } from '../sql/postgres-inbox-engine.js'
import { PostgresOutboxEngine, type PostgresOutboxOptions } from '../sql/postgres-outbox-engine.js'
import { fromPg, type PgPool, type PgPoolClient, type PgQueryable } from './postgres-client.js'

export type { PostgresInboxOptions, PostgresOutboxOptions }

/** Options of {@link PostgresOutboxStore}. */
export interface PostgresOutboxStoreOptions extends PostgresOutboxOptions {
  /** Your `pg` Pool: the store's own statements (claims, marks) run on it, and LISTEN on one client of it. */
  readonly pool: PgQueryable | PgPool
  /**
   * Run the store's statements on the pool as pg named (prepared) statements. Default true; see
   * `fromPg`'s `prepare` (your appends follow the `fromPg` executor you pass them on).
   */
  readonly prepare?: boolean
  /**
   * The relay's claims and marks commit without waiting for the WAL flush (`synchronous_commit`
   * off for those transactions only, set inside each statement; your sessions keep their
   * setting). Default true: a database crash can then forget the last marks and claims, whose rows
   * are published again (at least once still holds, and their key order), for 10–20% more relay
   * throughput here. `false` waits for the flush on every batch. Appends are never relaxed.
   */
  readonly relaxedCommits?: boolean
}

/**
 * The outbox on PostgreSQL through `pg`. Append inside your transaction with
 * `store.append(fromPg(client), records)`; relays claim and mark through the pool, and wake on
 * NOTIFY (`listen`) when the pool can hand out a client.
 */
export class PostgresOutboxStore extends PostgresOutboxEngine implements WakeUpSource {
  readonly #pool: PgQueryable | PgPool

  constructor(options: PostgresOutboxStoreOptions) {
    super(fromPg(options.pool, { prepare: options.prepare ?? true }), options, {
      relaxedCommits: options.relaxedCommits ?? true,
    })
    this.#pool = options.pool
  }

  /**
   * Holds one pooled client in LISTEN and calls `wake` on each notification — a hint only, the
   * relay polls anyway. When that connection fails, the store connects and listens again with a
   * capped backoff (0.5 s doubling to 30 s) and calls `wake` once it is back, since notifications
   * sent in between were lost. A connection that goes silent without an error (a half-open TCP
   * path) is only noticed if your pool enables `keepAlive`.
   */
  async listen(wake: () => void): Promise<() => Promise<void>> {
    const pool = this.#pool
    if (!('connect' in pool) || typeof pool.connect !== 'function') {
      throw new ConfigurationError(
        'listen() needs a pg Pool (something with connect()); polling works without it',
      )
    }
    const channel = this.names.channel
    let stopped = false
    /** The client in LISTEN, and how to take this store's listeners off it. */
    let current: { readonly client: PgPoolClient; readonly detach: () => void } | undefined
    let timer: NodeJS.Timeout | undefined
    let failures = 0

    const subscribe = async (): Promise<void> => {
      const client = await pool.connect()
      const onError = (): void => lost(client)
      const onNotification = (message: { channel: string }): void => {
        if (message.channel === channel) wake()
      }
      // Off again before the client goes back to the pool, which hands it out again: left on, a
      // pooled client would gather a pair per LISTEN (and wake relays long stopped).
      const detach = (): void => {
        client.removeListener('error', onError)
        client.removeListener('notification', onNotification)
      }
      client.on('error', onError)
      client.on('notification', onNotification)
      try {
        await client.query(`LISTEN "${channel}"`)
      } catch (error) {
        detach()
        client.release(true)
        throw error
      }
      current = { client, detach }
      failures = 0
    }
    const lost = (client: PgPoolClient): void => {
      if (current?.client !== client) return // already replaced, or never finished subscribing
      current.detach()
      current = undefined
      client.release(true)
      reconnect()
    }
    const reconnect = (): void => {
      if (stopped) return
      const delay = Math.min(30_000, 500 * 2 ** Math.min(failures++, 6))
      timer = setTimeout(() => {
        subscribe().then(
          () => (stopped ? void release() : wake()),
          () => reconnect(),
        )
      }, delay)
      timer.unref()
    }
    const release = async (): Promise<void> => {
      const subscription = current
      current = undefined
      if (subscription === undefined) return
      const { client, detach } = subscription
      await client.query(`UNLISTEN "${channel}"`).catch(() => undefined)
      detach()
      client.release()
    }

    await subscribe() // the first failure is the caller's to see (the relay then only polls)
    return async () => {
      stopped = true
      clearTimeout(timer)
      await release()
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
