/**
 * T23 (RELIABILITY.md §2.3): secret leakage. A canary password sits in every AMQP and PostgreSQL
 * URL the test hands the library; the connections then fail (refused port, unknown host, wrong
 * password, malformed URL, a TCP proxy that blackholes or cuts) through the RabbitMQ transport,
 * the outbox relay and the consumer, with a `RecordingLogger`. Everything the library hands back
 * or writes is collected: error messages, stacks, `cause` chains (and any other property, through
 * `util.inspect`), log entries, the outbox's `last_error` and dead-letter reasons. The canary must
 * occur 0 times.
 */
import { randomBytes } from 'node:crypto'
import { inspect } from 'node:util'
import { connect } from 'amqplib'
import { describe, expect, inject, it } from 'vitest'
import { type Consumer, OutboxRelay } from '../../../src/index.js'
import { PostgresOutboxStore } from '../../../src/postgres/index.js'
import { RabbitMqTransport } from '../../../src/rabbitmq/index.js'
import { RecordingLogger } from '../../../src/testing/index.js'
import { report, waitFor } from '../../helpers/crash-harness.js'
import {
  inboxConsumer,
  outboxRecord,
  placedEvent,
  prepareConsumerSchema,
  wire,
} from '../../helpers/inbox-consumer.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'
import { TcpProxy } from '../../helpers/tcp-proxy.js'
import { amqpUrl, deadLettersEventually, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const CANARY = `canary${randomBytes(6).toString('hex')}`

/** `url` with the canary as its password. */
function withCanary(url: string): string {
  const parsed = new URL(url)
  parsed.password = CANARY
  return parsed.toString()
}

/** Everything the library produced, as text. */
class Haystack {
  readonly texts: string[] = []
  readonly loggers: RecordingLogger[] = []
  errors = 0

  logger(): RecordingLogger {
    const logger = new RecordingLogger('debug')
    this.loggers.push(logger)
    return logger
  }

  /**
   * An error with its stack, `cause` chain and every other property, non-enumerable ones too
   * unless `hidden` is false.
   */
  error(error: unknown, hidden = true): void {
    this.errors++
    this.texts.push(inspect(error, { depth: 20, showHidden: hidden, breakLength: Infinity }))
    for (let e: unknown = error, depth = 0; e instanceof Error && depth < 20; depth++) {
      this.texts.push(e.message, String(e.stack))
      e = e.cause
    }
  }

  /** Runs `work`, collecting what it throws; returns whether it threw. */
  async failing(work: () => Promise<unknown>): Promise<boolean> {
    try {
      await work()
      return false
    } catch (error) {
      this.error(error)
      return true
    }
  }

  text(extra: readonly string[] = []): string {
    const logs = this.loggers.flatMap((l) =>
      l.entries.map((e) => inspect(e, { depth: 20, showHidden: true, breakLength: Infinity })),
    )
    return [...this.texts, ...logs, ...extra].join('\n')
  }

  get logEntries(): number {
    return this.loggers.reduce((sum, l) => sum + l.entries.length, 0)
  }
}

const occurrences = (text: string): number => text.split(CANARY).length - 1

describe.skipIf(amqpUrl === null || pgUrl === null)('T23: secret leakage', () => {
  it('never shows the canary password of a URL in errors, causes, stacks or logs', async () => {
    const hay = new Haystack()
    const broker = new TestBroker(amqpUrl!)
    const amqpProxy = await TcpProxy.start({ upstream: amqpUrl! })
    const pgProxy = await TcpProxy.start({ upstream: pgUrl!, protocol: 'postgres' })
    const schema = uniqueSchema('syr')
    const good = createPool(pgUrl!)
    const pools = [good]
    const transports: RabbitMqTransport[] = []
    const relays: OutboxRelay[] = []
    let consumer: Consumer | undefined
    const stored: string[] = []
    const transport = (url: string): RabbitMqTransport => {
      const t = new RabbitMqTransport({
        connection: () => connect(url),
        namespace: broker.id,
        connectTimeoutMs: 1500,
        reconnect: { initialDelayMs: 50, maxDelayMs: 200 },
        logger: hay.logger(),
      })
      transports.push(t)
      return t
    }
    const topic = broker.topic('orders')
    const Placed = placedEvent(topic)
    try {
      // 1. Transport connect failures: every operation, every URL.
      const refused = withCanary('amqp://guest:x@127.0.0.1:1')
      amqpProxy.blackhole()
      const badAmqp = {
        refused,
        unknownHost: withCanary('amqp://guest:x@switchyard-canary.invalid:5672'),
        wrongPassword: withCanary(amqpUrl!),
        malformed: `amqp://guest:${CANARY}@127.0.0.1:notaport`,
        blackholed: withCanary(amqpProxy.url(amqpUrl!)),
      }
      let transportFailures = 0
      for (const url of Object.values(badAmqp)) {
        const t = transport(url)
        const message = wire(Placed({ orderId: 'o-1', n: 1 }))
        for (const work of [
          () => t.publish(topic, [message]),
          () => t.subscribe(topic, () => Promise.resolve(), { group: 'g' }),
          () => t.declareTopology(topic, 'g'),
          () => t.deadLetters(topic, 'g'),
        ])
          if (await hay.failing(work)) transportFailures++
      }

      // 2. PostgreSQL failures: refused port, a proxy that is cut, then down.
      const pgRefused = createPool(withCanary(pgUrl!.replace(/:\d+\//, ':1/')))
      const pgViaProxy = createPool(withCanary(pgProxy.url(pgUrl!)))
      pools.push(pgRefused, pgViaProxy)
      // pg-pool's own 'error' event for an idle client (the driver's, not the library's) attaches
      // `err.client`, whose connection parameters hold the password as a non-enumerable
      // property: collected as a logger would print it (enumerable properties), and the hidden
      // occurrences only reported.
      let poolEventHiddenCanaries = 0
      for (const pool of [pgRefused, pgViaProxy])
        pool.on('error', (e) => {
          hay.error(e, false)
          poolEventHiddenCanaries += occurrences(inspect(e, { depth: 20, showHidden: true }))
        })
      let storeFailures = 0
      if (
        await hay.failing(() => new PostgresOutboxStore({ pool: pgRefused, schema }).ensureSchema())
      )
        storeFailures++

      // 3. Relay publish failures: a working store (trust auth ignores the canary password of
      // the proxied URL), a publisher that cannot connect; then the store's proxy cut and down.
      const store = new PostgresOutboxStore({ pool: pgViaProxy, schema })
      await store.ensureSchema()
      const events = [1, 2, 3].map((n) => Placed({ orderId: `o-${n}`, n }))
      await inTransaction(good, (tx) =>
        store.append(
          tx,
          events.map((e) => outboxRecord(e, topic)),
        ),
      )
      const relay = new OutboxRelay({
        store,
        publisher: transport(refused),
        pollIntervalMs: 20,
        maxAttempts: 3,
        backoff: { initialDelay: 10, maxDelay: 50 },
        publishTimeoutMs: 2000,
        leaseMs: 5000,
        storeTimeoutMs: 1000,
        logger: hay.logger(),
      })
      relay.start()
      relays.push(relay)
      const states = async () =>
        (
          await good.query<{ state: string; last_error: string | null }>(
            `SELECT state, last_error FROM "${schema}".outbox`,
          )
        ).rows
      await waitFor('the rows dead after failed publishes', async () =>
        (await states()).every((r) => r.state === 'dead'),
      )
      stored.push(...(await states()).map((r) => r.last_error ?? ''))
      const beforeCut = hay.logEntries
      pgProxy.cut()
      pgProxy.down()
      await waitFor('the relay to log store failures', () => hay.logEntries > beforeCut + 2)
      await relay.stop()
      if (await hay.failing(() => store.status())) storeFailures++

      // 4. Consumer failures: a subscriber that cannot connect; then a working one whose inbox
      // database is unreachable, so every delivery fails and the message is dead-lettered.
      const starved = inboxConsumer({
        pool: pgRefused,
        schema,
        subscriber: transport(refused),
        event: Placed,
        name: 'leaky',
        logger: hay.logger(),
      })
      let consumerFailures = 0
      if (await hay.failing(() => starved.start())) consumerFailures++
      await starved.stop().catch((e: unknown) => hay.error(e))
      await prepareConsumerSchema(good, `${schema}_in`)
      const healthy = broker.transport({ logger: hay.logger() })
      consumer = inboxConsumer({
        pool: pgRefused,
        schema: `${schema}_in`,
        subscriber: healthy,
        event: Placed,
        name: 'leaky',
        retry: { maxAttempts: 2, initialDelay: 20, maxDelay: 20 },
        logger: hay.logger(),
      })
      // Every delay queue the consumer's jitter (10 to 20 ms) may have made, for cleanup.
      broker.track(healthy.topology(topic, 'leaky', { maxAttempts: 12, delayMs: (a) => 9 + a }))
      await consumer.start()
      await broker.transport().publish(topic, [wire(events[0]!)])
      const letters = await deadLettersEventually(healthy, topic, 'leaky')
      consumerFailures += letters.length
      stored.push(...letters.map((l) => inspect(l, { depth: 10 })))

      const haystack = hay.text(stored)
      const canaries = occurrences(haystack)
      report('secret-leakage', 'postgres+rabbitmq', {
        transportFailures,
        storeFailures,
        consumerFailures,
        errorsCollected: hay.errors,
        logEntries: hay.logEntries,
        storedReasons: stored.length,
        bytesSearched: haystack.length,
        canaryOccurrences: canaries,
        poolEventHiddenCanaries,
      })
      expect(transportFailures).toBe(Object.keys(badAmqp).length * 4)
      expect(hay.logEntries).toBeGreaterThan(0)
      // The failures were the real ones: refused connections and a refused login.
      expect(haystack).toContain('ECONNREFUSED')
      expect(haystack).toContain('ACCESS_REFUSED')
      const leaks = haystack.split('\n').filter((line) => line.includes(CANARY))
      expect(leaks.slice(0, 5)).toEqual([])
      expect(canaries).toBe(0)
    } finally {
      await consumer?.stop().catch(() => undefined)
      await Promise.all(relays.map((r) => r.stop()))
      await Promise.all(transports.map((t) => t.close()))
      await broker.cleanup()
      await good.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      await good.query(`DROP SCHEMA IF EXISTS "${schema}_in" CASCADE`)
      await Promise.all(pools.map((p) => p.end().catch(() => undefined)))
      await amqpProxy.close()
      await pgProxy.close()
    }
  }, 30_000)
})
