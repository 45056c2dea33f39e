/**
 * T12 (RELIABILITY.md §2.3): unroutable and refused publishes behind the outbox. An `OutboxRelay`
 * (PostgreSQL store) publishes to RabbitMQ with the transport's default `unroutable: 'reject'`:
 *
 * (a) to a topic no queue is bound to: every row fails with `SWITCHYARD_UNROUTABLE`, retries, and
 *     ends dead after `maxAttempts` with that reason; none is marked published;
 * (b) once a group subscribes, the dead rows (retried) and new rows reach it;
 * (c) the exchange deleted under the relay: RabbitMQ closes the publish channel (404), the next
 *     channel declares the exchange again but the group's binding went with the old one, so the
 *     rows are refused (not dropped) until the group's topology is declared again; then they flow.
 *
 * (d) a message over the broker's `max_message_size` is not exercised: on RabbitMQ 3.10 the limit
 * is node-wide (default 128 MiB, no per-vhost or policy setting), so testing it means either
 * reconfiguring the shared broker or pushing a > 128 MiB body through PostgreSQL and amqplib.
 *
 * `silently_dropped` counts rows marked published whose message never reached the group: 0.
 */
import { describe, expect, inject, it } from 'vitest'
import { OutboxRelay } from '../../../src/index.js'
import { PostgresOutboxStore } from '../../../src/postgres/index.js'
import { report, waitFor } from '../../helpers/crash-harness.js'
import { outboxRecord, placedEvent } from '../../helpers/inbox-consumer.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null

interface Row {
  readonly id: string
  readonly state: string
  readonly attempts: number
  readonly last_error: string | null
}

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'T12: unroutable and refused publishes through the outbox relay',
  () => {
    it('keeps refused rows (retry, then dead with SWITCHYARD_UNROUTABLE) and loses none', async () => {
      const broker = new TestBroker(amqpUrl!)
      const pool = createPool(pgUrl!)
      const schema = uniqueSchema('syr')
      const topic = broker.topic('orders')
      const Placed = placedEvent(topic)
      const store = new PostgresOutboxStore({ pool, schema })
      const relays: OutboxRelay[] = []
      const startRelay = (maxAttempts: number): OutboxRelay => {
        const relay = new OutboxRelay({
          store,
          publisher: broker.transport(), // the default: unroutable 'reject'
          pollIntervalMs: 20,
          maxAttempts,
          backoff: { initialDelay: 20, maxDelay: 100 },
          publishTimeoutMs: 4000,
          leaseMs: 10_000,
        })
        relay.start()
        relays.push(relay)
        return relay
      }
      const rows = async (): Promise<Row[]> =>
        (
          await pool.query<Row>(
            `SELECT id, state, attempts, last_error FROM "${schema}".outbox ORDER BY id`,
          )
        ).rows
      let n = 0
      const append = async (count: number): Promise<string[]> => {
        const events = Array.from({ length: count }, () =>
          Placed({ orderId: `order-${n % 7}`, n: n++ }),
        )
        await inTransaction(pool, (tx) =>
          store.append(
            tx,
            events.map((e) => outboxRecord(e, topic)),
          ),
        )
        return events.map((e) => e.id)
      }
      try {
        await store.ensureSchema()

        // (a) No group bound: refused, retried, dead after maxAttempts; nothing published.
        const first = await append(6)
        const strict = startRelay(3)
        await waitFor('every row dead', async () => (await rows()).every((r) => r.state === 'dead'))
        await strict.stop()
        const dead = await rows()
        expect(dead.map((r) => r.state)).toEqual(first.map(() => 'dead'))
        for (const row of dead) {
          expect(row.attempts).toBe(3)
          expect(row.last_error).toContain('SWITCHYARD_UNROUTABLE')
        }

        // (b) A group subscribes: the dead rows, retried, and new ones reach it.
        const received = new Map<string, number>()
        const consumer = broker.transport()
        broker.track(consumer.topology(topic, 'billing'))
        await consumer.subscribe(
          topic,
          async (d) => void received.set(d.id, (received.get(d.id) ?? 0) + 1),
          { group: 'billing', concurrency: 4 },
        )
        startRelay(100)
        expect(await store.retry(first)).toBe(first.length)
        const second = await append(6)
        const flowed = [...first, ...second]
        await waitFor('the retried and new rows delivered', () =>
          flowed.every((id) => received.has(id)),
        )

        // (c) The exchange deleted under the relay: 404 closes its channel; the exchange comes
        // back with the next channel, without the group's binding: refused until declared again.
        const admin = await (await broker.raw()).createChannel()
        await admin.deleteExchange(broker.id)
        await admin.close()
        const third = await append(6)
        await waitFor('the rows refused after the exchange was deleted', async () =>
          (await rows()).some((r) => third.includes(r.id) && r.attempts >= 2),
        )
        const refused = (await rows()).filter((r) => third.includes(r.id))
        const refusedPublished = refused.filter((r) => r.state === 'published').length
        const reasons = [...new Set(refused.map((r) => r.last_error?.split(':')[0]))]
        await consumer.declareTopology(topic, 'billing') // the deploy step: binds the queue again
        const fourth = await append(6)
        const all = [...flowed, ...third, ...fourth]
        await waitFor('every row delivered after the rebinding', () =>
          all.every((id) => received.has(id)),
        )
        await waitFor('every row marked published', async () =>
          (await rows()).every((r) => r.state === 'published'),
        )

        const final = await rows()
        const silentlyDropped = final.filter(
          (r) => r.state === 'published' && !received.has(r.id),
        ).length
        const lost = all.filter((id) => !received.has(id)).length
        const duplicates = [...received.values()].reduce((sum, k) => sum + k - 1, 0)
        report('rabbitmq-unroutable', 'postgres', {
          rows: all.length,
          deadUnroutable: dead.length,
          deadAttempts: 3,
          refusedAfterExchangeDeleted: refused.length,
          refusedPublishedBeforeRebind: refusedPublished,
          refusalReasons: reasons,
          delivered: received.size,
          duplicates,
          lost,
          silently_dropped: silentlyDropped,
          oversize: 'not run: max_message_size is node-wide on 3.10 (default 128 MiB)',
        })
        expect(refusedPublished).toBe(0)
        expect(silentlyDropped).toBe(0)
        expect(lost).toBe(0)
        expect(received.size).toBe(all.length)
      } finally {
        await Promise.all(relays.map((r) => r.stop()))
        await broker.cleanup()
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      }
    }, 30_000)
  },
)
