/**
 * The RabbitMQ topology of a topic and a consumer group, as data: what `RabbitMqTransport`
 * declares, and what `formatRabbitMqTopology` prints for operators (or a deploy script).
 *
 * Per namespace (an option of the transport, default `switchyard`):
 * - one durable **topic exchange** named after the namespace; a message's topic is its routing key.
 *
 * Per topic and group (`<q>` = `<namespace>:<topic>:<group>`):
 * - the **group queue** `<q>` (durable; quorum by default), bound to the exchange with the topic as
 *   its binding key. Every group has its own queue, so every group receives every message; the
 *   subscriptions of one group compete for it.
 * - the **dead-letter exchange** `<q>:dlx` (fanout) and **dead-letter queue** `<q>:dlq`. Switchyard
 *   publishes dead letters there itself (confirmed, then acks the original). The group queue also
 *   names it as its `x-dead-letter-exchange`, so what the broker dead-letters on its own (a quorum
 *   queue's `x-delivery-limit` against crash loops) lands in the same place.
 * - **delay queues** `<q>:delay:<ms>`, one per distinct retry delay (rounded up to two significant
 *   digits so jitter cannot create unbounded queues). Classic, durable, with `x-message-ttl` = the
 *   delay and the default exchange as dead-letter exchange with `<q>` as routing key: a retried
 *   message waits there, expires, and RabbitMQ moves it back to the tail of its own group queue
 *   only. Each is declared just before use and expires (`x-expires`) when unused for the delay
 *   plus at least a minute, so unusual delays do not pile up. The hop back is RabbitMQ's internal
 *   dead-lettering, which is at-most-once (a message is lost only if the group queue is gone).
 *
 * Declaring is idempotent: the same names and arguments every time. A queue that already exists
 * with other arguments (say classic where quorum is configured) makes RabbitMQ refuse with
 * PRECONDITION_FAILED; delete it or match the options.
 */
import { ConfigurationError, type RedeliveryPolicy } from '../index.js'
import type { AmqpConfirmChannel } from './rabbitmq-client.js'

/** The queue type of group and dead-letter queues. */
export type RabbitMqQueueType = 'quorum' | 'classic'

/** What the topology of a group depends on. */
export interface RabbitMqTopologyOptions {
  /** The exchange's name and the first part of every queue's. Default `switchyard`. */
  readonly namespace?: string
  /** Default `quorum` (replicated, delivery limit, at-least-once dead-lettering). */
  readonly queueType?: RabbitMqQueueType
  /**
   * Quorum only: deliveries of a message that end without a settlement (the consumer crashed, its
   * channel closed) before RabbitMQ dead-letters it to `<q>:dlq`; stops crash loops. Default 20;
   * `0` for no limit. Classic queues have no limit: a message that kills its consumer is retried
   * forever.
   */
  readonly deliveryLimit?: number
}

/** One thing to declare. */
export type RabbitMqDeclaration =
  | {
      readonly kind: 'exchange'
      readonly name: string
      readonly type: 'topic' | 'fanout'
      readonly durable: true
    }
  | {
      readonly kind: 'queue'
      readonly role: 'group' | 'dead-letter' | 'delay'
      readonly name: string
      readonly durable: true
      readonly arguments: Readonly<Record<string, string | number>>
      /** Delay queues are declared just before use, not up front. */
      readonly onDemand: boolean
    }
  | {
      readonly kind: 'binding'
      readonly queue: string
      readonly exchange: string
      readonly routingKey: string
    }

/** The names of one group's topology. */
export interface RabbitMqGroupNames {
  readonly exchange: string
  readonly queue: string
  readonly deadLetterExchange: string
  readonly deadLetterQueue: string
}

/** The topology of one topic and group, in declaration order. */
export interface RabbitMqTopology extends RabbitMqGroupNames {
  readonly topic: string
  readonly group: string
  readonly declarations: readonly RabbitMqDeclaration[]
}

const SEPARATOR = ':'
const MAX_NAME_BYTES = 255
/** Room left in a queue name for `:delay:<ms>`. */
const DELAY_SUFFIX_BYTES = 20

/** Checks a namespace, topic or group name; returns the problems found. */
export function nameProblems(kind: 'namespace' | 'topic' | 'group', value: unknown): string[] {
  if (typeof value !== 'string' || value === '') return [`${kind} must be a non-empty string`]
  const problems: string[] = []
  if (value.includes(SEPARATOR))
    problems.push(`${kind} "${value}" must not contain "${SEPARATOR}" (it separates name parts)`)
  if (kind !== 'group' && /[*#]/.test(value))
    problems.push(`${kind} "${value}" must not contain "*" or "#" (topic exchange wildcards)`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    problems.push(`${kind} must not contain control characters`)
  if (kind === 'namespace' && value.startsWith('amq.'))
    problems.push('namespace must not start with "amq." (reserved by RabbitMQ)')
  return problems
}

/** The names of a group's exchange and queues. Throws `ConfigurationError` on a bad name. */
export function rabbitMqGroupNames(
  namespace: string,
  topic: string,
  group: string,
): RabbitMqGroupNames {
  const problems = [
    ...nameProblems('namespace', namespace),
    ...nameProblems('topic', topic),
    ...nameProblems('group', group),
  ]
  const queue = [namespace, topic, group].join(SEPARATOR)
  if (problems.length === 0 && Buffer.byteLength(queue) + DELAY_SUFFIX_BYTES > MAX_NAME_BYTES)
    problems.push(
      `queue name "${queue.slice(0, 60)}…" is too long: namespace, topic and group together must stay under ${MAX_NAME_BYTES - DELAY_SUFFIX_BYTES} bytes`,
    )
  if (problems.length > 0)
    throw new ConfigurationError(`Invalid RabbitMQ names: ${problems.join('; ')}`, { problems })
  return {
    exchange: namespace,
    queue,
    deadLetterExchange: `${queue}${SEPARATOR}dlx`,
    deadLetterQueue: `${queue}${SEPARATOR}dlq`,
  }
}

/** A retry delay rounded up to two significant digits (never shorter than asked). */
export function roundDelay(delayMs: number): number {
  if (!Number.isFinite(delayMs) || delayMs <= 0) return 0
  const ms = Math.ceil(delayMs)
  const unit = 10 ** Math.max(0, Math.floor(Math.log10(ms)) - 1)
  return Math.ceil(ms / unit) * unit
}

/** The delay queue of a group for one (rounded) delay. */
export function delayQueueDeclaration(
  names: RabbitMqGroupNames,
  delayMs: number,
): Extract<RabbitMqDeclaration, { kind: 'queue' }> {
  const ms = roundDelay(delayMs)
  return {
    kind: 'queue',
    role: 'delay',
    name: `${names.queue}${SEPARATOR}delay${SEPARATOR}${ms}`,
    durable: true,
    arguments: {
      'x-queue-type': 'classic',
      'x-message-ttl': ms,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': names.queue,
      'x-expires': ms + Math.max(ms, 60_000),
    },
    onDemand: true,
  }
}

/**
 * The topology of a topic and group. With `retry`, it also lists the delay queues its delays
 * use (attempts 1 to `maxAttempts - 1`); they are declared on first use.
 */
export function rabbitMqTopology(
  topic: string,
  group: string,
  options: RabbitMqTopologyOptions & { readonly retry?: RedeliveryPolicy } = {},
): RabbitMqTopology {
  const queueType = options.queueType ?? 'quorum'
  const deliveryLimit = options.deliveryLimit ?? 20
  if (!Number.isSafeInteger(deliveryLimit) || deliveryLimit < 0)
    throw new ConfigurationError('deliveryLimit must be a whole number ≥ 0 (0: no limit)')
  if (queueType !== 'quorum' && queueType !== 'classic')
    throw new ConfigurationError(
      `queueType must be "quorum" or "classic" (is "${String(queueType)}")`,
    )
  const names = rabbitMqGroupNames(options.namespace ?? 'switchyard', topic, group)
  const groupArguments: Record<string, string | number> = {
    'x-queue-type': queueType,
    'x-dead-letter-exchange': names.deadLetterExchange,
  }
  if (queueType === 'quorum') {
    groupArguments['x-dead-letter-strategy'] = 'at-least-once'
    groupArguments['x-overflow'] = 'reject-publish'
    if (deliveryLimit > 0) groupArguments['x-delivery-limit'] = deliveryLimit
  }
  const delays = new Set<number>()
  const retry = options.retry
  for (let attempt = 1; retry !== undefined && attempt < retry.maxAttempts; attempt++) {
    const ms = roundDelay(retry.delayMs(attempt))
    if (ms > 0) delays.add(ms)
  }
  const declarations: RabbitMqDeclaration[] = [
    { kind: 'exchange', name: names.exchange, type: 'topic', durable: true },
    { kind: 'exchange', name: names.deadLetterExchange, type: 'fanout', durable: true },
    {
      kind: 'queue',
      role: 'dead-letter',
      name: names.deadLetterQueue,
      durable: true,
      arguments: { 'x-queue-type': queueType },
      onDemand: false,
    },
    {
      kind: 'binding',
      queue: names.deadLetterQueue,
      exchange: names.deadLetterExchange,
      routingKey: '',
    },
    {
      kind: 'queue',
      role: 'group',
      name: names.queue,
      durable: true,
      arguments: groupArguments,
      onDemand: false,
    },
    { kind: 'binding', queue: names.queue, exchange: names.exchange, routingKey: topic },
    ...[...delays].sort((a, b) => a - b).map((ms) => delayQueueDeclaration(names, ms)),
  ]
  return { topic, group, ...names, declarations }
}

/** The topology as text, one declaration per line. */
export function formatRabbitMqTopology(topology: RabbitMqTopology): string {
  const lines = [`# topic "${topology.topic}", group "${topology.group}"`]
  for (const d of topology.declarations) {
    switch (d.kind) {
      case 'exchange':
        lines.push(`exchange ${d.name} (${d.type}, durable)`)
        break
      case 'queue': {
        const args = Object.entries(d.arguments)
          .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
          .join(' ')
        const when = d.onDemand ? ' [declared on first use]' : ''
        lines.push(`queue ${d.name} (${d.role}, durable) ${args}${when}`)
        break
      }
      case 'binding':
        lines.push(
          `bind ${d.exchange} -> ${d.queue}${d.routingKey === '' ? '' : ` key "${d.routingKey}"`}`,
        )
        break
    }
  }
  return lines.join('\n')
}

/** Declares one declaration. */
export async function declare(
  channel: AmqpConfirmChannel,
  declaration: RabbitMqDeclaration,
): Promise<void> {
  switch (declaration.kind) {
    case 'exchange':
      await channel.assertExchange(declaration.name, declaration.type, { durable: true })
      return
    case 'queue':
      await channel.assertQueue(declaration.name, {
        durable: true,
        arguments: { ...declaration.arguments },
      })
      return
    case 'binding':
      await channel.bindQueue(declaration.queue, declaration.exchange, declaration.routingKey)
      return
  }
}

/** Declares everything but the on-demand delay queues, in order (idempotent). */
export async function declareRabbitMqTopology(
  channel: AmqpConfirmChannel,
  topology: RabbitMqTopology,
): Promise<void> {
  for (const declaration of topology.declarations) {
    if (declaration.kind === 'queue' && declaration.onDemand) continue
    await declare(channel, declaration)
  }
}
