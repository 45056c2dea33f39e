/**
 * The RabbitMQ transport: `Publisher` and `Subscriber` over amqplib (you pass the connection, or a
 * function that opens one). The topology is in rabbitmq-topology.ts, the message mapping in
 * rabbitmq-messages.ts, a subscription's life in rabbitmq-subscription.ts and its settlement
 * rules (publish-then-ack retries and dead letters) in rabbitmq-settlement.ts.
 *
 * Publishing:
 * - `publish(topic, messages)` sends every message to the namespace's topic exchange with the topic
 *   as routing key, persistent and `mandatory`, on a confirm channel, and resolves only when
 *   RabbitMQ confirmed all of them. A `basic.nack`, the channel or connection closing first, or no
 *   confirm within `publishTimeoutMs` reject it with a retryable `TransportError` (the caller
 *   publishes the batch again: at least once). An unroutable message (no group bound yet) is
 *   rejected with the retryable `SWITCHYARD_UNROUTABLE` (the default, `unroutable: 'reject'`), or
 *   accepted and dropped by RabbitMQ under `unroutable: 'accept'`.
 * - While the connection is down (or RabbitMQ blocks publishers on an alarm), `publish` rejects at
 *   once with a retryable `TransportError`: it never waits for the broker to come back. Only the
 *   very first connect is awaited (bounded by `connectTimeoutMs`).
 *
 * Subscribing:
 * - `subscribe(topic, handler, { group })` declares the group's topology (idempotent), sets the
 *   prefetch to `concurrency` (after a slow start at 1 that takes redelivered messages back one
 *   at a time, see rabbitmq-subscription.ts) and consumes the group queue. Retries go through per-delay TTL queues
 *   back to the group queue; dead letters to the group's dead-letter queue.
 * - After a connection loss, the transport reconnects with capped exponential backoff and every
 *   subscription resumes; what was delivered but not acked is delivered again (same id).
 *
 * Characteristics (the conformance suite's feature names):
 * | feature | | |
 * | --- | --- | --- |
 * | persistent | yes | durable queues, persistent messages, publisher confirms |
 * | consumerGroups | yes | one queue per group; a group's subscriptions compete |
 * | orderedPerKey | no | one subscription runs a key's deliveries one at a time in queue order, but a retry re-enters the queue at its tail (later messages of the key overtake it), and several subscriptions of a group share out a key's messages |
 * | orderedWithSingleConsumer | yes | one subscription with `concurrency: 1` gets the next message only after the previous one settled (prefetch 1), while no message fails: a retried one comes back after the later ones |
 * | redeliversOnNack | yes | a rejected handler → redelivered after `retry.delayMs(attempt)` |
 * | delayedRedelivery | yes | per-delay TTL queues |
 * | deadLetter | yes | `<namespace>:<topic>:<group>:dlq`, read back with `deadLetters()` |
 * | replaysToNewGroup | no | a new group's queue starts empty |
 * | singleInstanceOnly | no | any number of processes |
 *
 * `close()` closes every subscription (see there), waits for the publishes in flight (up to
 * `publishTimeoutMs`), closes the channels, and closes the connection only if the transport
 * opened it. It is idempotent.
 *
 * What it assumes of the broker and the connection:
 * - A confirm is only as durable as the queue: quorum queues (the default) confirm after a
 *   majority wrote the message; classic ones after their node did. RabbitMQ's own guarantees end
 *   at network partitions (see its reliability guide).
 * - A half-open connection (the peer vanished without a FIN or RST) is only noticed through AMQP
 *   heartbeats: open it with a short one, e.g. `` connect(`${url}?heartbeat=10`) ``.
 *   Until then publishes fail with `SWITCHYARD_PUBLISH_TIMEOUT`, and the subscriptions idle.
 * - A handler that runs longer than the broker's `consumer_timeout` (30 min by default) gets its
 *   channel closed by RabbitMQ; the message is delivered again.
 * - The hop from a delay queue back to the group queue is RabbitMQ's own dead-lettering, which is
 *   at-most-once for classic queues: a retry is lost only if the group queue is deleted meanwhile.
 *
 * @example
 * import { connect } from 'amqplib'
 * const transport = new RabbitMqTransport({
 *   connection: () => connect(`${process.env.SWITCHYARD_AMQP_URL}?heartbeat=10`),
 * })
 * await transport.subscribe('orders', handler, { group: 'billing', concurrency: 8 })
 * await transport.publish('orders', [{ id, key: orderId, headers: {}, body }])
 */
import {
  ConfigurationError,
  type DeadLetter,
  DEFAULT_REDELIVERY,
  type DeliveryHandler,
  ErrorCode,
  type Publisher,
  type RedeliveryPolicy,
  type SubscribeOptions,
  type Subscriber,
  type Subscription,
  TransportError,
  type TransportMessage,
} from '../index.js'
import type { AmqpConnection } from './rabbitmq-client.js'
import { ConfirmedChannel, within } from './rabbitmq-confirms.js'
import { RabbitMqConnection, type RabbitMqStatus } from './rabbitmq-connection.js'
import { toBuffer } from '../core/bytes.js'
import { fromDeadLetterMessage, publishOptions } from './rabbitmq-messages.js'
import {
  type RabbitMqTransportOptions,
  resolveOptions,
  type ResolvedRabbitMqOptions,
} from './rabbitmq-options.js'
import { brokerError, reasonOf } from './rabbitmq-errors.js'
import { RabbitMqSubscription } from './rabbitmq-subscription.js'
import {
  declareRabbitMqTopology,
  nameProblems,
  rabbitMqTopology,
  type RabbitMqTopology,
} from './rabbitmq-topology.js'

interface PublishChannel {
  readonly connection: AmqpConnection
  readonly channel: Promise<ConfirmedChannel>
}

export class RabbitMqTransport implements Publisher, Subscriber, AsyncDisposable {
  readonly #options: ResolvedRabbitMqOptions
  readonly #connection: RabbitMqConnection
  readonly #subscriptions = new Set<RabbitMqSubscription>()
  #publisher: PublishChannel | undefined
  /** Publishes not settled yet: `close()` waits for them. */
  readonly #inFlight = new Set<Promise<void>>()
  #closed: Promise<void> | undefined

  /** Throws `ConfigurationError` listing every problem with the options. Connects on first use. */
  constructor(options: RabbitMqTransportOptions) {
    this.#options = resolveOptions(options)
    const { connection, reconnect, connectTimeoutMs, logger } = this.#options
    this.#connection = new RabbitMqConnection(
      connection,
      { ...reconnect, connectTimeoutMs },
      logger,
    )
  }

  /** `idle` (not connected yet), `connecting`, `up`, `down` (reconnecting) or `closed`. */
  get status(): RabbitMqStatus {
    return this.#connection.status
  }

  async publish(topic: string, messages: readonly TransportMessage[]): Promise<void> {
    this.#assertOpen()
    const problems = nameProblems('topic', topic)
    if (problems.length > 0) throw new ConfigurationError(problems.join('; '), { problems })
    if (messages.length === 0) return
    const { publishTimeoutMs } = this.#options
    const what = `Publishing ${messages.length} message(s) to "${topic}"`
    const publishing = within(this.#publishConfirmed(topic, messages), publishTimeoutMs, what)
    this.#inFlight.add(publishing)
    try {
      await publishing
    } finally {
      this.#inFlight.delete(publishing)
    }
  }

  /** The publish itself: channel (opened if needed), every message, every confirm. */
  async #publishConfirmed(topic: string, messages: readonly TransportMessage[]): Promise<void> {
    const channel = await this.#publishChannel()
    const blocked = this.#connection.blocked
    if (blocked !== undefined)
      throw new TransportError(`RabbitMQ is blocking publishers (${blocked}); try again later`, {
        details: { topic, reason: blocked },
      })
    const { namespace, contentType } = this.#options
    const routed = await Promise.all(
      messages.map((message) =>
        channel.publish(
          namespace,
          topic,
          toBuffer(message.body),
          publishOptions(message, contentType),
        ),
      ),
    )
    const unroutable = routed.filter((ok) => !ok).length
    if (unroutable > 0 && this.#options.unroutable === 'reject')
      throw new TransportError(
        `${unroutable} of ${messages.length} message(s) published to "${topic}" reached no queue: no group is subscribed to the topic yet (declare one with declareTopology)`,
        { code: ErrorCode.Unroutable, details: { topic, unroutable } },
      )
  }

  async subscribe(
    topic: string,
    handler: DeliveryHandler,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    this.#assertOpen()
    const concurrency = options.concurrency ?? 1
    const retry = options.retry ?? DEFAULT_REDELIVERY
    const problems: string[] = []
    if (typeof handler !== 'function') problems.push('the handler must be a function')
    if (typeof options.group !== 'string' || options.group === '')
      problems.push('subscribe needs a group name')
    if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 65_535)
      problems.push('concurrency must be a whole number from 1 to 65,535 (the prefetch)')
    if (!Number.isSafeInteger(retry.maxAttempts) || retry.maxAttempts < 1)
      problems.push('retry.maxAttempts must be a whole number ≥ 1')
    if (problems.length > 0) throw new ConfigurationError(problems.join('; '), { problems })
    const topology = this.topology(topic, options.group)
    const connection = await this.#connection.acquire()
    const subscription = new RabbitMqSubscription({
      connection: this.#connection,
      options: this.#options,
      topology,
      handler,
      concurrency,
      retry,
      signal: options.signal,
      onClosed: (closed) => this.#subscriptions.delete(closed),
    })
    if (options.signal?.aborted === true) {
      await subscription.close()
      return subscription
    }
    this.#subscriptions.add(subscription)
    try {
      await within(
        subscription.start(connection),
        this.#options.connectTimeoutMs,
        `Subscribing to "${topology.queue}"`,
        'operation',
      )
    } catch (error) {
      await subscription.close()
      throw error
    }
    return subscription
  }

  /**
   * The topology of a topic and group under this transport's options, as data; print it with
   * `formatRabbitMqTopology`. With `retry`, it lists the delay queues that policy uses.
   */
  topology(topic: string, group: string, retry?: RedeliveryPolicy): RabbitMqTopology {
    const { namespace, queueType, deliveryLimit } = this.#options
    return rabbitMqTopology(topic, group, {
      namespace,
      queueType,
      deliveryLimit,
      ...(retry === undefined ? {} : { retry }),
    })
  }

  /**
   * Declares a group's topology now (idempotent), e.g. at deploy time, so messages published
   * before its first subscription are kept for it.
   */
  async declareTopology(topic: string, group: string): Promise<RabbitMqTopology> {
    this.#assertOpen()
    const topology = this.topology(topic, group)
    await this.#withChannel('declare the topology', topology, (channel) =>
      declareRabbitMqTopology(channel.channel, topology),
    )
    return topology
  }

  /**
   * Reads up to `limit` (default 100) messages of a group's dead-letter queue, oldest first,
   * without removing them (they are fetched unacknowledged and returned to the queue). The
   * attempts of a dead letter RabbitMQ made itself (the delivery limit) are computed from this
   * transport's `deliveryLimit`: read with the options the group was declared with.
   */
  async deadLetters(
    topic: string,
    group: string,
    options: { readonly limit?: number } = {},
  ): Promise<DeadLetter[]> {
    this.#assertOpen()
    const topology = this.topology(topic, group)
    const limit = options.limit ?? 100
    return this.#withChannel(
      `read dead-letter queue "${topology.deadLetterQueue}"`,
      topology,
      async ({ channel }) => {
        const letters: DeadLetter[] = []
        while (letters.length < limit) {
          const message = await channel.get(topology.deadLetterQueue, { noAck: false })
          if (message === false) break
          letters.push(fromDeadLetterMessage(message, topic, group, this.#options.deliveryLimit))
        }
        return letters
      },
    )
  }

  /** Closes every subscription, flushes the publishes in flight, then the connection (idempotent). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await Promise.all([...this.#subscriptions].map((subscription) => subscription.close()))
      await Promise.allSettled([...this.#inFlight]) // each bounded by publishTimeoutMs
      const publisher = this.#publisher
      this.#publisher = undefined
      const channel = await publisher?.channel.catch(() => undefined)
      if (channel !== undefined) {
        await within(channel.settled(), this.#options.publishTimeoutMs, 'Flushing').catch(
          () => undefined,
        )
        await channel.close()
      }
      await this.#connection.close()
    })()
    return this.#closed
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #assertOpen(): void {
    if (this.#closed !== undefined)
      throw new TransportError('The RabbitMQ transport is closed', {
        code: ErrorCode.TransportClosed,
        retryable: false,
      })
  }

  /** The shared publish channel of the current connection (reopened after it closed). */
  async #publishChannel(): Promise<ConfirmedChannel> {
    const connection = await this.#connection.acquire()
    const current = this.#publisher
    if (current?.connection === connection) {
      const channel = await current.channel.catch(() => undefined)
      if (channel?.open === true) return channel
    }
    // None yet, one of an old connection, or one that failed or closed: open another, shared by
    // the callers that got here at the same time.
    if (this.#publisher === current)
      this.#publisher = { connection, channel: this.#openPublisher(connection) }
    return this.#publisher!.channel
  }

  async #openPublisher(connection: AmqpConnection): Promise<ConfirmedChannel> {
    let channel: ConfirmedChannel | undefined
    try {
      channel = new ConfirmedChannel(await connection.createConfirmChannel())
      await channel.channel.assertExchange(this.#options.namespace, 'topic', { durable: true })
      return channel
    } catch (error) {
      await channel?.close()
      throw new TransportError(`Could not open a RabbitMQ publish channel: ${reasonOf(error)}`, {
        cause: error,
      })
    }
  }

  /** Runs `work` on a short-lived channel of its own. */
  async #withChannel<T>(
    doing: string,
    topology: RabbitMqTopology,
    work: (channel: ConfirmedChannel) => Promise<T>,
  ): Promise<T> {
    const connection = await this.#connection.acquire()
    let channel: ConfirmedChannel | undefined
    const run = async (): Promise<T> => {
      channel = new ConfirmedChannel(await connection.createConfirmChannel())
      return work(channel)
    }
    try {
      return await within(run(), this.#options.connectTimeoutMs, `To ${doing}`, 'operation')
    } catch (error) {
      throw brokerError(`Could not ${doing}`, error, topology)
    } finally {
      await channel?.close() // returns what `get` fetched to the queue
    }
  }
}
