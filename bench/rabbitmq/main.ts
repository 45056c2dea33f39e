/**
 * RabbitMQ benchmark: the outbox relay from PostgreSQL to RabbitMQ, and the consumer with its
 * inbox from RabbitMQ to PostgreSQL, each a ratio against bare amqplib measured in the same run.
 *
 *   npm run bench:rabbitmq          # node --expose-gc --import tsx bench/rabbitmq/main.ts
 *   BENCH_QUICK=1 npm run bench:rabbitmq    # smoke run, smaller and shorter
 *   SWITCHYARD_BENCH_RABBITMQ_ONLY=consumer npm run bench:rabbitmq    # one measurement (or =relay)
 *
 * 1. relay (relay.ts): an `OutboxRelay` draining a prefilled `PostgresOutboxStore` through
 *    `RabbitMqTransport`, against amqplib publishing the same messages on a confirm channel with
 *    1,000 confirms in flight. Target ≥ 0.6×.
 * 2. consumer (consumer.ts): `Consumer` + `PostgresInboxStore` + `PostgresUnitOfWork` (one
 *    transaction per message, one row) draining a prefilled queue, against amqplib `consume` + one
 *    `INSERT` transaction per message, same prefetch. Target ≥ 0.8×.
 *
 * Env: SWITCHYARD_PG_URL (default postgres://postgres@127.0.0.1:5432/test) and SWITCHYARD_AMQP_URL
 * (default amqp://guest:guest@127.0.0.1:5672), as the tests; SWITCHYARD_BENCH_RABBITMQ_ROWS (rows
 * per relay drain, default 20,000); SWITCHYARD_BENCH_RABBITMQ_MESSAGES (messages per consumer
 * drain, default 5,000). Either service unreachable: the run is skipped with a message.
 *
 * Progress goes to stderr, the report to stdout, ending with one JSON line. Targets are reported
 * PASS/MISS, never asserted: the exit code is non-zero only if the benchmark itself fails. The run
 * declares everything in a namespace of its own (`bench-rmq-<random>`) and PostgreSQL schemas of
 * its own, and deletes them at the end.
 */
import { cpus, loadavg } from 'node:os'
import { collect } from '../dispatch/harness.js'
import { postgresBackend } from '../outbox/backends.js'
import { type Broker, openBroker } from './broker.js'
import { type ConsumerBenchResult, measureConsumer } from './consumer.js'
import { measureRelay, type RelayBenchResult } from './relay.js'
import { printRabbitMqJson, printRabbitMqReport, type RabbitMqFigures } from './report.js'
import { samples } from './samples.js'

const QUICK = (process.env.BENCH_QUICK ?? '') !== '' && process.env.BENCH_QUICK !== '0'
/** `relay` or `consumer`: run that measurement only (the other's rows then read NaN). */
const ONLY = setting('SWITCHYARD_BENCH_RABBITMQ_ONLY')
if (ONLY !== undefined && ONLY !== 'relay' && ONLY !== 'consumer')
  throw new Error('SWITCHYARD_BENCH_RABBITMQ_ONLY must be relay or consumer')
const PG_URL = setting('SWITCHYARD_PG_URL') ?? 'postgres://postgres@127.0.0.1:5432/test'
const AMQP_URL = setting('SWITCHYARD_AMQP_URL') ?? 'amqp://guest:guest@127.0.0.1:5672'
/** Confirms in flight on the bare publisher (the brief's baseline). */
const WINDOW = 1000
const RELAY = {
  rows: count('SWITCHYARD_BENCH_RABBITMQ_ROWS', QUICK ? 5_000 : 20_000),
  /** Five: the bare side swings ±15% with what RabbitMQ and PostgreSQL do beside it. */
  rounds: QUICK ? 1 : 5,
  /** ~4 rows per key at 20k: every claim of 100 finds 100 keys with a head row, to the end. */
  keys: 5000,
  /** 4 batches of 250 in flight: at most 1,000 messages await a confirm, the bare side's window. */
  batchSize: 250,
  concurrency: 4,
  window: WINDOW,
}
const CONSUMER = {
  /** Commit-bound and noisy on a shared machine: more, shorter rounds than the relay. */
  messages: count('SWITCHYARD_BENCH_RABBITMQ_MESSAGES', QUICK ? 2_000 : 5_000),
  rounds: QUICK ? 1 : 5,
  keys: 1000,
  concurrency: 8,
  window: WINDOW,
}

const progress = (text: string): void => {
  process.stderr.write(`${text}\n`)
}

function setting(name: string): string | undefined {
  const value = process.env[name]
  return value === undefined || value === '' ? undefined : value
}

/** A whole number ≥ 1,000 from the environment (underscores allowed), or the default. */
function count(name: string, fallback: number): number {
  const value = Number((setting(name) ?? String(fallback)).replaceAll('_', ''))
  if (!Number.isSafeInteger(value) || value < 1000)
    throw new Error(`${name} must be a whole number ≥ 1000`)
  return value
}

async function main(): Promise<void> {
  if (!collect()) progress('warning: global.gc is not exposed (run with --expose-gc)')
  const started = performance.now()
  const figures = await measure()
  printRabbitMqReport(figures, {
    quick: QUICK,
    platform: `node ${process.version} ${process.platform}/${process.arch}, ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cpus`,
    config: {
      relayRounds: RELAY.rounds,
      relayRows: RELAY.rows,
      relayKeys: RELAY.keys,
      batchSize: RELAY.batchSize,
      window: WINDOW,
      consumerRounds: CONSUMER.rounds,
      consumerMessages: CONSUMER.messages,
      concurrency: CONSUMER.concurrency,
    },
    minutes: (performance.now() - started) / 60_000,
  })
  printRabbitMqJson(figures, QUICK)
}

async function measure(): Promise<RabbitMqFigures> {
  const backend = postgresBackend(PG_URL)
  let postgres: string
  let broker: Broker
  try {
    postgres = await backend.describe()
  } catch (error) {
    return skip(`PostgreSQL unreachable (${reason(error)}); set SWITCHYARD_PG_URL`)
  }
  try {
    broker = await openBroker(AMQP_URL)
  } catch (error) {
    return skip(`RabbitMQ unreachable (${reason(error)}); set SWITCHYARD_AMQP_URL`)
  }
  try {
    const before = loadavg()[0] ?? Number.NaN
    const timed = async <T>(label: string, run: () => Promise<T>): Promise<T> => {
      const start = performance.now()
      progress(label)
      const value = await run()
      progress(`${label} took ${((performance.now() - start) / 1000).toFixed(1)} s`)
      return value
    }
    const relay =
      ONLY === 'consumer'
        ? skippedRelay()
        : await timed('relay PostgreSQL → RabbitMQ', () =>
            measureRelay(backend, broker, RELAY, progress),
          )
    const consumer =
      ONLY === 'relay'
        ? skippedConsumer()
        : await timed('consumer RabbitMQ → PostgreSQL', () =>
            measureConsumer(backend, PG_URL, broker, CONSUMER, progress),
          )
    return {
      services: `PostgreSQL: ${postgres}; RabbitMQ ${broker.version}, namespace ${broker.namespace} (deleted after the run)`,
      load: { before, after: loadavg()[0] ?? Number.NaN },
      relay,
      consumer,
    }
  } finally {
    await broker.remove()
  }
}

const noSplit = { publishShare: [], publishMs: [], storeMs: [] }
const skippedRelay = (): RelayBenchResult => ({
  rows: 0,
  keys: 0,
  bare: samples(),
  relay: samples(),
  relaySerial: samples(),
  split: { relay: noSplit, relaySerial: noSplit },
})
const skippedConsumer = (): ConsumerBenchResult => ({
  messages: 0,
  concurrency: CONSUMER.concurrency,
  bare: samples(),
  bareInbox: samples(),
  consumer: samples(),
})

const reason = (error: unknown): string => (error instanceof Error ? error.message : String(error))

function skip(why: string): RabbitMqFigures {
  progress(`skipping: ${why}`)
  return { skipped: why }
}

main().then(
  () => {
    process.exitCode = 0
  },
  (error: unknown) => {
    console.error(error)
    process.exitCode = 1
  },
)
