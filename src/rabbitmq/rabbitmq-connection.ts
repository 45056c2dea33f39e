/**
 * The transport's broker connection: opened on first use, watched, and reopened after it is lost.
 *
 * - States: `idle` (not opened yet) → `connecting` → `up`; a lost connection goes `down` and is
 *   reopened in the background with capped exponential backoff and jitter (only when the
 *   transport was given a factory: a connection passed as an instance cannot be reopened, so it
 *   stays `down` and its errors are not retryable). `closed` is final.
 * - `acquire()` never waits for a broker that is away: it resolves at once while `up`, waits only
 *   for the very first attempt (bounded by `connectTimeoutMs`), and otherwise rejects at once with
 *   a `TransportError` naming the state and the last error (`cause`).
 * - Listeners hear `up(connection)` after every (re)connect and `down(error)` after every loss, so
 *   subscriptions can resume.
 */
import { ErrorCode, type Logger, TransportError } from '../index.js'
import type { AmqpConnection, AmqpConnectionSource } from './rabbitmq-client.js'
import { within } from './rabbitmq-confirms.js'

/** Where the connection is. */
export type RabbitMqStatus = 'idle' | 'connecting' | 'up' | 'down' | 'closed'

/** Hears connection changes. */
export interface ConnectionListener {
  up(connection: AmqpConnection): void
  down(error: unknown): void
}

/** Timing of (re)connects. */
export interface ReconnectTiming {
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  readonly connectTimeoutMs: number
}

const message = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export class RabbitMqConnection {
  readonly #source: AmqpConnectionSource
  readonly #timing: ReconnectTiming
  readonly #logger: Logger
  readonly #listeners = new Set<ConnectionListener>()
  #status: RabbitMqStatus = 'idle'
  #connection: AmqpConnection | undefined
  #detach: (() => void) | undefined
  #first: Promise<AmqpConnection> | undefined
  #failures = 0
  #timer: NodeJS.Timeout | undefined
  #lastError: unknown
  #downSince = 0
  #blocked: string | undefined

  constructor(source: AmqpConnectionSource, timing: ReconnectTiming, logger: Logger) {
    this.#source = source
    this.#timing = timing
    this.#logger = logger
  }

  /** True when the transport opens (and so closes and reopens) its connections itself. */
  get owned(): boolean {
    return typeof this.#source === 'function'
  }

  get status(): RabbitMqStatus {
    return this.#status
  }

  /** Why RabbitMQ is blocking publishers (a memory or disk alarm), if it is. */
  get blocked(): string | undefined {
    return this.#blocked
  }

  /** The connection while `up`. */
  get current(): AmqpConnection | undefined {
    return this.#status === 'up' ? this.#connection : undefined
  }

  listen(listener: ConnectionListener): () => void {
    this.#listeners.add(listener)
    return () => void this.#listeners.delete(listener)
  }

  /** The open connection; see the module comment for when it rejects instead. */
  async acquire(): Promise<AmqpConnection> {
    switch (this.#status) {
      case 'up':
        return this.#connection!
      case 'closed':
        throw closedError()
      case 'idle':
        this.#first = this.#connectFirst()
        return this.#first
      case 'connecting':
        if (this.#first !== undefined) return this.#first
        throw this.#downError()
      case 'down':
        throw this.#downError()
    }
  }

  /** Stops reconnecting and closes the connection if the transport opened it (idempotent). */
  async close(): Promise<void> {
    if (this.#status === 'closed') return
    this.#status = 'closed'
    clearTimeout(this.#timer)
    const connection = this.#connection
    this.#connection = undefined
    this.#detach?.()
    if (connection === undefined || !this.owned) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      connection.close().catch(() => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, this.#timing.connectTimeoutMs))),
    ])
    clearTimeout(timer)
  }

  async #connectFirst(): Promise<AmqpConnection> {
    try {
      return await this.#open()
    } catch (error) {
      if (this.#status === 'closed') throw closedError()
      this.#lost(error)
      throw this.#downError()
    } finally {
      this.#first = undefined
    }
  }

  async #open(): Promise<AmqpConnection> {
    this.#status = 'connecting'
    const connection = await this.#openSource()
    if (this.status === 'closed') {
      if (this.owned) await connection.close().catch(() => undefined)
      throw closedError()
    }
    const onError = (error: Error): void => void (this.#lastError = error)
    const onClose = (error?: Error): void => this.#onClose(connection, error)
    const onBlocked = (reason: string): void => {
      this.#blocked = reason || 'unknown reason'
      this.#logger.warn({ reason }, 'RabbitMQ blocked publishers')
    }
    const onUnblocked = (): void => void (this.#blocked = undefined)
    connection.on('error', onError)
    connection.on('close', onClose)
    connection.on('blocked', onBlocked)
    connection.on('unblocked', onUnblocked)
    this.#detach = () => {
      connection.removeListener('error', onError)
      connection.removeListener('close', onClose)
      connection.removeListener('blocked', onBlocked)
      connection.removeListener('unblocked', onUnblocked)
    }
    this.#connection = connection
    this.#status = 'up'
    if (this.#failures > 0 || this.#downSince > 0)
      this.#logger.info({ attempts: this.#failures }, 'RabbitMQ connection is back')
    this.#failures = 0
    this.#downSince = 0
    for (const listener of [...this.#listeners]) listener.up(connection)
    return connection
  }

  /** Calls the factory, bounded by `connectTimeoutMs` (a late connection is closed). */
  async #openSource(): Promise<AmqpConnection> {
    const source = this.#source
    if (typeof source !== 'function') return source
    const attempt = source()
    try {
      return await within(
        attempt,
        this.#timing.connectTimeoutMs,
        'Opening the RabbitMQ connection',
        'operation',
      )
    } catch (error) {
      attempt.then((late) => late.close()).catch(() => undefined)
      throw error
    }
  }

  #onClose(connection: AmqpConnection, error: Error | undefined): void {
    if (connection !== this.#connection || this.#status === 'closed') return
    this.#connection = undefined
    this.#detach?.()
    this.#detach = undefined
    this.#lost(error ?? this.#lastError ?? new Error('connection closed'))
  }

  /** After a loss or a failed attempt: `down`, tell the listeners (once per loss), retry later. */
  #lost(error: unknown): void {
    const wasUp = this.#downSince === 0
    this.#status = 'down'
    this.#lastError = error
    this.#blocked = undefined
    if (wasUp) {
      this.#downSince = Date.now()
      this.#logger.warn({ error: message(error) }, 'RabbitMQ connection lost')
      for (const listener of [...this.#listeners]) listener.down(error)
    }
    if (!this.owned) return
    const { initialDelayMs, maxDelayMs } = this.#timing
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#failures, 30))
    const delay = ceiling / 2 + (Math.random() * ceiling) / 2
    this.#failures++
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#status !== 'down') return
      this.#open().catch((reason: unknown) => {
        if (this.#status !== 'closed') this.#lost(reason)
      })
    }, delay)
  }

  #downError(): TransportError {
    const seconds = this.#downSince === 0 ? 0 : (Date.now() - this.#downSince) / 1000
    const hint = this.owned
      ? `reconnecting (attempt ${this.#failures})`
      : 'it was passed in as an instance, so it cannot be reopened: pass a function that opens a connection to get reconnects'
    return new TransportError(
      `RabbitMQ is not connected (down for ${seconds.toFixed(1)} s: ${message(this.#lastError)}); ${hint}`,
      {
        cause: this.#lastError,
        retryable: this.owned,
        details: { status: this.#status, attempts: this.#failures },
      },
    )
  }
}

function closedError(): TransportError {
  return new TransportError('The RabbitMQ transport is closed', {
    code: ErrorCode.TransportClosed,
    retryable: false,
  })
}
