/**
 * Concurrent duplicates (RELIABILITY.md T14, MassTransit's InboxLock shape) on RabbitMQ: three
 * consumers of one group, each on its own connection with a prefetch of 1, and every message id
 * published three times at once, so its three copies reach the three consumers together while the
 * first handler is still in its transaction. The PostgreSQL inbox must let exactly one of them
 * apply the effect (the effects table has no unique constraint); the others wait for it, then are
 * acknowledged and skipped, never dead-lettered. SWITCHYARD_CHAOS_SCALE multiplies the ids.
 */
import { performance } from 'node:perf_hooks'
import { describe, expect, inject, it } from 'vitest'
import type { Consumer } from '../../../src/index.js'
import { chaosScale, report, sleep, waitFor } from '../../helpers/crash-harness.js'
import {
  checkEffects,
  effectCounts,
  inboxConsumer,
  placedEvent,
  prepareConsumerSchema,
  tapped,
  wire,
} from '../../helpers/inbox-consumer.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const IDS = 20 * chaosScale
const COPIES = 3
/** How long the winning handler holds its transaction open after writing its effect. */
const HANDLER_MS = 150
const GROUP = 'shipping'

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'the same message three times at once at three consumers (T14)',
  () => {
    it(`applies one effect per id for ${IDS} ids delivered ${COPIES} times concurrently`, async () => {
      const broker = new TestBroker(amqpUrl!)
      const pool = createPool(pgUrl!)
      const schema = uniqueSchema('syr')
      const topic = broker.topic('orders')
      const Placed = placedEvent(topic)
      const consumers: Consumer[] = []
      try {
        await prepareConsumerSchema(pool, schema)
        const deliveries: { id: string; consumer: number; at: number }[] = []
        const handled: { id: string; at: number }[] = []
        const outcomes: { id: string; outcome: string; reason?: string }[] = []
        for (let c = 0; c < COPIES; c++) {
          const transport = broker.transport() // its own connection: another service instance
          if (c === 0) broker.track(transport.topology(topic, GROUP))
          const consumer = inboxConsumer({
            pool,
            schema,
            subscriber: tapped(
              transport,
              (d) => deliveries.push({ id: d.id, consumer: c, at: performance.now() }),
              (d, outcome, reason) =>
                outcomes.push({ id: d.id, outcome, ...(reason === undefined ? {} : { reason }) }),
            ),
            event: Placed,
            name: GROUP,
            concurrency: 1,
            onHandle: (e) => handled.push({ id: e.id, at: performance.now() }),
            beforeCommit: () => sleep(HANDLER_MS),
          })
          await consumer.start()
          consumers.push(consumer)
        }
        const publisher = broker.transport({ unroutable: 'reject' })
        const ids: string[] = []
        const started = performance.now()
        for (let i = 0; i < IDS; i++) {
          const message = wire(Placed({ orderId: `order-${i}`, n: i }))
          ids.push(message.id)
          await publisher.publish(
            topic,
            Array.from({ length: COPIES }, () => message),
          )
        }
        await waitFor('every copy settled', () => outcomes.length >= IDS * COPIES, 60_000)
        const elapsedMs = Math.round(performance.now() - started)
        await sleep(200)

        // Per id: did its copies reach distinct consumers while the first handler still ran?
        let concurrent = 0
        let spreadMs = 0
        for (const id of ids) {
          const copies = deliveries.filter((d) => d.id === id)
          const first = handled.find((h) => h.id === id)
          const spread = Math.max(...copies.map((d) => d.at)) - Math.min(...copies.map((d) => d.at))
          spreadMs = Math.max(spreadMs, spread)
          if (
            first !== undefined &&
            new Set(copies.map((d) => d.consumer)).size === COPIES &&
            copies.every((d) => d.at < first.at + HANDLER_MS)
          )
            concurrent++
        }
        const effects = checkEffects(ids, await effectCounts(pool, schema))
        const deadLetters = await publisher.deadLetters(topic, GROUP)
        report('rabbitmq-concurrent-duplicates', 'postgres', {
          scale: chaosScale,
          ids: IDS,
          copies: COPIES,
          deliveries: deliveries.length,
          idsDeliveredConcurrently: concurrent,
          maxCopySpreadMs: Math.round(spreadMs),
          handlerInvocations: handled.length,
          effects: effects.rows,
          dupEffects: effects.dupEffects,
          lost: effects.lost,
          falseDeadLetters: deadLetters.length,
          retries: outcomes.filter((o) => o.outcome === 'retry').length,
          elapsedMs,
        })
        expect(
          concurrent,
          'most ids must reach three consumers while the first handler runs, or the test proves nothing',
        ).toBeGreaterThanOrEqual(IDS / 2)
        expect(deliveries).toHaveLength(IDS * COPIES)
        expect(effects.rows).toBe(IDS)
        expect(effects.dupEffects).toBe(0)
        expect(effects.lost).toBe(0)
        expect(handled).toHaveLength(IDS) // the duplicates were skipped by the inbox
        expect(outcomes.filter((o) => o.outcome !== 'ack')).toEqual([])
        expect(deadLetters).toEqual([])
      } finally {
        await Promise.all(consumers.map((c) => c.stop()))
        await broker.cleanup()
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      }
    }, 90_000)
  },
)
