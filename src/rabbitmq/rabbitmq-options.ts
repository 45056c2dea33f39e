/** The options of `RabbitMqTransport`, with their defaults applied in one place. */
import { ConfigurationError, type Logger, silentLogger } from '../index.js'
import type { AmqpConnectionSource } from './rabbitmq-client.js'
import { nameProblems, type RabbitMqQueueType } from './rabbitmq-topology.js'

/** Options of `RabbitMqTransport`. */
export interface RabbitMqTransportOptions {
  /**
   * Your amqplib connection, or a function that opens one, e.g.
   * `` () => connect(`${process.env.AMQP_URL}?heartbeat=10`) ``. Only with a function can the
   * transport reconnect after the connection is lost; it then also closes the connections it
   * opened. A connection you pass in is never closed by the transport.
   */
  readonly connection: AmqpConnectionSource
  /** The topic exchange's name, and the prefix of every queue. Default `switchyard`. */
  readonly namespace?: string
  /** Group and dead-letter queues: `quorum` (default) or `classic`. Delay queues are classic. */
  readonly queueType?: RabbitMqQueueType
  /** Quorum queues' `x-delivery-limit` (crash loops end in the dead-letter queue). Default 20; 0: none. */
  readonly deliveryLimit?: number
  /**
   * A publish RabbitMQ could not route (no group queue is bound to the topic yet): `'reject'`
   * (default: the publish fails with a retryable `SWITCHYARD_UNROUTABLE`, so an outbox keeps the
   * message, and retries it, until a group exists; declare groups ahead with `declareTopology`) or
   * `'accept'` (the publish resolves and RabbitMQ drops the message, like the in-memory transport
   * where a topic without groups has no one to deliver to: an outbox then marks it published).
   */
  readonly unroutable?: 'accept' | 'reject'
  /** Longest wait for the confirms of one `publish`, ms (`SWITCHYARD_PUBLISH_TIMEOUT`). Default 30,000. */
  readonly publishTimeoutMs?: number
  /** The `contentType` property of published messages. Default `application/cloudevents+json`. */
  readonly contentType?: string
  /**
   * Longest wait, ms, for the connection function, and for opening a channel with its
   * declarations (`subscribe`, `declareTopology`, `deadLetters`). Default 10,000.
   */
  readonly connectTimeoutMs?: number
  /** Reconnect backoff: first delay (default 200 ms), doubling up to `maxDelayMs` (default 10,000), with jitter. */
  readonly reconnect?: {
    readonly initialDelayMs?: number
    readonly maxDelayMs?: number
  }
  /** Where connection losses, reconnects and settlement failures are logged. Default: silent. */
  readonly logger?: Logger
}

/** The options with defaults applied. */
export interface ResolvedRabbitMqOptions {
  readonly connection: AmqpConnectionSource
  readonly namespace: string
  readonly queueType: RabbitMqQueueType
  readonly deliveryLimit: number
  readonly unroutable: 'accept' | 'reject'
  readonly publishTimeoutMs: number
  readonly contentType: string
  readonly connectTimeoutMs: number
  readonly reconnect: {
    readonly initialDelayMs: number
    readonly maxDelayMs: number
  }
  readonly logger: Logger
}

const positive = (value: number): boolean => Number.isFinite(value) && value > 0

/** Applies the defaults and reports every problem at once. */
export function resolveOptions(options: RabbitMqTransportOptions): ResolvedRabbitMqOptions {
  const resolved: ResolvedRabbitMqOptions = {
    connection: options.connection,
    namespace: options.namespace ?? 'switchyard',
    queueType: options.queueType ?? 'quorum',
    deliveryLimit: options.deliveryLimit ?? 20,
    unroutable: options.unroutable ?? 'reject',
    publishTimeoutMs: options.publishTimeoutMs ?? 30_000,
    contentType: options.contentType ?? 'application/cloudevents+json',
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    reconnect: {
      initialDelayMs: options.reconnect?.initialDelayMs ?? 200,
      maxDelayMs: options.reconnect?.maxDelayMs ?? 10_000,
    },
    logger: options.logger ?? silentLogger,
  }
  const problems: string[] = []
  const { connection } = resolved
  if (
    typeof connection !== 'function' &&
    (typeof connection !== 'object' ||
      connection === null ||
      typeof connection.createConfirmChannel !== 'function')
  )
    problems.push(
      'connection must be an amqplib connection or a function that opens one, e.g. () => connect(url)',
    )
  problems.push(...nameProblems('namespace', resolved.namespace))
  if (resolved.queueType !== 'quorum' && resolved.queueType !== 'classic')
    problems.push('queueType must be "quorum" or "classic"')
  if (!Number.isSafeInteger(resolved.deliveryLimit) || resolved.deliveryLimit < 0)
    problems.push('deliveryLimit must be a whole number ≥ 0 (0: no limit)')
  if (resolved.unroutable !== 'accept' && resolved.unroutable !== 'reject')
    problems.push('unroutable must be "accept" or "reject"')
  if (!positive(resolved.publishTimeoutMs)) problems.push('publishTimeoutMs must be > 0')
  if (typeof resolved.contentType !== 'string' || resolved.contentType === '')
    problems.push('contentType must be a non-empty string')
  const { initialDelayMs, maxDelayMs } = resolved.reconnect
  if (!positive(initialDelayMs)) problems.push('reconnect.initialDelayMs must be > 0')
  if (!positive(maxDelayMs) || maxDelayMs < initialDelayMs)
    problems.push('reconnect.maxDelayMs must be ≥ reconnect.initialDelayMs')
  if (!positive(resolved.connectTimeoutMs)) problems.push('connectTimeoutMs must be > 0')
  if (problems.length > 0)
    throw new ConfigurationError(`Invalid RabbitMqTransport options: ${problems.join('; ')}`, {
      problems,
    })
  return resolved
}
