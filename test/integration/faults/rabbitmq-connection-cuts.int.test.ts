/**
 * Broker connection faults (RELIABILITY.md T10 at CI size) on the whole path: a producer commits
 * 5,000 messages to a PostgreSQL outbox, an `OutboxRelay` publishes them to a `RabbitMqTransport`,
 * and a `Consumer` with the PostgreSQL inbox applies each one by writing an effects row (no unique
 * constraint) in its unit of work. Both transports reach RabbitMQ through a TCP fault proxy that
 * twice refuses connections and resets the live ones for a few seconds. Nothing may be lost, no
 * effect may be applied twice, and the relay and the consumer must resume on their own: the test
 * reports how long each took after the broker came back, and the duplicates the faults caused
 * (re-published messages and redeliveries). SWITCHYARD_CHAOS_SCALE multiplies the message count.
 */
import { performance } from 'node:perf_hooks'
import { describe, expect, inject, it } from 'vitest'
import { type OutboxAppend, OutboxRelay, type Publisher } from '../../../src/index.js'
import { PostgresOutboxStore } from '../../../src/postgres/index.js'
import { chaosScale, messageId, report, sleep, waitFor } from '../../helpers/crash-harness.js'
import {
  checkEffects,
  effectCounts,
  inboxConsumer,
  outboxRecord,
  placedEvent,
  prepareConsumerSchema,
  tapped,
} from '../../helpers/inbox-consumer.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'
import { TcpProxy } from '../../helpers/tcp-proxy.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const MESSAGES = 5000 * chaosScale
const KEYS = 100
const PER_TX = 50
/** Pause between producer transactions: production spans both cuts. */
const PRODUCE_PAUSE_MS = 80
const CUTS = 2
const OUTAGE_MS = 3000
const GROUP = 'billing'

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'RabbitMQ connection cuts while relaying and consuming (T10)',
  () => {
    it(`loses nothing and applies each of ${MESSAGES} effects once across ${CUTS} broker outages`, async () => {
      const broker = new TestBroker(amqpUrl!)
      const proxy = await TcpProxy.start({ upstream: amqpUrl! })
      const viaProxy = proxy.url(amqpUrl!)
      const relayPool = createPool(pgUrl!)
      const consumerPool = createPool(pgUrl!)
      const schema = uniqueSchema('syr')
      const topic = broker.topic('orders')
      const Placed = placedEvent(topic)
      const stops: (() => Promise<void>)[] = []
      try {
        const outbox = new PostgresOutboxStore({ pool: relayPool, schema })
        await outbox.ensureSchema()
        await prepareConsumerSchema(consumerPool, schema)

        // The consumer, through the proxy; its subscription declares the group's topology.
        const consumerTransport = broker.transport({}, viaProxy)
        broker.track(consumerTransport.topology(topic, GROUP))
        const delivered: { id: string; at: number }[] = []
        const consumer = inboxConsumer({
          pool: consumerPool,
          schema,
          subscriber: tapped(consumerTransport, (d) =>
            delivered.push({ id: d.id, at: performance.now() }),
          ),
          event: Placed,
          name: GROUP,
          concurrency: 8,
          retry: { maxAttempts: 10, initialDelay: 50, maxDelay: 500 },
        })
        await consumer.start()
        stops.push(() => consumer.stop())

        // The relay, through the proxy; every confirmed publish is recorded.
        const publisherTransport = broker.transport(
          { unroutable: 'reject', publishTimeoutMs: 4000 },
          viaProxy,
        )
        const confirmed: { ids: string[]; at: number }[] = []
        let publishFailures = 0
        const publisher: Publisher = {
          publish: async (t, messages) => {
            try {
              await publisherTransport.publish(t, messages)
            } catch (error) {
              publishFailures++
              throw error
            }
            confirmed.push({ ids: messages.map((m) => m.id), at: performance.now() })
          },
          close: () => publisherTransport.close(),
        }
        const relay = new OutboxRelay({
          store: outbox,
          publisher,
          batchSize: 100,
          leaseMs: 10_000,
          publishTimeoutMs: 5000,
          pollIntervalMs: 50,
          maxAttempts: 50,
          backoff: { initialDelay: 100, maxDelay: 1000 },
        })
        relay.start()
        stops.push(() => relay.stop())

        // The producer: PER_TX messages per transaction over KEYS keys.
        const expected: string[] = []
        const started = performance.now()
        const producing = (async () => {
          for (let start = 0; start < MESSAGES; start += PER_TX) {
            const records: OutboxAppend[] = []
            for (let i = start; i < Math.min(start + PER_TX, MESSAGES); i++) {
              const event = Placed({ orderId: `order-${i % KEYS}`, n: i }, { id: messageId(i) })
              records.push(outboxRecord(event, topic))
            }
            await inTransaction(relayPool, (tx) => outbox.append(tx, records))
            for (const r of records) expected.push(r.id)
            await sleep(PRODUCE_PAUSE_MS)
          }
        })()

        // The faults: at 25 % and 60 % of production, refuse and reset every broker connection.
        const outages: {
          atCommitted: number
          outageMs: number
          relayRecoveryMs: number
          consumerRecoveryMs: number
        }[] = []
        for (let cut = 0; cut < CUTS; cut++) {
          const at = Math.floor((MESSAGES * (cut === 0 ? 0.25 : 0.6)) / PER_TX) * PER_TX
          await waitFor(`${at} messages committed`, () => expected.length >= at)
          const downAt = performance.now()
          proxy.down()
          proxy.cut()
          await sleep(OUTAGE_MS)
          await proxy.up()
          const upAt = performance.now()
          // Each resumes on its own: the first confirm and the first delivery after the heal.
          await waitFor('the relay to publish again', () => confirmed.some((c) => c.at > upAt))
          await waitFor('the consumer to receive again', () => delivered.some((d) => d.at > upAt))
          outages.push({
            atCommitted: at,
            outageMs: Math.round(upAt - downAt),
            relayRecoveryMs: Math.round(confirmed.find((c) => c.at > upAt)!.at - upAt),
            consumerRecoveryMs: Math.round(delivered.find((d) => d.at > upAt)!.at - upAt),
          })
        }
        await producing
        await waitFor(
          'every effect',
          async () => (await effectCounts(consumerPool, schema)).size >= MESSAGES,
          60_000,
        )
        await waitFor('the outbox to drain', async () => {
          const s = await outbox.status()
          return s.pending + s.inflight === 0
        })
        const elapsedMs = Math.round(performance.now() - started)
        // Redeliveries still on their way would only add deliveries, never effects: let them land.
        await sleep(500)
        await relay.stop()
        await consumer.stop()
        stops.length = 0

        const status = await outbox.status()
        const effects = checkEffects(expected, await effectCounts(consumerPool, schema))
        const publishedIds = confirmed.flatMap((c) => c.ids)
        const deadLetters = await consumerTransport.deadLetters(topic, GROUP)
        report('rabbitmq-connection-cuts', 'postgres', {
          scale: chaosScale,
          messages: MESSAGES,
          keys: KEYS,
          cuts: CUTS,
          outages,
          maxRelayRecoveryMs: Math.max(...outages.map((o) => o.relayRecoveryMs)),
          maxConsumerRecoveryMs: Math.max(...outages.map((o) => o.consumerRecoveryMs)),
          publishFailures,
          dupPublishes: publishedIds.length - new Set(publishedIds).size,
          deliveries: delivered.length,
          dupDeliveries: delivered.length - new Set(delivered.map((d) => d.id)).size,
          lost: effects.lost,
          dupEffects: effects.dupEffects,
          phantom: effects.phantom,
          outboxDead: status.dead,
          deadLettered: deadLetters.length,
          proxyCuts: proxy.stats().cuts,
          elapsedMs,
        })
        expect(proxy.stats().cuts, 'the cuts must hit live connections').toBeGreaterThanOrEqual(
          2 * CUTS,
        )
        expect(effects.lost).toBe(0)
        expect(effects.dupEffects).toBe(0)
        expect(effects.phantom).toBe(0)
        expect(status).toMatchObject({ pending: 0, inflight: 0, dead: 0, published: MESSAGES })
        expect(new Set(publishedIds).size).toBe(MESSAGES)
        expect(deadLetters).toEqual([])
      } finally {
        for (const stop of stops.reverse()) await stop().catch(() => undefined)
        await broker.cleanup()
        await proxy.close()
        await relayPool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await relayPool.end()
        await consumerPool.end()
      }
    }, 120_000)
  },
)
