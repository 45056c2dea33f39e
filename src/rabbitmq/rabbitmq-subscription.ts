/**
 * One subscription: a consumer on the group queue, on its own confirm channel.
 *
 * - At most `concurrency` handlers run at once; the prefetch is `concurrency`, after a slow start:
 *   a new channel consumes with a prefetch of 1 until the first delivery that is not a
 *   redelivery, then adds a second consumer with a prefetch of `concurrency - 1` on the same
 *   channel (the first is kept: cancelling it would race with a delivery on its way and return
 *   that message to the queue). RabbitMQ hands the messages returned by a crashed or disconnected
 *   consumer out first, and a quorum queue counts an unsettled delivery against every message the
 *   dead consumer held. Taking those back one at a time means that a message which kills its
 *   consumer (a crash loop) is held alone when it does, so only its own count reaches
 *   `deliveryLimit`; with the full prefetch, the messages delivered with it would come back with
 *   it after every restart and be dead-lettered with it.
 * - Per key, one at a time: a delivery whose key has a handler running waits in the subscription
 *   (still unacknowledged, so it counts against the prefetch) until that handler settles; then the
 *   key's deliveries start in the order RabbitMQ delivered them. Keyless messages and other keys
 *   run in parallel.
 * - Settlement (publish-then-ack for retries and dead letters) is in rabbitmq-settlement.ts.
 * - A channel or connection loss: deliveries not yet acked go back to the queue (RabbitMQ does
 *   that); handlers still running finish, but their outcome is dropped (the message comes again).
 *   The subscription resumes on a new channel when the connection is up (backoff as for
 *   reconnects); a consumer cancelled by RabbitMQ (its queue deleted) resumes the same way, after
 *   declaring the topology again.
 * - `close()`: cancels the consumer, aborts the handlers' signal, waits for the running handlers
 *   to settle, then closes the channel, which returns the deliveries not started to the queue.
 */
import type { DeliveryHandler, Logger, RedeliveryPolicy, Subscription } from '../index.js'
import type { AmqpConnection, AmqpMessage } from './rabbitmq-client.js'
import { ConfirmedChannel } from './rabbitmq-confirms.js'
import type { RabbitMqConnection } from './rabbitmq-connection.js'
import { brokerError, reasonOf } from './rabbitmq-errors.js'
import { KEY_HEADER } from './rabbitmq-messages.js'
import type { ResolvedRabbitMqOptions } from './rabbitmq-options.js'
import { handleAndSettle, type Received, type SettlementSetup } from './rabbitmq-settlement.js'
import { declareRabbitMqTopology, type RabbitMqTopology } from './rabbitmq-topology.js'

/** What a subscription is made of. */
export interface SubscriptionSetup {
  readonly connection: RabbitMqConnection
  readonly options: ResolvedRabbitMqOptions
  readonly topology: RabbitMqTopology
  readonly handler: DeliveryHandler
  readonly concurrency: number
  readonly retry: RedeliveryPolicy
  /** Aborting it closes the subscription (its listener is removed on close). */
  readonly signal: AbortSignal | undefined
  /** Called once when the subscription has closed. */
  readonly onClosed: (subscription: RabbitMqSubscription) => void
}

export class RabbitMqSubscription implements Subscription {
  readonly #setup: SubscriptionSetup
  readonly #settlement: SettlementSetup
  readonly #logger: Logger
  readonly #aborts = new AbortController()
  readonly #busyKeys = new Set<string>()
  #waiting: Received[] = []
  #running = 0
  #idle: (() => void)[] = []
  #channel: ConfirmedChannel | undefined
  /** The channel's consumers: one during the slow start, then two (see above). */
  #consumerTags: string[] = []
  /** Whether the channel consumes with the full prefetch yet (see the slow start above). */
  #wide = false
  #starting: Promise<void> | undefined
  #restartTimer: NodeJS.Timeout | undefined
  #restartFailures = 0
  #closed: Promise<void> | undefined
  readonly #stopListening: () => void
  readonly #onAbort = (): void => void this.close()

  constructor(setup: SubscriptionSetup) {
    this.#setup = setup
    this.#logger = setup.options.logger
    this.#settlement = {
      topology: setup.topology,
      handler: setup.handler,
      retry: setup.retry,
      publishTimeoutMs: setup.options.publishTimeoutMs,
      logger: setup.options.logger,
    }
    setup.signal?.addEventListener('abort', this.#onAbort, { once: true })
    this.#stopListening = setup.connection.listen({
      up: (connection) => {
        this.#restartFailures = 0
        this.#restart(connection)
      },
      down: () => {
        const channel = this.#channel
        if (channel !== undefined) this.#channelLost(channel, false)
      },
    })
  }

  /** Opens the channel and starts consuming; rejects when that fails (subscribe rejects). */
  async start(connection: AmqpConnection): Promise<void> {
    this.#starting = this.#open(connection)
    try {
      await this.#starting
    } finally {
      this.#starting = undefined
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#stopListening()
      this.#setup.signal?.removeEventListener('abort', this.#onAbort)
      clearTimeout(this.#restartTimer)
      this.#aborts.abort()
      this.#setup.onClosed(this)
      // A start still in flight notices the close and closes its own channel (see #open).
      const channel = this.#channel
      const tags = this.#consumerTags
      if (channel?.open === true)
        for (const tag of tags) await channel.channel.cancel(tag).catch(() => undefined)
      while (this.#running > 0) await new Promise<void>((resolve) => this.#idle.push(resolve))
      this.#channel = undefined
      this.#waiting = []
      await channel?.close() // RabbitMQ takes back what was delivered but not started
    })()
    return this.#closed
  }

  async #open(connection: AmqpConnection): Promise<void> {
    const { topology, concurrency } = this.#setup
    let channel: ConfirmedChannel | undefined
    try {
      channel = new ConfirmedChannel(await connection.createConfirmChannel())
      await channel.channel.prefetch(1) // the slow start; #widen raises it to `concurrency`
      await declareRabbitMqTopology(channel.channel, topology)
      if (this.#closed !== undefined) {
        await channel.close()
        return
      }
      const opened = channel
      this.#channel = opened
      this.#wide = concurrency === 1
      opened.onClose(() => this.#channelLost(opened, true))
      const { consumerTag } = await opened.channel.consume(
        topology.queue,
        (message) => this.#receive(opened, message),
        { noAck: false },
      )
      this.#consumerTags = [consumerTag]
      if (this.#closed !== undefined && this.#channel === opened) {
        // Closed while the consumer was being set up: closing the channel returns what came.
        this.#channel = undefined
        await opened.close()
      }
    } catch (error) {
      if (channel !== undefined && this.#channel === channel) this.#channel = undefined
      await channel?.close()
      throw brokerError(
        `Could not consume from RabbitMQ queue "${topology.queue}"`,
        error,
        topology,
      )
    }
  }

  /** Reopens the channel on `connection` (or on the current one), retrying with backoff. */
  #restart(connection: AmqpConnection | undefined = this.#setup.connection.current): void {
    if (this.#closed !== undefined || this.#starting !== undefined) return
    if (this.#channel?.open === true || connection === undefined) return
    clearTimeout(this.#restartTimer)
    this.#restartTimer = undefined
    const starting = this.#open(connection)
    this.#starting = starting
    starting
      .then(
        () => {
          this.#restartFailures = 0
          this.#logger.info({ queue: this.#setup.topology.queue }, 'RabbitMQ consumer resumed')
        },
        (error: unknown) => {
          this.#logger.warn(
            { queue: this.#setup.topology.queue, error: reasonOf(error) },
            'RabbitMQ consumer could not resume; retrying',
          )
          this.#scheduleRestart()
        },
      )
      .finally(() => {
        if (this.#starting === starting) this.#starting = undefined
      })
  }

  #scheduleRestart(): void {
    if (this.#closed !== undefined || this.#restartTimer !== undefined) return
    const { initialDelayMs, maxDelayMs } = this.#setup.options.reconnect
    const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(this.#restartFailures, 30))
    this.#restartFailures++
    this.#restartTimer = setTimeout(
      () => {
        this.#restartTimer = undefined
        this.#restart()
      },
      ceiling / 2 + (Math.random() * ceiling) / 2,
    )
  }

  /** The channel closed (or its connection went): forget its deliveries, resume later. */
  #channelLost(channel: ConfirmedChannel, resume: boolean): void {
    if (this.#channel !== channel) return
    this.#channel = undefined
    this.#consumerTags = []
    this.#waiting = this.#waiting.filter((item) => item.channel !== channel)
    if (this.#closed !== undefined) return
    this.#logger.warn({ queue: this.#setup.topology.queue }, 'RabbitMQ consumer channel closed')
    if (resume && this.#setup.connection.current !== undefined) this.#scheduleRestart()
  }

  #receive(channel: ConfirmedChannel, message: AmqpMessage | null): void {
    if (message === null) {
      // RabbitMQ cancelled the consumer (its queue was deleted): start over on a new channel.
      void channel.close()
      return
    }
    if (channel !== this.#channel) return // a late delivery of a lost channel: it comes again
    if (!this.#wide && message.fields.redelivered !== true) void this.#widen(channel)
    const key = message.properties.headers?.[KEY_HEADER]
    this.#waiting.push({ message, channel, key: typeof key === 'string' ? key : undefined })
    this.#pump()
  }

  /**
   * Ends the slow start: a prefetch applies to the consumers created after it is set, so a second
   * consumer with the rest of the prefetch joins the first. A failure here means the channel is
   * failing: it closes, and the subscription resumes on a new one (slow start again).
   */
  async #widen(channel: ConfirmedChannel): Promise<void> {
    this.#wide = true
    const { topology, concurrency } = this.#setup
    const current = (): boolean => this.#channel === channel && this.#closed === undefined
    try {
      await channel.channel.prefetch(concurrency - 1)
      if (!current()) return
      const { consumerTag } = await channel.channel.consume(
        topology.queue,
        (message) => this.#receive(channel, message),
        { noAck: false },
      )
      if (current()) this.#consumerTags.push(consumerTag)
      else await channel.channel.cancel(consumerTag).catch(() => undefined)
    } catch (error) {
      this.#logger.warn(
        { queue: topology.queue, error: reasonOf(error) },
        'RabbitMQ consumer could not raise its prefetch; its channel will be reopened',
      )
      void channel.close()
    }
  }

  /** Starts waiting deliveries while there is room, one per key at a time, in arrival order. */
  #pump(): void {
    if (this.#closed !== undefined) return
    for (let i = 0; i < this.#waiting.length && this.#running < this.#setup.concurrency;) {
      const item = this.#waiting[i]!
      if (item.key !== undefined && this.#busyKeys.has(item.key)) {
        i++
        continue
      }
      this.#waiting.splice(i, 1)
      void this.#run(item)
    }
  }

  async #run(item: Received): Promise<void> {
    this.#running++
    if (item.key !== undefined) this.#busyKeys.add(item.key)
    try {
      await handleAndSettle(this.#settlement, item, this.#aborts.signal)
    } catch (error) {
      this.#logger.error(
        { queue: this.#setup.topology.queue, error: reasonOf(error) },
        'RabbitMQ settlement failed',
      )
    } finally {
      this.#running--
      if (item.key !== undefined) this.#busyKeys.delete(item.key)
      if (this.#running === 0) for (const resolve of this.#idle.splice(0)) resolve()
      this.#pump()
    }
  }
}
