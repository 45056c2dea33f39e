/**
 * The consumer side of the RabbitMQ fault tests (test/integration/faults/rabbitmq-*.int.test.ts):
 * one integration event, a `Consumer` with the PostgreSQL inbox whose handler writes an effects
 * table with NO unique constraint in its unit of work (a broken inbox shows as a duplicate row, not
 * as an error), a subscriber tap that sees every delivery, the effects oracle, and consumer child
 * processes (test/helpers/consumer-child.ts) forked and killed by pid.
 *
 * No vitest import here: the consumer children load this file too.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type pg from 'pg'
import { z } from 'zod'
import {
  Consumer,
  type ConsumerRetryOptions,
  type DecodeLimits,
  defineEvent,
  type Delivery,
  encodeEnvelope,
  type Event,
  type Logger,
  MessageBus,
  type OutboxAppend,
  type Subscriber,
  transient,
  type TransportMessage,
} from '../../src/index.js'
import { PostgresInboxStore, PostgresUnitOfWork } from '../../src/postgres/index.js'
import { exited } from './crash-harness.js'

/** The integration event of the tests, on `topic`, keyed by its order id. */
export function placedEvent(topic: string) {
  return defineEvent(
    'faults.Placed',
    z.object({ orderId: z.string().min(1), n: z.number().int() }),
    { topic, key: (p) => p.orderId },
  )
}
export type PlacedDefinition = ReturnType<typeof placedEvent>
export type Placed = ReturnType<PlacedDefinition>

/** A message on the wire, as the outbox writer would encode it. */
export function wire(event: Event, source = '/faults'): TransportMessage {
  const key = (event.payload as { orderId?: string }).orderId
  return { id: event.id, key, headers: event.headers, body: encodeEnvelope(event, { source, key }) }
}

/** The outbox record of an event, as `OutboxWriter` appends it. */
export function outboxRecord(event: Event, topic: string, source = '/faults'): OutboxAppend {
  const { key, headers, body } = wire(event, source)
  return { id: event.id, topic, key, type: event.type, body, headers }
}

/** Creates `schema` with the inbox and the effects table (no unique constraint on message_id). */
export async function prepareConsumerSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
  await new PostgresInboxStore({ pool, schema }).ensureSchema()
  await pool.query(
    `CREATE TABLE "${schema}".effects (
       id bigserial PRIMARY KEY,
       message_id text NOT NULL,
       pid integer NOT NULL,
       at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  )
}

/** Options of {@link inboxConsumer}. */
export interface InboxConsumerOptions {
  readonly pool: pg.Pool
  readonly schema: string
  readonly subscriber: Subscriber
  readonly event: PlacedDefinition
  /** The consumer's name: its inbox scope and its group. */
  readonly name: string
  readonly concurrency?: number
  readonly retry?: ConsumerRetryOptions
  readonly limits?: DecodeLimits
  readonly logger?: Logger
  /** Called when the bus handler starts (the inbox did not skip it). */
  readonly onHandle?: (event: Placed) => void
  /** Runs after the effect row is written, before the commit. */
  readonly beforeCommit?: (event: Placed) => Promise<void>
  /** Runs after the commit, before the handler returns (and so before the ack). */
  readonly afterCommit?: (event: Placed) => Promise<void>
}

/**
 * A consumer whose handler inserts one effects row per message in its PostgreSQL unit of work,
 * with the inbox joined to that same transaction.
 */
export function inboxConsumer(options: InboxConsumerOptions): Consumer {
  const { pool, schema } = options
  const bus = new MessageBus({
    dependencies: {
      uow: transient(() => PostgresUnitOfWork.begin({ pool, repositories: () => ({}) })),
    },
  })
  bus.handle(
    options.event,
    async (event, { deps: { uow } }) => {
      options.onHandle?.(event)
      await uow.tx.query(`INSERT INTO "${schema}".effects (message_id, pid) VALUES ($1, $2)`, [
        event.id,
        process.pid,
      ])
      await options.beforeCommit?.(event)
      await uow.commit()
      await options.afterCommit?.(event)
    },
    { deps: ['uow'], name: 'effect' },
  )
  return new Consumer({
    name: options.name,
    bus,
    subscriber: options.subscriber,
    events: [options.event],
    inbox: new PostgresInboxStore({ pool, schema }),
    concurrency: options.concurrency ?? 1,
    ...(options.retry === undefined ? {} : { retry: options.retry }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  })
}

/** How a tapped delivery was settled by the consumer's handler. */
export type Outcome = 'ack' | 'dead-letter' | 'retry'

/**
 * The subscriber with every delivery shown to `onDelivery` before the consumer handles it, and
 * its outcome to `onOutcome` after.
 */
export function tapped(
  subscriber: Subscriber,
  onDelivery: (delivery: Delivery) => void,
  onOutcome?: (delivery: Delivery, outcome: Outcome, reason?: string) => void,
): Subscriber {
  return {
    subscribe: (topic, handler, options) =>
      subscriber.subscribe(
        topic,
        async (delivery, signal) => {
          onDelivery(delivery)
          try {
            const result = await handler(delivery, signal)
            if (result !== undefined && result !== null)
              onOutcome?.(delivery, 'dead-letter', result.deadLetter)
            else onOutcome?.(delivery, 'ack')
            return result
          } catch (error) {
            onOutcome?.(delivery, 'retry', error instanceof Error ? error.message : String(error))
            throw error
          }
        },
        options,
      ),
    close: () => subscriber.close(),
  }
}

/** Effect rows per message id. */
export async function effectCounts(pool: pg.Pool, schema: string): Promise<Map<string, number>> {
  const { rows } = await pool.query<{ message_id: string; n: string }>(
    `SELECT message_id, count(*) AS n FROM "${schema}".effects GROUP BY message_id`,
  )
  return new Map(rows.map((r) => [r.message_id, Number(r.n)]))
}

/** The effects oracle: expected ids against the rows written. */
export interface EffectCheck {
  readonly expected: number
  readonly rows: number
  /** Expected ids without an effect. */
  readonly lost: number
  /** Rows beyond the first for an id (must be 0). */
  readonly dupEffects: number
  /** Effects of ids that were never expected. */
  readonly phantom: number
}

export function checkEffects(
  expected: Iterable<string>,
  counts: ReadonlyMap<string, number>,
): EffectCheck {
  const ids = new Set(expected)
  let rows = 0
  let dupEffects = 0
  let phantom = 0
  for (const [id, n] of counts) {
    rows += n
    dupEffects += n - 1
    if (!ids.has(id)) phantom++
  }
  let lost = 0
  for (const id of ids) if (!counts.has(id)) lost++
  return { expected: ids.size, rows, lost, dupEffects, phantom }
}

// ---------------------------------------------------------------------------------------------
// Consumer children (test/helpers/consumer-child.ts)

const childScript = fileURLToPath(new URL('./consumer-child.ts', import.meta.url))

/** One line of a child's log (`CONSUMER_LOG`). */
export interface ConsumerLogLine {
  /** `deliver`: the transport handed it over; `handle`: the bus handler started (not skipped by
   * the inbox); `commit`: its transaction committed; `done`: the handler returned. */
  readonly ev: 'deliver' | 'handle' | 'commit' | 'done'
  readonly id: string
  readonly pid: number
  readonly attempt?: number
  readonly t: number
}

/** Options of a consumer child; see consumer-child.ts. */
export interface ConsumerChildOptions {
  readonly amqpUrl: string
  readonly namespace: string
  readonly topic: string
  readonly name: string
  readonly pgUrl: string
  readonly schema: string
  readonly log: string
  readonly concurrency?: number
  readonly deliveryLimit?: number
  readonly handlerMs?: number
  /** Message ids whose handler SIGKILLs its own process, `poisonKillMs` into its transaction. */
  readonly poison?: readonly string[]
  readonly poisonKillMs?: number
  readonly maxAttempts?: number
}

export function consumerChildEnv(o: ConsumerChildOptions): Record<string, string> {
  return {
    CONSUMER_AMQP_URL: o.amqpUrl,
    CONSUMER_NAMESPACE: o.namespace,
    CONSUMER_TOPIC: o.topic,
    CONSUMER_NAME: o.name,
    CONSUMER_PG_URL: o.pgUrl,
    CONSUMER_SCHEMA: o.schema,
    CONSUMER_LOG: o.log,
    CONSUMER_CONCURRENCY: String(o.concurrency ?? 1),
    CONSUMER_DELIVERY_LIMIT: String(o.deliveryLimit ?? 20),
    CONSUMER_HANDLER_MS: String(o.handlerMs ?? 0),
    CONSUMER_POISON: (o.poison ?? []).join(','),
    CONSUMER_POISON_KILL_MS: String(o.poisonKillMs ?? (o.handlerMs ?? 0) / 2),
    CONSUMER_MAX_ATTEMPTS: String(o.maxAttempts ?? 5),
  }
}

/** Every consumer child a test forks, so `finally` can kill them all. */
export class ConsumerChildren {
  readonly #all = new Set<ChildProcess>()

  /** Forks a consumer child; resolves once it consumes (rejects if it exits first). */
  start(env: Record<string, string>): Promise<ChildProcess> {
    return new Promise((resolve, reject) => {
      const proc = fork(childScript, {
        env: { ...process.env, ...env },
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      })
      this.#all.add(proc)
      const timer = setTimeout(() => reject(new Error('consumer child not ready in 60 s')), 60_000)
      proc.on('message', (message: { type?: string }) => {
        if (message.type !== 'ready') return
        clearTimeout(timer)
        resolve(proc)
      })
      proc.once('error', reject)
      proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        this.#all.delete(proc)
        reject(
          new Error(`consumer child ${proc.pid} exited before ready (code ${code}, ${signal})`),
        )
      })
    })
  }

  /** SIGKILLs a child and waits for its exit. */
  kill(proc: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (exited(proc)) return resolve()
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })
  }

  killAll(): Promise<void[]> {
    return Promise.all([...this.#all].map((proc) => this.kill(proc)))
  }
}
