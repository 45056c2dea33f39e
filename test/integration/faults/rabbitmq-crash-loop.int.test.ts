/**
 * Crash-looping message (RELIABILITY.md T17) on RabbitMQ: a poison message whose handler kills
 * its own process (SIGKILL) every time. It never returns an error, so only the broker's count can
 * stop the loop: the group's quorum queue counts every delivery that ended without a settlement
 * and, past its `x-delivery-limit` (the transport's `deliveryLimit`), dead-letters the message to
 * the group's dead-letter queue, where `deadLetters()` reads it with the reason. A supervisor (the
 * test) restarts every consumer child that dies. Meanwhile the other messages, on other keys, must
 * keep flowing through the surviving consumers and each be applied exactly once.
 *
 * Two deployments:
 * - two consumer processes with one handler at a time each (prefetch 1): the poison holds only
 *   itself when it kills a process;
 * - one process with four handlers at a time (prefetch 4), where the poison dies quickly (5 ms
 *   into its transaction) while the messages delivered with it take 100 ms. At each crash those
 *   are returned with the poison; RabbitMQ gives the returned messages back first, so the
 *   restarted consumer receives the same company again, and the quorum queue counts their
 *   unsettled deliveries as it counts the poison's. This case shows whether innocent messages
 *   share the poison's fate (dead-lettered at the same delivery limit).
 * SWITCHYARD_CHAOS_SCALE multiplies the other messages.
 */
import type { ChildProcess } from 'node:child_process'
import { describe, expect, inject, it } from 'vitest'
import type { DeadLetter } from '../../../src/index.js'
import {
  chaosScale,
  exited,
  messageId,
  readJsonLines,
  report,
  scratch,
  sleep,
} from '../../helpers/crash-harness.js'
import {
  checkEffects,
  type ConsumerLogLine,
  consumerChildEnv,
  ConsumerChildren,
  effectCounts,
  placedEvent,
  prepareConsumerSchema,
  wire,
} from '../../helpers/inbox-consumer.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const KEYS = 10
const DELIVERY_LIMIT = 3
const GROUP = 'billing'
const POISON = 'poison-0001'

const cases = [
  {
    children: 2,
    concurrency: 1,
    others: 200 * chaosScale,
    handlerMs: 20,
    poisonKillMs: 10,
    title: 'two processes, one handler at a time each',
  },
  {
    children: 1,
    concurrency: 4,
    others: 100 * chaosScale,
    handlerMs: 100,
    poisonKillMs: 5,
    title: 'one process, four handlers at a time',
  },
]

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'crash-looping message on RabbitMQ (T17)',
  () => {
    it.each(cases)(
      'dead-letters the poison after at most deliveryLimit + 1 deliveries while other keys flow: $title',
      async ({ children: processes, concurrency, others: total, handlerMs, poisonKillMs }) => {
        const broker = new TestBroker(amqpUrl!)
        const pool = createPool(pgUrl!)
        const schema = uniqueSchema('syr')
        const files = scratch()
        const children = new ConsumerChildren()
        const topic = broker.topic('orders')
        const Placed = placedEvent(topic)
        try {
          await prepareConsumerSchema(pool, schema)
          const publisher = broker.transport({
            unroutable: 'reject',
            deliveryLimit: DELIVERY_LIMIT,
          })
          broker.track(await publisher.declareTopology(topic, GROUP))
          const log = files.file('consumer.jsonl')
          const env = consumerChildEnv({
            amqpUrl: amqpUrl!,
            namespace: broker.id,
            topic,
            name: GROUP,
            pgUrl: pgUrl!,
            schema,
            log,
            concurrency,
            deliveryLimit: DELIVERY_LIMIT,
            handlerMs,
            poison: [POISON],
            poisonKillMs,
          })
          // Some messages, the poison (on a key of its own), then the rest.
          const others: string[] = []
          const other = (i: number) => {
            const event = Placed({ orderId: `order-${i % KEYS}`, n: i }, { id: messageId(i) })
            others.push(event.id)
            return wire(event)
          }
          const head = Math.floor(total / 10)
          await publisher.publish(
            topic,
            Array.from({ length: head }, (_, i) => other(i)),
          )
          await publisher.publish(topic, [
            wire(Placed({ orderId: 'poison', n: -1 }, { id: POISON })),
          ])
          await publisher.publish(
            topic,
            Array.from({ length: total - head }, (_, i) => other(head + i)),
          )

          // The supervisor: restarts every consumer that dies, until the work is done.
          const started = Date.now()
          const running: ChildProcess[] = await Promise.all(
            Array.from({ length: processes }, () => children.start(env)),
          )
          let deaths = 0
          let letters: DeadLetter[] = []
          let deadLetteredAt = 0
          const deadline = Date.now() + 90_000
          for (;;) {
            for (let slot = 0; slot < running.length; slot++) {
              if (!exited(running[slot]!)) continue
              deaths++
              running[slot] = await children.start(env)
            }
            letters = await publisher.deadLetters(topic, GROUP)
            if (deadLetteredAt === 0 && letters.some((l) => l.message.id === POISON))
              deadLetteredAt = Date.now()
            // Done when the poison is dead-lettered and every other message is applied or, as
            // collateral of the crash loop, dead-lettered too (the assertions below tell).
            const effects = await effectCounts(pool, schema)
            const lettered = new Set(letters.map((l) => l.message.id))
            if (deadLetteredAt > 0 && others.every((id) => effects.has(id) || lettered.has(id)))
              break
            if (Date.now() > deadline)
              throw new Error(
                `not done in 90 s: ${deaths} deaths, poison dead-lettered: ${deadLetteredAt > 0}, ${effects.size} of ${total} effects`,
              )
            await sleep(100)
          }
          const elapsedMs = Date.now() - started
          await sleep(500)
          await children.killAll()

          letters = await publisher.deadLetters(topic, GROUP)
          const lines = readJsonLines<ConsumerLogLine>(log)
          const poisonDeliveries = lines.filter((l) => l.id === POISON && l.ev === 'deliver')
          const poisonHandled = lines.filter((l) => l.id === POISON && l.ev === 'handle')
          const firstPoisonAt = poisonHandled[0]?.t ?? 0
          const counts = await effectCounts(pool, schema)
          const effects = checkEffects(others, counts)
          const { rows } = await pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM "${schema}".effects
            WHERE message_id <> $1 AND at BETWEEN to_timestamp($2 / 1000.0) AND to_timestamp($3 / 1000.0)`,
            [POISON, firstPoisonAt, deadLetteredAt],
          )
          const poisonLetter = letters.find((l) => l.message.id === POISON)
          const collateral = letters.filter((l) => l.message.id !== POISON)
          report('rabbitmq-crash-loop', 'postgres', {
            scale: chaosScale,
            processes,
            concurrency,
            deliveryLimit: DELIVERY_LIMIT,
            others: total,
            handlerMs,
            poisonKillMs,
            deaths,
            poisonDeliveries: poisonDeliveries.map((d) => d.attempt),
            poisonDeadLettered: poisonLetter !== undefined,
            reason: poisonLetter?.reason,
            attempts: poisonLetter?.attempts,
            crashLoopMs: deadLetteredAt - firstPoisonAt,
            othersAppliedDuringCrashLoop: Number(rows[0]!.n),
            poisonHandledAtMs: poisonHandled.map((l) => l.t - started),
            collateralDeadLetters: collateral.length,
            lost: effects.lost,
            dupEffects: effects.dupEffects,
            elapsedMs,
          })
          expect(poisonLetter).toBeDefined()
          expect(poisonLetter!.reason).toMatch(/delivery_limit/)
          expect(poisonLetter!.attempts).toBe(DELIVERY_LIMIT + 1)
          expect(poisonHandled.length).toBeGreaterThanOrEqual(1)
          expect(poisonHandled.length).toBeLessThanOrEqual(DELIVERY_LIMIT + 1)
          expect(deaths).toBe(poisonHandled.length)
          expect(counts.has(POISON)).toBe(false)
          expect(effects.lost).toBe(0)
          expect(effects.dupEffects).toBe(0)
          expect(collateral.map((l) => l.message.id)).toEqual([])
        } finally {
          await children.killAll()
          await broker.cleanup()
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          await pool.end()
          files.remove()
        }
      },
      150_000,
    )
  },
)
