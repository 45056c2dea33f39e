/**
 * Consumer crash test (RELIABILITY.md T13 at CI size): two consumer child processes
 * (test/helpers/consumer-child.ts) with the PostgreSQL inbox consume 2,000 messages from RabbitMQ;
 * a random one is killed with SIGKILL in the middle of its handlers 10 times and restarted. Each
 * handler writes an effects row (no unique constraint) and commits, then works a little longer
 * before it returns, so a kill lands before the commit (rolled back), or after it and before the
 * ack (redelivered, and the inbox must skip it). At the end every message must have exactly one
 * effect. SWITCHYARD_CHAOS_SCALE multiplies the messages and the kills; SWITCHYARD_CHAOS_SEED fixes
 * the kill schedule.
 */
import type { ChildProcess } from 'node:child_process'
import { describe, expect, inject, it } from 'vitest'
import {
  chaosScale,
  chaosSeed,
  messageId,
  random,
  readJsonLines,
  report,
  scratch,
  sleep,
  waitFor,
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
const MESSAGES = 2000 * chaosScale
const KILLS = 10 * chaosScale
const KEYS = 50
const CHILDREN = 2
const CONCURRENCY = 4
const HANDLER_MS = 20
const GROUP = 'ledger'

describe.skipIf(amqpUrl === null || pgUrl === null)('consumer SIGKILL on RabbitMQ (T13)', () => {
  it(`applies each of ${MESSAGES} messages once across ${KILLS} SIGKILLs of consumers mid-handler`, async () => {
    const broker = new TestBroker(amqpUrl!)
    const pool = createPool(pgUrl!)
    const schema = uniqueSchema('syr')
    const files = scratch()
    const children = new ConsumerChildren()
    const rand = random(chaosSeed)
    const topic = broker.topic('orders')
    const Placed = placedEvent(topic)
    try {
      await prepareConsumerSchema(pool, schema)
      const publisher = broker.transport({ unroutable: 'reject' })
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
        concurrency: CONCURRENCY,
        handlerMs: HANDLER_MS,
      })

      const expected: string[] = []
      for (let start = 0; start < MESSAGES; start += 200) {
        const batch = []
        for (let i = start; i < Math.min(start + 200, MESSAGES); i++) {
          const event = Placed(
            { orderId: `order-${Math.floor(rand() * KEYS)}`, n: i },
            { id: messageId(i) },
          )
          batch.push(wire(event))
          expected.push(event.id)
        }
        await publisher.publish(topic, batch)
      }

      const started = Date.now()
      const running: ChildProcess[] = await Promise.all(
        Array.from({ length: CHILDREN }, () => children.start(env)),
      )
      const killed: number[] = []
      for (let k = 0; k < KILLS; k++) {
        await sleep(150 + rand() * 350)
        const victim = Math.floor(rand() * running.length)
        killed.push(running[victim]!.pid!)
        await children.kill(running[victim]!)
        running[victim] = await children.start(env)
      }
      await waitFor(
        'an effect for every message',
        async () => (await effectCounts(pool, schema)).size >= MESSAGES,
        90_000,
      )
      const elapsedMs = Date.now() - started
      await sleep(500) // redeliveries still on their way may only add deliveries, never effects
      await children.killAll()

      const effects = checkEffects(expected, await effectCounts(pool, schema))
      const lines = readJsonLines<ConsumerLogLine>(log)
      const deliveries = lines.filter((l) => l.ev === 'deliver')
      const handled = lines.filter((l) => l.ev === 'handle')
      // A kill in the middle of a handler: the victim started a handler that never returned.
      const open = new Map<string, number>()
      for (const l of lines) {
        const key = `${l.pid}/${l.id}`
        if (l.ev === 'handle') open.set(key, l.pid)
        if (l.ev === 'done') open.delete(key)
      }
      const victimsMidHandler = new Set(open.values())
      const committedNotDone = new Set(
        lines.filter((l) => l.ev === 'commit').map((l) => `${l.pid}/${l.id}`),
      )
      let killedAfterCommit = 0
      for (const key of open.keys()) if (committedNotDone.has(key)) killedAfterCommit++
      const deadLetters = await publisher.deadLetters(topic, GROUP)
      report('rabbitmq-consumer-sigkill', 'postgres', {
        seed: chaosSeed,
        scale: chaosScale,
        messages: MESSAGES,
        children: CHILDREN,
        concurrency: CONCURRENCY,
        kills: KILLS,
        killsMidHandler: killed.filter((pid) => victimsMidHandler.has(pid)).length,
        handlersInterrupted: open.size,
        killedAfterCommitBeforeAck: killedAfterCommit,
        deliveries: deliveries.length,
        redeliveries: deliveries.length - new Set(deliveries.map((d) => d.id)).size,
        handlerRuns: handled.length,
        lost: effects.lost,
        dupEffects: effects.dupEffects,
        phantom: effects.phantom,
        deadLettered: deadLetters.length,
        elapsedMs,
      })
      expect(
        killed.filter((pid) => victimsMidHandler.has(pid)).length,
        'most kills must land in the middle of a handler, or the test proves nothing',
      ).toBeGreaterThanOrEqual(KILLS / 2)
      expect(effects.lost).toBe(0)
      expect(effects.dupEffects).toBe(0)
      expect(effects.phantom).toBe(0)
      expect(deadLetters).toEqual([])
    } finally {
      await children.killAll()
      await broker.cleanup()
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await pool.end()
      files.remove()
    }
  }, 150_000)
})
