/**
 * How a transport message maps to AMQP and back.
 *
 * - `id` → the `messageId` property; `key` → the `x-switchyard-key` header; `headers` → the AMQP
 *   headers table (string values); `body` → the content, untouched.
 * - Every message is persistent (delivery mode 2) and carries `contentType` (the transport's
 *   option, default `application/cloudevents+json`, what the outbox relay sends) and a timestamp.
 * - A retry copy also carries `x-switchyard-failed-attempts` (deliveries that failed before it)
 *   and `x-switchyard-first-failure` (ISO time).
 * - Headers that RabbitMQ adds (`x-death`, `x-first-death-*`, `x-last-death-*`,
 *   `x-delivery-count`) and Switchyard's own are not handed to handlers, and are not copied onto
 *   retries and dead letters (which RabbitMQ would otherwise grow with every pass).
 * - `attempt` = failed attempts carried by the copy + earlier deliveries of this copy (the quorum
 *   queue's `x-delivery-count`, or 1 when a classic queue says `redelivered`) + 1. Deliveries that
 *   were returned unhandled (a subscription closed) count too: RabbitMQ cannot tell them apart.
 */
import {
  DEAD_LETTER_HEADERS,
  type DeadLetter,
  type Delivery,
  type TransportMessage,
} from '../index.js'
import type { AmqpHeaders, AmqpMessage, AmqpPublishOptions } from './rabbitmq-client.js'

/** The header that carries the ordering key. */
export const KEY_HEADER = 'x-switchyard-key'
/** On a retry copy: deliveries that failed before it. */
export const FAILED_ATTEMPTS_HEADER = 'x-switchyard-failed-attempts'

const INTERNAL = new Set<string>([
  KEY_HEADER,
  FAILED_ATTEMPTS_HEADER,
  DEAD_LETTER_HEADERS.firstFailure,
])
const BROKER = /^x-(death|first-death-|last-death-|delivery-count$)/

/** The publish options of a transport message. */
export function publishOptions(message: TransportMessage, contentType: string): AmqpPublishOptions {
  const headers: AmqpHeaders = { ...message.headers }
  if (message.key !== undefined) headers[KEY_HEADER] = message.key
  return {
    messageId: message.id,
    headers,
    contentType,
    persistent: true,
    mandatory: true,
    timestamp: Math.floor(Date.now() / 1000),
  }
}

/** The user's headers of an AMQP message (string values; internal and broker headers left out). */
export function userHeaders(headers: AmqpHeaders | undefined): Record<string, string> {
  const result: Record<string, string> = {}
  if (headers === undefined) return result
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (typeof value !== 'string' || INTERNAL.has(name) || BROKER.test(name)) continue
    result[name] = value
  }
  return result
}

function integer(value: unknown): number | undefined {
  const n = typeof value === 'string' ? Number(value) : value
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

function text(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

/** Which delivery of the message this is, 1 the first time (see the module comment). */
export function attemptOf(message: AmqpMessage): number {
  const headers = message.properties.headers ?? {}
  const failed = integer(headers[FAILED_ATTEMPTS_HEADER]) ?? 0
  const earlier =
    integer(headers['x-delivery-count']) ?? (message.fields.redelivered === true ? 1 : 0)
  return failed + earlier + 1
}

/** When the message first failed, if a retry copy says so. */
export function firstFailureOf(message: AmqpMessage): string | undefined {
  return text(message.properties.headers?.[DEAD_LETTER_HEADERS.firstFailure])
}

/** The delivery a handler gets (its own copy), or undefined when the message has no id. */
export function toDelivery(
  message: AmqpMessage,
  topic: string,
  attempt: number,
): Delivery | undefined {
  const id = message.properties.messageId
  if (typeof id !== 'string' || id === '') return undefined
  return {
    id,
    key: text(message.properties.headers?.[KEY_HEADER]),
    headers: userHeaders(message.properties.headers),
    // A copy: a handler that writes into its delivery must not change the retry or dead letter
    // published from the original bytes.
    body: new Uint8Array(message.content),
    topic,
    attempt,
  }
}

/** A copy of `message` with its user headers and key, plus `extra` headers. */
function copyOptions(message: AmqpMessage, extra: AmqpHeaders): AmqpPublishOptions {
  const headers: AmqpHeaders = userHeaders(message.properties.headers)
  const key = message.properties.headers?.[KEY_HEADER]
  if (typeof key === 'string') headers[KEY_HEADER] = key
  const options: AmqpPublishOptions = {
    headers: { ...headers, ...extra },
    persistent: true,
    mandatory: true,
    timestamp: Math.floor(Date.now() / 1000),
  }
  const { messageId, contentType } = message.properties
  return {
    ...options,
    ...(typeof messageId === 'string' ? { messageId } : {}),
    ...(typeof contentType === 'string' ? { contentType } : {}),
  }
}

/** The copy that waits in a delay queue for the next attempt. */
export function retryOptions(
  message: AmqpMessage,
  failedAttempts: number,
  firstFailureAt: string,
): AmqpPublishOptions {
  return copyOptions(message, {
    [FAILED_ATTEMPTS_HEADER]: failedAttempts,
    [DEAD_LETTER_HEADERS.firstFailure]: firstFailureAt,
  })
}

/** What a dead letter says beside the original message. */
export interface DeadLetterFacts {
  readonly reason: string
  readonly attempts: number
  readonly firstFailureAt: string
  readonly lastFailureAt: string
  readonly topic: string
  readonly group: string
}

/** The dead letter's publish options: the original's, plus `DEAD_LETTER_HEADERS`. */
export function deadLetterOptions(
  message: AmqpMessage,
  facts: DeadLetterFacts,
): AmqpPublishOptions {
  return copyOptions(message, {
    [DEAD_LETTER_HEADERS.reason]: facts.reason,
    [DEAD_LETTER_HEADERS.attempts]: String(facts.attempts),
    [DEAD_LETTER_HEADERS.firstFailure]: facts.firstFailureAt,
    [DEAD_LETTER_HEADERS.lastFailure]: facts.lastFailureAt,
    [DEAD_LETTER_HEADERS.topic]: facts.topic,
    [DEAD_LETTER_HEADERS.group]: facts.group,
  })
}

/** The time of the newest `x-death` entry (amqplib decodes timestamps as `{ value: seconds }`). */
function deathTime(headers: AmqpHeaders): string | undefined {
  const deaths = headers['x-death']
  if (!Array.isArray(deaths)) return undefined
  const time = (deaths[0] as { time?: { value?: unknown } } | undefined)?.time?.value
  return typeof time === 'number' ? new Date(time * 1000).toISOString() : undefined
}

/**
 * Reads a message of a dead-letter queue back. A dead letter RabbitMQ made itself (the quorum
 * queue's delivery limit) has no Switchyard headers: its reason names RabbitMQ's
 * (`x-first-death-reason`), and its attempts are the deliveries the limit allowed
 * (`deliveryLimit` + 1) plus the failed attempts a retry copy carried. Its `x-delivery-count` is
 * not used: on a message read from the dead-letter queue it counts that queue's own deliveries
 * (every `deadLetters()` call returns what it read, which a quorum queue counts), not the group
 * queue's.
 */
export function fromDeadLetterMessage(
  message: AmqpMessage,
  topic: string,
  group: string,
  deliveryLimit = 0,
): DeadLetter {
  const headers = message.properties.headers ?? {}
  const kept = userHeaders(headers)
  for (const name of Object.values(DEAD_LETTER_HEADERS)) delete kept[name]
  const key = text(headers[KEY_HEADER])
  const content = message.content
  const when =
    text(headers[DEAD_LETTER_HEADERS.lastFailure]) ??
    deathTime(headers) ??
    new Date((message.properties.timestamp ?? Date.now() / 1000) * 1000).toISOString()
  const brokerReason = text(headers['x-first-death-reason'])
  return {
    message: {
      id: message.properties.messageId ?? '',
      key,
      headers: kept,
      body: new Uint8Array(content.buffer, content.byteOffset, content.byteLength),
    },
    topic: text(headers[DEAD_LETTER_HEADERS.topic]) ?? topic,
    group: text(headers[DEAD_LETTER_HEADERS.group]) ?? group,
    reason:
      text(headers[DEAD_LETTER_HEADERS.reason]) ??
      `RabbitMQ dead-lettered it (${brokerReason ?? 'unknown reason'})`,
    attempts:
      integer(headers[DEAD_LETTER_HEADERS.attempts]) ??
      (brokerReason === 'delivery_limit' && deliveryLimit > 0
        ? (integer(headers[FAILED_ATTEMPTS_HEADER]) ?? 0) + deliveryLimit + 1
        : 0),
    firstFailureAt: text(headers[DEAD_LETTER_HEADERS.firstFailure]) ?? when,
    lastFailureAt: when,
  }
}
