/**
 * The consumer: receives integration events from a `Subscriber` and dispatches them to this
 * service's bus, exactly once in effect when an inbox is given.
 *
 * For each delivery:
 * 1. Decode the CloudEvents envelope (hostile input is refused, never crashes), find the
 *    definition by `type`, validate the payload with its schema, keeping the message's id,
 *    correlation and causation ids and headers. Any failure here dead-letters the message at once
 *    with the error's code and message: a redelivery could not fix it.
 * 2. Dispatch to the bus. With an `inbox`, each handler invocation records `(consumer/handler,
 *    message id)` in its (first) database unit of work before the handler runs: a duplicate
 *    (a redelivery, or the same message arriving twice at once) waits for the first, then finds
 *    the record and skips the handler. The inbox record, the handler's changes and the integration
 *    events it appends to this service's outbox commit together or not at all.
 * 3. Settle: success → ack. A failure `retryOn` accepts (default: everything not marked
 *    `retryable: false`) → redelivered with backoff up to `maxAttempts`, then dead-lettered with
 *    the error; any other failure → dead-lettered at once.
 *
 * Handlers without a database unit of work run again on a redelivery (at least once): pass the
 * message id on as an idempotency key for effects outside the database. The inbox covers the
 * handlers of the received message: in-process follow-up events they publish are not redelivered
 * once their handler committed (it is skipped on a redelivery), so work that must survive a
 * failure further down belongs in an integration event through the outbox, which is durable.
 */
import { deliveryScope, type DeliveryScope } from '../core/delivery-scope.js'
import { type Logger, logAt, silentLogger } from '../core/logger.js'
import type { AnyEventDefinition, Event, Message, MessageOptions } from '../core/message.js'
import type { UnitOfWork } from '../core/unit-of-work.js'
import {
  ConfigurationError,
  ErrorCode,
  isRetryable,
  isSwitchyardError,
  SwitchyardError,
} from '../errors.js'
import { decodeEnvelope, type DecodeLimits } from '../outbox/envelope.js'
import type { InboxStore } from '../outbox/inbox-store.js'
import type { SqlExecutor } from '../sql/sql-executor.js'
import type {
  DeadLetterOutcome,
  Delivery,
  RedeliveryPolicy,
  Subscriber,
  Subscription,
} from '../transport/subscriber.js'

/** What the consumer needs of the bus. */
export interface ConsumerBus {
  dispatch(
    message: Message,
    options?: { readonly signal?: AbortSignal; readonly eventHandlerErrors?: 'reject' },
  ): Promise<unknown>
}

/** Retry of failed handlers. */
export interface ConsumerRetryOptions {
  /** Deliveries before a failing message is dead-lettered. Default 5. */
  readonly maxAttempts?: number
  /** First and largest delay before a redelivery, ms (doubling, with jitter). Default 1,000 and 60,000. */
  readonly initialDelay?: number
  readonly maxDelay?: number
  /** Which errors are worth a redelivery. Default `isRetryable`: all but those marked `retryable: false`. */
  readonly retryOn?: (error: unknown) => boolean
}

/** Options of {@link Consumer}. */
export interface ConsumerOptions {
  /** This consumer's name: its inbox scope, and its group unless `group` is given. */
  readonly name: string
  readonly bus: ConsumerBus
  readonly subscriber: Subscriber
  /** The integration events it accepts (definitions with a `topic`); it subscribes to their topics. */
  readonly events: readonly AnyEventDefinition[]
  /** The consumer group. Default: `name`. */
  readonly group?: string
  /** Messages handled at once. Default 1. */
  readonly concurrency?: number
  readonly retry?: ConsumerRetryOptions
  /** Makes effects exactly once: joins each handler's database unit of work. */
  readonly inbox?: InboxStore
  /** Limits for decoding untrusted bodies (default 1 MiB, depth 64). */
  readonly limits?: DecodeLimits
  readonly logger?: Logger
}

/** A definition as the consumer calls it: validates asynchronously, keeps the given ids. */
type Revive = (payload: unknown, options: MessageOptions) => Promise<Event>

/** How every event reaches the bus (one options object per dispatch, no closure). */
const dispatchTo = (bus: ConsumerBus, message: Event, options: DispatchOptions): Promise<unknown> =>
  bus.dispatch(message, options)

interface DispatchOptions {
  readonly signal: AbortSignal
  readonly eventHandlerErrors: 'reject'
}

export class Consumer implements AsyncDisposable {
  readonly #o: ConsumerOptions & { readonly group: string; readonly logger: Logger }
  readonly #byType = new Map<string, Revive>()
  readonly #topics: string[]
  readonly #policy: RedeliveryPolicy
  readonly #retryOn: (error: unknown) => boolean
  /** With an inbox: the scope every dispatch runs in (the same for every delivery). */
  readonly #delivery: DeliveryScope | undefined
  #subscriptions: Subscription[] = []
  #started: Promise<void> | undefined

  constructor(options: ConsumerOptions) {
    const problems: string[] = []
    if (typeof options.name !== 'string' || options.name === '')
      problems.push('name must be a non-empty string')
    const topics = new Set<string>()
    for (const definition of options.events) {
      if (definition.kind !== 'event' || definition.topic === undefined) {
        problems.push(`"${String(definition.type)}" is not an event definition with a topic`)
        continue
      }
      topics.add(definition.topic)
      const { createAsync } = definition as unknown as { createAsync: Revive }
      this.#byType.set(definition.type, createAsync)
    }
    if (topics.size === 0) problems.push('events must list at least one event with a topic')
    const retry = options.retry ?? {}
    const maxAttempts = retry.maxAttempts ?? 5
    const initialDelay = retry.initialDelay ?? 1000
    const maxDelay = retry.maxDelay ?? 60_000
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)
      problems.push('retry.maxAttempts must be a whole number ≥ 1')
    if (!(initialDelay >= 0 && maxDelay >= initialDelay))
      problems.push('retry needs 0 ≤ initialDelay ≤ maxDelay')
    if (problems.length > 0)
      throw new ConfigurationError(`Invalid Consumer options: ${problems.join('; ')}`, {
        problems,
      })
    this.#o = {
      ...options,
      group: options.group ?? options.name,
      logger: options.logger ?? silentLogger,
    }
    this.#topics = [...topics]
    this.#policy = {
      maxAttempts,
      delayMs: (attempt) => {
        const ceiling = Math.min(maxDelay, initialDelay * 2 ** (attempt - 1))
        return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
      },
    }
    this.#retryOn = retry.retryOn ?? isRetryable
    this.#delivery = options.inbox === undefined ? undefined : this.#scope(options.inbox)
  }

  /** Subscribes to every topic of its events (idempotent). */
  start(): Promise<void> {
    this.#started ??= (async () => {
      for (const topic of this.#topics) {
        this.#subscriptions.push(
          await this.#o.subscriber.subscribe(topic, (d, signal) => this.#handle(d, signal), {
            group: this.#o.group,
            concurrency: this.#o.concurrency ?? 1,
            retry: this.#policy,
          }),
        )
      }
    })()
    return this.#started
  }

  /** Stops taking messages, lets the ones in hand finish, returns the rest to the broker. */
  async stop(): Promise<void> {
    await this.#started?.catch(() => undefined)
    const subscriptions = this.#subscriptions.splice(0)
    this.#started = undefined // start() may subscribe again
    await Promise.all(subscriptions.map((s) => s.close()))
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  async #handle(delivery: Delivery, signal: AbortSignal): Promise<void | DeadLetterOutcome> {
    let message: Event
    try {
      message = await this.#revive(delivery)
    } catch (error) {
      return this.#deadLetter(delivery, error, 'refused')
    }
    try {
      // Every handler must succeed, or the message is redelivered (handlers that did commit are
      // then skipped by the inbox).
      const options: DispatchOptions = { signal, eventHandlerErrors: 'reject' }
      if (this.#delivery === undefined) await this.#o.bus.dispatch(message, options)
      else await deliveryScope.run(this.#delivery, dispatchTo, this.#o.bus, message, options)
    } catch (error) {
      // Stopping (the signal) or a closed bus is not the message's fault: give it back for
      // redelivery, never dead-letter it.
      if (signal.aborted || (isSwitchyardError(error) && error.code === ErrorCode.BusClosed))
        throw error
      // The bus wraps each failed event handler's error (EventHandlerFailed): judge the originals.
      const causes = (error instanceof AggregateError ? (error.errors as unknown[]) : [error]).map(
        (e) =>
          isSwitchyardError(e) && e.code === ErrorCode.EventHandlerFailed
            ? ((e as Error).cause ?? e)
            : e,
      )
      if (causes.some(this.#retryOn) && delivery.attempt < this.#policy.maxAttempts) {
        logAt(
          this.#o.logger,
          'warn',
          { err: error, messageId: delivery.id, type: message.type, attempt: delivery.attempt },
          'consumer handler failed; the message will be redelivered',
        )
        throw error
      }
      return this.#deadLetter(delivery, error, 'failed')
    }
  }

  /** The message in the delivery, decoded and validated by its definition (throws or rejects). */
  #revive(delivery: Delivery): Promise<Event> {
    const { message } = decodeEnvelope(delivery.body, this.#o.limits)
    const revive = this.#byType.get(message.type)
    if (revive === undefined || message.kind !== 'event')
      throw new SwitchyardError(
        ErrorCode.UnknownMessageType,
        `The consumer "${this.#o.name}" does not know the ${message.kind} type "${message.type}"`,
        { details: { type: message.type, consumer: this.#o.name } },
      )
    return revive(
      message.payload,
      message.causationId === undefined
        ? {
            id: message.id,
            timestamp: message.timestamp,
            correlationId: message.correlationId,
            headers: message.headers,
          }
        : {
            id: message.id,
            timestamp: message.timestamp,
            correlationId: message.correlationId,
            causationId: message.causationId,
            headers: message.headers,
          },
    )
  }

  #deadLetter(delivery: Delivery, error: unknown, why: 'refused' | 'failed'): DeadLetterOutcome {
    const code = isSwitchyardError(error) ? error.code : undefined
    const text = error instanceof Error ? error.message : String(error)
    const reason = code === undefined ? text : `${code}: ${text}`
    logAt(
      this.#o.logger,
      'error',
      { err: error, messageId: delivery.id, topic: delivery.topic, attempt: delivery.attempt },
      why === 'refused'
        ? 'consumer refused a message it cannot read; dead-lettered'
        : 'consumer handler failed for good; dead-lettered',
    )
    return { deadLetter: reason }
  }

  /** Joins each handler's database unit of work to the inbox. */
  #scope(inbox: InboxStore): DeliveryScope {
    const consumer = this.#o.name
    return {
      join: (units: readonly UnitOfWork[], handler: string, message: Message) => {
        // Work without a transaction executor (in memory) cannot hold an inbox record.
        for (const unit of units) {
          const tx = (unit as Partial<{ tx: SqlExecutor }>).tx
          if (tx !== undefined) return inbox.tryRecord(tx, `${consumer}/${handler}`, message.id)
        }
        return Promise.resolve(true)
      },
    }
  }
}
