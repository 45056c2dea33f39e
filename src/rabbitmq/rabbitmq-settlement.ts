/**
 * How a subscription settles a delivery once its handler is done (see rabbitmq-subscription.ts):
 *
 * - resolved → `basic.ack`;
 * - `{ deadLetter }`, a failure on the last attempt, or a message without a `messageId` → the
 *   message is published to the group's dead-letter exchange with `DEAD_LETTER_HEADERS`, and acked
 *   once RabbitMQ confirmed that publish;
 * - a failure before the last attempt → a copy carrying the attempts so far and the first failure
 *   time is published to the delay queue of `retry.delayMs(attempt)` (or, for 0, straight back to
 *   the group queue), and the original is acked once that publish is confirmed.
 *
 * Publish, then ack: a crash in between delivers the message again (a duplicate), never loses it.
 * If the publish fails or is unroutable, the delivery's channel is closed so RabbitMQ takes back
 * everything unacked on it, and the subscription reopens it. On a channel that is already gone
 * nothing is settled: RabbitMQ delivers the message again.
 */
import type { DeliveryHandler, Logger, RedeliveryPolicy } from '../index.js'
import { TransportError } from '../index.js'
import type { AmqpMessage, AmqpPublishOptions } from './rabbitmq-client.js'
import { type ConfirmedChannel, within } from './rabbitmq-confirms.js'
import { reasonOf } from './rabbitmq-errors.js'
import {
  attemptOf,
  deadLetterOptions,
  firstFailureOf,
  retryOptions,
  toDelivery,
} from './rabbitmq-messages.js'
import { declare, delayQueueDeclaration, type RabbitMqTopology } from './rabbitmq-topology.js'

/** A delivery as a subscription holds it: the message, its channel, its key. */
export interface Received {
  readonly message: AmqpMessage
  readonly channel: ConfirmedChannel
  readonly key: string | undefined
}

/** What settling needs to know. */
export interface SettlementSetup {
  readonly topology: RabbitMqTopology
  readonly handler: DeliveryHandler
  readonly retry: RedeliveryPolicy
  readonly publishTimeoutMs: number
  readonly logger: Logger
}

/** Runs the handler on a delivery and settles it (see the module comment). */
export async function handleAndSettle(
  setup: SettlementSetup,
  item: Received,
  signal: AbortSignal,
): Promise<void> {
  const { handler, retry, topology } = setup
  const attempt = attemptOf(item.message)
  const delivery = toDelivery(item.message, topology.topic, attempt)
  if (delivery === undefined) {
    await deadLetter(setup, item, 'the message has no messageId property', attempt)
    return
  }
  let outcome: Awaited<ReturnType<DeliveryHandler>>
  try {
    outcome = await handler(delivery, signal)
  } catch (error) {
    if (signal.aborted) return giveBack(item) // stopping is not the message's failure
    const first = firstFailureOf(item.message) ?? new Date().toISOString()
    if (attempt >= retry.maxAttempts) await deadLetter(setup, item, reasonOf(error), attempt, first)
    else await retryLater(setup, item, attempt, first)
    return
  }
  if (outcome !== undefined && outcome !== null && typeof outcome.deadLetter === 'string')
    await deadLetter(setup, item, reasonOf(outcome.deadLetter), attempt)
  else ack(item)
}

/** Returns the message to its queue for the next consumer, without counting a failure. */
function giveBack(item: Received): void {
  if (!item.channel.open) return // the channel is gone: RabbitMQ delivers the message again
  try {
    item.channel.channel.nack(item.message, false, true)
  } catch {
    // closed in the meantime: same as above
  }
}

function ack(item: Received): void {
  if (!item.channel.open) return // the channel is gone: RabbitMQ delivers the message again
  try {
    item.channel.channel.ack(item.message)
  } catch {
    // closed in the meantime: same as above
  }
}

async function deadLetter(
  setup: SettlementSetup,
  item: Received,
  reason: string,
  attempts: number,
  first?: string,
): Promise<void> {
  const { topology } = setup
  const now = new Date().toISOString()
  const options = deadLetterOptions(item.message, {
    reason,
    attempts,
    firstFailureAt: first ?? firstFailureOf(item.message) ?? now,
    lastFailureAt: now,
    topic: topology.topic,
    group: topology.group,
  })
  await publishThenAck(
    setup,
    item,
    topology.deadLetterExchange,
    topology.queue,
    options,
    'dead letter',
  )
}

async function retryLater(
  setup: SettlementSetup,
  item: Received,
  attempt: number,
  first: string,
): Promise<void> {
  const { topology, retry } = setup
  let routingKey = topology.queue
  try {
    const delay = delayQueueDeclaration(topology, retry.delayMs(attempt))
    if (delay.arguments['x-message-ttl'] !== 0) {
      if (!item.channel.open) return
      await declare(item.channel.channel, delay) // also renews its x-expires
      routingKey = delay.name
    }
  } catch (error) {
    fail(setup, item, 'declaring the delay queue', error)
    return
  }
  const options = retryOptions(item.message, attempt, first)
  await publishThenAck(setup, item, '', routingKey, options, 'retry')
}

async function publishThenAck(
  setup: SettlementSetup,
  item: Received,
  exchange: string,
  routingKey: string,
  options: AmqpPublishOptions,
  what: string,
): Promise<void> {
  if (!item.channel.open) return
  try {
    const routed = await within(
      item.channel.publish(exchange, routingKey, item.message.content, options),
      setup.publishTimeoutMs,
      `The ${what} of message "${item.message.properties.messageId ?? '?'}"`,
    )
    if (!routed) throw new TransportError(`RabbitMQ could not route the ${what} to "${routingKey}"`)
  } catch (error) {
    fail(setup, item, `publishing the ${what}`, error)
    return
  }
  ack(item)
}

function fail(setup: SettlementSetup, item: Received, doing: string, error: unknown): void {
  setup.logger.error(
    { queue: setup.topology.queue, error: reasonOf(error) },
    `RabbitMQ settlement failed while ${doing}; the message will be delivered again`,
  )
  void item.channel.close() // RabbitMQ takes back the unacked; the subscription resumes
}
