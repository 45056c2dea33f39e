/**
 * The subscriber port: how a consumer receives messages from a broker.
 *
 * Contract:
 * - `subscribe(topic, handler, { group })` receives the messages published to `topic` from the
 *   moment the group exists. Every group receives every message; within one group each message
 *   goes to one of the group's subscriptions (competing consumers, in any process).
 * - Settlement follows the handler: it resolves → the message is acknowledged (gone); it resolves
 *   with `{ deadLetter }` → the message goes to the group's dead-letter place at once, with that
 *   reason; it rejects → the message is redelivered after `retry.delayMs(attempt)`, until
 *   `retry.maxAttempts` deliveries have failed, and then dead-lettered with the error's message.
 *   A dead letter keeps the original id, key, body and headers, plus the reason, the attempts and
 *   the first and last failure times (`DEAD_LETTER_HEADERS`). Nothing is dropped silently.
 * - At least once: a message whose handler did not settle (the process died, the connection was
 *   lost, the subscription closed first) is delivered again, with the same id. `attempt` counts
 *   the deliveries the transport knows of; after a crash it may undercount.
 * - Order: transports that declare `orderedPerKey` hand out a key's messages one at a time, in
 *   publish order, also while one of them waits for a retry (the key waits with it); keyless
 *   messages and different keys run in parallel up to `concurrency`. Others say what they keep in
 *   their Characteristics table.
 * - `concurrency` bounds the handlers running at once for the subscription (the prefetch).
 * - Closing — `subscription.close()`, the `signal` aborting, or `subscriber.close()` — stops taking
 *   messages, waits for the handlers running, settles them as they finish, and returns the
 *   messages not yet handled to the broker for redelivery. A handler that rejects once its
 *   subscription is closing (its `signal` aborted) gets its message given back, not counted as a
 *   failed attempt and never dead-lettered: stopping is not the message's fault. It is idempotent and safe to call from
 *   inside a handler or several times at once.
 */
import type { TransportMessage } from './publisher.js'

/** A message handed to a subscription's handler. */
export interface Delivery extends TransportMessage {
  readonly topic: string
  /** Deliveries of this message to this group so far, this one included (1 the first time). */
  readonly attempt: number
}

/** How a handler settles a delivery other than by acknowledging it. */
export interface DeadLetterOutcome {
  /** Send the message to the dead-letter place at once, with this reason. */
  readonly deadLetter: string
}

/** Handles one delivery; see the settlement rules in the port's contract. */
export type DeliveryHandler = (
  delivery: Delivery,
  signal: AbortSignal,
) => Promise<void | DeadLetterOutcome>

/** Redelivery of failed messages. */
export interface RedeliveryPolicy {
  /** Deliveries before a failing message is dead-lettered. */
  readonly maxAttempts: number
  /** Wait before the next delivery after the `attempt`-th failed, ms. */
  readonly delayMs: (attempt: number) => number
}

/** Options of `subscribe`. */
export interface SubscribeOptions {
  /** The consumer group: each group receives every message once. */
  readonly group: string
  /** Handlers running at once. Default 1. */
  readonly concurrency?: number
  /** Default: 5 attempts, 1 s doubling to 30 s. */
  readonly retry?: RedeliveryPolicy
  /** Aborting it closes the subscription. */
  readonly signal?: AbortSignal
}

/** A running subscription. */
export interface Subscription {
  /** Stops it (see the contract); idempotent. */
  close(): Promise<void>
}

/** Receives messages from a broker. */
export interface Subscriber {
  subscribe(
    topic: string,
    handler: DeliveryHandler,
    options: SubscribeOptions,
  ): Promise<Subscription>
  /** Closes every subscription, then the connection; idempotent. */
  close(): Promise<void>
}

/** The headers a dead letter carries beside the original ones. */
export const DEAD_LETTER_HEADERS = {
  reason: 'x-switchyard-dead-reason',
  attempts: 'x-switchyard-dead-attempts',
  firstFailure: 'x-switchyard-first-failure',
  lastFailure: 'x-switchyard-last-failure',
  topic: 'x-switchyard-original-topic',
  group: 'x-switchyard-group',
} as const

/** A message in a dead-letter place, as read back from it. */
export interface DeadLetter {
  readonly message: TransportMessage
  readonly topic: string
  readonly group: string
  readonly reason: string
  readonly attempts: number
  /** ISO 8601 times. */
  readonly firstFailureAt: string
  readonly lastFailureAt: string
}

/** The default redelivery policy: 5 attempts, 1 s doubling to 30 s. */
export const DEFAULT_REDELIVERY: RedeliveryPolicy = {
  maxAttempts: 5,
  delayMs: (attempt) => Math.min(30_000, 1000 * 2 ** (attempt - 1)),
}
