/**
 * T16 (RELIABILITY.md §2.3): poison and flaky handlers. A `Consumer` with the PostgreSQL inbox on
 * RabbitMQ; its handler writes its effect row, then throws before the commit for ~5 % of the
 * deliveries at random (transient) and always for a few poison ids. With a small retry policy:
 *
 * - each poison id is in the dead-letter queue after exactly `maxAttempts` deliveries, with the
 *   handler's error as reason, its attempts, first and last failure times and its original headers;
 * - every observed redelivery delay (from the failure to the next delivery) is at least the
 *   configured minimum: the consumer's jittered delay lies between half and all of
 *   `min(maxDelay, initialDelay × 2^(attempt − 1))`, and the transport rounds it up;
 * - `published = effects + dead_lettered`, and no message has two effect rows.
 */
import { describe, expect, inject, it } from 'vitest'
import type { Consumer, RedeliveryPolicy } from '../../../src/index.js'
import { chaosScale, chaosSeed, random, report, waitFor } from '../../helpers/crash-harness.js'
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
const MAX_ATTEMPTS = 3
const INITIAL_DELAY = 100
const MAX_DELAY = 200
/** Where a tapped clock may disagree with the broker's TTL clock (ms resolution). */
const CLOCK_SLACK_MS = 2

/** The shortest delay the consumer may choose before attempt `attempt + 1`. */
const minimumDelay = (attempt: number): number =>
  Math.min(MAX_DELAY, INITIAL_DELAY * 2 ** (attempt - 1)) / 2

/**
 * A policy whose delays are every value the consumer's jitter can produce (as the transport
 * rounds them), so `topology()` lists every delay queue the test may have made, for cleanup.
 */
function everyJitteredDelay(): RedeliveryPolicy {
  const delays = new Set<number>()
  for (let attempt = 1; attempt < MAX_ATTEMPTS; attempt++) {
    const ceiling = Math.min(MAX_DELAY, INITIAL_DELAY * 2 ** (attempt - 1))
    for (let ms = Math.floor(ceiling / 2); ms <= ceiling; ms++) delays.add(ms)
  }
  const list = [...delays]
  return { maxAttempts: list.length + 1, delayMs: (attempt) => list[attempt - 1]! }
}

describe.skipIf(amqpUrl === null || pgUrl === null)('T16: poison and flaky handlers', () => {
  it('dead-letters poison ids after exactly maxAttempts, with delays ≥ the configured minimum', async () => {
    const broker = new TestBroker(amqpUrl!)
    const pool = createPool(pgUrl!)
    const schema = uniqueSchema('syr')
    const topic = broker.topic('orders')
    const Placed = placedEvent(topic)
    const group = 'flaky'
    const total = Math.round(150 * chaosScale)
    const rand = random(chaosSeed)
    const events = Array.from({ length: total }, (_, n) =>
      Placed({ orderId: `order-${n % 11}`, n }, { headers: { tenant: 'acme', seq: String(n) } }),
    )
    const poison = new Set([events[3]!.id, events[Math.floor(total / 2)]!.id, events.at(-2)!.id])
    const failedAt = new Map<string, number>() // `${id}/${attempt}` → when its handler failed
    const delays: { attempt: number; ms: number; min: number }[] = []
    const attemptsOf = new Map<string, number[]>()
    let transientThrows = 0
    let consumer: Consumer | undefined
    try {
      await prepareConsumerSchema(pool, schema)
      const transport = broker.transport()
      broker.track(transport.topology(topic, group, everyJitteredDelay()))
      consumer = inboxConsumer({
        pool,
        schema,
        name: group,
        event: Placed,
        concurrency: 4,
        retry: { maxAttempts: MAX_ATTEMPTS, initialDelay: INITIAL_DELAY, maxDelay: MAX_DELAY },
        subscriber: tapped(
          transport,
          (d) => {
            const now = performance.now()
            attemptsOf.set(d.id, [...(attemptsOf.get(d.id) ?? []), d.attempt])
            const failed = failedAt.get(`${d.id}/${d.attempt - 1}`)
            if (failed !== undefined)
              delays.push({
                attempt: d.attempt - 1,
                ms: now - failed,
                min: minimumDelay(d.attempt - 1),
              })
          },
          (d, outcome) => {
            if (outcome === 'retry') failedAt.set(`${d.id}/${d.attempt}`, performance.now())
          },
        ),
        beforeCommit: (event) => {
          if (poison.has(event.id)) return Promise.reject(new Error(`poison ${event.id}`))
          if (rand() < 0.05) {
            transientThrows++
            return Promise.reject(new Error('transient failure'))
          }
          return Promise.resolve()
        },
      })
      await consumer.start()

      const publisher = broker.transport()
      for (let i = 0; i < total; i += 25)
        await publisher.publish(
          topic,
          events.slice(i, i + 25).map((e) => wire(e)),
        )

      const reader = broker.transport()
      const settled = async (): Promise<boolean> => {
        const effects = [...(await effectCounts(pool, schema)).keys()].length
        const dead = (await reader.deadLetters(topic, group, { limit: total })).length
        return effects + dead >= total
      }
      await waitFor('every message settled (effect or dead letter)', settled, 30_000)
      await consumer.stop()

      const letters = await reader.deadLetters(topic, group, { limit: total })
      const counts = await effectCounts(pool, schema)
      const check = checkEffects(
        events.map((e) => e.id),
        counts,
      )
      const deadIds = new Set(letters.map((l) => l.message.id))
      const shortDelays = delays.filter((d) => d.ms + CLOCK_SLACK_MS < d.min)
      const byAttempt = (attempt: number) => delays.filter((d) => d.attempt === attempt)
      const minOf = (attempt: number) =>
        Math.round(Math.min(...byAttempt(attempt).map((d) => d.ms)))
      report('rabbitmq-poison-flaky', 'postgres', {
        seed: chaosSeed,
        published: total,
        effects: counts.size,
        dead_lettered: letters.length,
        poison: poison.size,
        transientThrows,
        redeliveries: delays.length,
        delayMinMs: { 1: minOf(1), 2: minOf(2) },
        configuredMinMs: { 1: minimumDelay(1), 2: minimumDelay(2) },
        shortDelays: shortDelays.length,
        dupEffects: check.dupEffects,
        phantom: check.phantom,
      })

      expect(counts.size + letters.length).toBe(total) // published = effects + dead_lettered
      expect(check.dupEffects).toBe(0)
      expect(check.phantom).toBe(0)
      for (const id of counts.keys()) expect(deadIds.has(id), `${id} has an effect`).toBe(false)
      for (const id of poison) {
        expect(deadIds.has(id), `poison ${id} dead-lettered`).toBe(true)
        expect(attemptsOf.get(id)).toEqual([1, 2, 3])
        const letter = letters.find((l) => l.message.id === id)!
        const event = events.find((e) => e.id === id)!
        expect(letter.attempts).toBe(MAX_ATTEMPTS)
        expect(letter.reason).toContain(`poison ${id}`)
        expect(letter.message.headers).toMatchObject({ tenant: 'acme', seq: event.headers.seq })
        expect(Date.parse(letter.firstFailureAt)).toBeLessThanOrEqual(
          Date.parse(letter.lastFailureAt),
        )
        expect(
          Date.parse(letter.lastFailureAt) - Date.parse(letter.firstFailureAt),
        ).toBeGreaterThanOrEqual(minimumDelay(1) + minimumDelay(2) - CLOCK_SLACK_MS)
      }
      // A non-poison id is dead only if its handler failed on every attempt (5 % each).
      for (const letter of letters)
        if (!poison.has(letter.message.id)) {
          expect(letter.attempts).toBe(MAX_ATTEMPTS)
          expect(letter.reason).toContain('transient failure')
        }
      expect(delays.length).toBeGreaterThanOrEqual(poison.size * (MAX_ATTEMPTS - 1))
      expect(shortDelays).toEqual([])
    } finally {
      await consumer?.stop()
      await broker.cleanup()
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
    }
  }, 40_000)
})
