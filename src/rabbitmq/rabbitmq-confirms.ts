/**
 * Publishing with publisher confirms on one amqplib `ConfirmChannel`.
 *
 * - Every publish is `mandatory`; RabbitMQ answers an unroutable message with `basic.return`
 *   before its `basic.ack`, so `publish` resolves `false` for it (the caller decides whether that
 *   is an error) and `true` once the broker confirmed a routed message.
 * - A `basic.nack` rejects with a retryable `TransportError`. When the channel closes (a channel
 *   error such as 404 on a missing exchange, or the connection going away) every publish not yet
 *   confirmed rejects at once with a retryable `TransportError` whose `cause` is the channel's
 *   error: its confirm would never come.
 * - When amqplib's write buffer is full (`publish` returned false), later publishes wait for
 *   `'drain'` (or the close) before writing.
 */
import { ErrorCode, TransportError } from '../index.js'
import type { AmqpConfirmChannel, AmqpMessage, AmqpPublishOptions } from './rabbitmq-client.js'

const returnKey = (exchange: string, routingKey: string, messageId: unknown): string =>
  `${exchange}\u0000${routingKey}\u0000${String(messageId)}`

/** A confirm channel with its pending confirms, returns and back-pressure tracked. */
export class ConfirmedChannel {
  readonly channel: AmqpConfirmChannel
  readonly #pending = new Set<(error: Error) => void>()
  readonly #returned = new Map<string, number>()
  #error: Error | undefined
  #closed = false
  #drain: Promise<void> | undefined
  #drained: (() => void) | undefined
  readonly #closeListeners = new Set<() => void>()
  #idle: (() => void)[] = []

  constructor(channel: AmqpConfirmChannel) {
    this.channel = channel
    channel.on('error', (error) => (this.#error = error))
    channel.on('return', (message: AmqpMessage) => {
      const key = returnKey(
        message.fields.exchange,
        message.fields.routingKey,
        message.properties.messageId,
      )
      this.#returned.set(key, (this.#returned.get(key) ?? 0) + 1)
    })
    channel.on('drain', () => this.#release())
    channel.on('close', () => {
      this.#closed = true
      this.#release()
      const error = this.closedError()
      for (const reject of this.#pending) reject(error)
      this.#pending.clear()
      this.#notifyIdle()
      for (const listener of this.#closeListeners) listener()
    })
  }

  /** False once the channel closed (for any reason). */
  get open(): boolean {
    return !this.#closed
  }

  /** Publishes awaiting a confirm (or none) so far. */
  get pending(): number {
    return this.#pending.size
  }

  /** Calls `listener` once when the channel closes (at once if it has). */
  onClose(listener: () => void): void {
    if (this.#closed) listener()
    else this.#closeListeners.add(listener)
  }

  /** The error publishes fail with once the channel closed. */
  closedError(): TransportError {
    const why = this.#error === undefined ? '' : `: ${this.#error.message}`
    return new TransportError(`The RabbitMQ channel closed before confirming the publish${why}`, {
      cause: this.#error,
    })
  }

  /**
   * Publishes one message; resolves true once confirmed, false when it was confirmed but
   * unroutable (returned); rejects with a `TransportError` on a nack or a closed channel.
   */
  async publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishOptions,
  ): Promise<boolean> {
    while (this.#drain !== undefined) await this.#drain
    if (this.#closed) throw this.closedError()
    return new Promise<boolean>((resolve, reject) => {
      const fail = (error: Error): void => reject(error)
      this.#pending.add(fail)
      let writable: boolean
      try {
        writable = this.channel.publish(exchange, routingKey, content, options, (error) => {
          if (!this.#pending.delete(fail)) return // already failed by the close
          this.#notifyIdle()
          if (error !== null && error !== undefined) {
            reject(
              new TransportError(
                `RabbitMQ refused message "${options.messageId ?? '?'}" (basic.nack) on exchange "${exchange}"`,
                { cause: error, details: { exchange, routingKey } },
              ),
            )
            return
          }
          const key = returnKey(exchange, routingKey, options.messageId)
          const returned = this.#returned.get(key) ?? 0
          if (returned > 0) {
            if (returned === 1) this.#returned.delete(key)
            else this.#returned.set(key, returned - 1)
            resolve(false)
          } else resolve(true)
        })
      } catch (error) {
        // amqplib throws at once for a closed channel, and for a message it cannot encode.
        this.#pending.delete(fail)
        this.#notifyIdle()
        const encoding = error instanceof RangeError || error instanceof TypeError
        reject(
          new TransportError(
            `Could not publish to RabbitMQ exchange "${exchange}": ${error instanceof Error ? error.message : String(error)}`,
            { cause: error, retryable: !encoding, details: { exchange, routingKey } },
          ),
        )
        return
      }
      if (!writable && this.#drain === undefined && !this.#closed)
        this.#drain = new Promise<void>((release) => (this.#drained = release))
    })
  }

  /** Waits until every publish made so far is settled (confirmed, refused or failed). */
  async settled(): Promise<void> {
    if (this.#pending.size === 0) return
    await new Promise<void>((resolve) => this.#idle.push(resolve))
  }

  /**
   * Closes the channel, ignoring a channel that is already gone; gives up waiting for RabbitMQ's
   * reply after `timeoutMs` (a silent connection would never send it).
   */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.#closed) return
    await within(this.channel.close(), timeoutMs, 'Closing the channel', 'operation').catch(
      () => undefined, // already closing, or closed with its connection: nothing left to release
    )
  }

  #notifyIdle(): void {
    if (this.#pending.size > 0) return
    const waiters = this.#idle
    this.#idle = []
    for (const resolve of waiters) resolve()
  }

  #release(): void {
    const drained = this.#drained
    this.#drain = undefined
    this.#drained = undefined
    drained?.()
  }
}

/**
 * `promise`, or a retryable `TransportError` after `ms`: `SWITCHYARD_PUBLISH_TIMEOUT` for a
 * publish, `SWITCHYARD_TRANSPORT` for anything else. The promise keeps running; a late failure of
 * it is not reported as unhandled.
 */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  kind: 'publish' | 'operation' = 'publish',
): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          kind === 'publish'
            ? new TransportError(`${what} was not confirmed by RabbitMQ within ${ms} ms`, {
                code: ErrorCode.PublishTimeout,
                details: { timeoutMs: ms },
              })
            : new TransportError(`${what} took longer than ${ms} ms`, {
                details: { timeoutMs: ms },
              }),
        ),
      ms,
    )
  })
  promise.catch(() => undefined)
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}
