/**
 * Outbox benchmark: the transactional outbox on PostgreSQL and on in-memory PGlite, each figure a
 * ratio against a baseline measured in the same run.
 *
 *   npm run bench:outbox            # node --expose-gc --import tsx bench/outbox/main.ts
 *   BENCH_QUICK=1 npm run bench:outbox    # smoke run, smaller and shorter everywhere
 *
 * 1. append overhead (append.ts): 8 concurrent clients, `BEGIN; INSERT; COMMIT` against the same
 *    plus one `store.append`; committed transactions per second.
 * 2. relay throughput (relay-throughput.ts): one OutboxRelay draining a prefilled backlog against a
 *    hand-written `SELECT … FOR UPDATE SKIP LOCKED` + `UPDATE` consumer on a plain table; and two
 *    relays against one (PostgreSQL only).
 * 3. latency (latency.ts): commit acknowledged → published, 1,000 msg/s, LISTEN/NOTIFY wake-up;
 *    and at 100 msg/s, under what either database can sustain (info).
 * 4. relay memory (relay-memory.ts): RSS after a full GC at 10k and at ROWS published.
 *
 * Env: SWITCHYARD_PG_URL (default postgres://postgres@127.0.0.1:5432/test, as the tests);
 * SWITCHYARD_BENCH_RELAY_ROWS (rows of measurement 4 on PostgreSQL, default 200,000; set
 * 1000000 for the 1M run); SWITCHYARD_BENCH_PGLITE_RELAY_ROWS (on PGlite, default 100,000).
 *
 * Progress goes to stderr, the report to stdout, ending with one JSON line of every figure. Targets
 * are reported PASS/MISS, never asserted: the exit code is non-zero only if the benchmark itself
 * fails. Each measurement uses a schema of its own (and on PGlite an instance of its own) and
 * drops it at the end.
 */
import { cpus, loadavg } from 'node:os'
import { collect } from '../dispatch/harness.js'
import { type AppendResult, measureAppend } from './append.js'
import { type Backend, pgliteBackend, postgresBackend } from './backends.js'
import { type LatencyResult, measureLatency } from './latency.js'
import { type MemoryResult, measureRelayMemory } from './relay-memory.js'
import { measureRelayThroughput, type RelayThroughputResult } from './relay-throughput.js'
import { printJson, printReport, type Figures } from './report.js'

const QUICK = (process.env.BENCH_QUICK ?? '') !== '' && process.env.BENCH_QUICK !== '0'
const PG_URL = envString('SWITCHYARD_PG_URL', 'postgres://postgres@127.0.0.1:5432/test')
const CLIENTS = 8
/** Published count of the reference sample of measurement 4. */
const FIRST_MEMORY_SAMPLE = 10_000
const BATCH_SIZE = 100
const APPEND = { clients: CLIENTS, rounds: QUICK ? 3 : 5, roundMs: QUICK ? 500 : 1500 }
const RELAY_ROWS = QUICK ? 5_000 : 20_000
const RELAY_ROUNDS = QUICK ? 1 : 5
const LATENCY = { rate: 1000, seconds: QUICK ? 3 : 10 }
/** A rate both databases sustain here (PGlite tops out near 250 appends/s), for comparison. */
const LATENCY_LOW = { rate: 100, seconds: QUICK ? 2 : 5 }
/**
 * Measurement 4 on PostgreSQL: 200k by default. The 1M run takes about 6.5 minutes on the 2-core
 * machine (fill 37 s, drain 350 s: the drain slows as dead rows pile up with autovacuum off), over
 * the ~3 minutes a default may take; SWITCHYARD_BENCH_RELAY_ROWS=1000000 runs it.
 */
const PG_MEMORY_ROWS = envRows('SWITCHYARD_BENCH_RELAY_ROWS', QUICK ? 50_000 : 200_000)
/** On PGlite: 100k (fill ~9 s, drain ~30 s at ~4k rows/s, plus housekeeping every 10k). */
const PGLITE_MEMORY_ROWS = envRows('SWITCHYARD_BENCH_PGLITE_RELAY_ROWS', QUICK ? 20_000 : 100_000)

const progress = (text: string): void => {
  process.stderr.write(`${text}\n`)
}

function envString(name: string, fallback: string): string {
  const value = process.env[name]
  return value === undefined || value === '' ? fallback : value
}

function envRows(name: string, fallback: number): number {
  const value = Number(envString(name, String(fallback)).replaceAll('_', ''))
  // At least one sample after the reference one, or there is no growth to report.
  const least = 2 * FIRST_MEMORY_SAMPLE
  if (!Number.isSafeInteger(value) || value < least)
    throw new Error(`${name} must be a whole number ≥ ${least.toLocaleString('en-US')}`)
  return value
}

async function main(): Promise<void> {
  if (!collect())
    progress('warning: global.gc is not exposed (run with --expose-gc); memory figures are noisy')
  const started = performance.now()
  const figures: Figures[] = []
  for (const [backend, memoryRows] of [
    [postgresBackend(PG_URL), PG_MEMORY_ROWS],
    [pgliteBackend(), PGLITE_MEMORY_ROWS],
  ] as const) {
    figures.push(await measureBackend(backend, memoryRows))
  }
  printReport(figures, {
    quick: QUICK,
    platform: platform(),
    config: {
      ...APPEND,
      relayRows: RELAY_ROWS,
      relayRounds: RELAY_ROUNDS,
      batchSize: BATCH_SIZE,
      latencyRate: LATENCY.rate,
      latencySeconds: LATENCY.seconds,
      pgMemoryRows: PG_MEMORY_ROWS,
      pgliteMemoryRows: PGLITE_MEMORY_ROWS,
    },
    minutes: (performance.now() - started) / 60_000,
  })
  printJson(figures, QUICK)
}

function platform(): string {
  const cpu = cpus()[0]?.model.trim() ?? 'unknown CPU'
  return `node ${process.version} ${process.platform}/${process.arch}, ${cpu}, ${cpus().length} cpus`
}

/** Runs the four measurements on one backend; a backend that cannot be reached is skipped. */
async function measureBackend(backend: Backend, memoryRows: number): Promise<Figures> {
  let settings: string
  try {
    settings = await backend.describe()
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error)
    const reason = `${backend.name} unreachable (${message}); set SWITCHYARD_PG_URL`
    progress(`skipping ${backend.name}: ${reason}`)
    return { backend, skipped: reason }
  }
  const t = (label: string): (() => void) => {
    const start = performance.now()
    progress(`${backend.name}: ${label}`)
    return () =>
      progress(
        `${backend.name}: ${label} took ${((performance.now() - start) / 1000).toFixed(1)} s`,
      )
  }
  // The machine may be shared: the load average goes into the report next to the figures.
  const loadBefore = loadavg()[0] ?? Number.NaN
  let done = t('append overhead')
  const append: AppendResult = await measureAppend(
    backend,
    { ...APPEND, warmupMs: APPEND.roundMs },
    progress,
  )
  done()
  done = t('relay throughput')
  const relay: RelayThroughputResult = await measureRelayThroughput(
    backend,
    { rows: RELAY_ROWS, rounds: RELAY_ROUNDS, batchSize: BATCH_SIZE },
    progress,
  )
  done()
  done = t('latency')
  const latency: LatencyResult = await measureLatency(backend, LATENCY)
  const latencyLow: LatencyResult = await measureLatency(backend, LATENCY_LOW)
  done()
  done = t(`relay memory over ${memoryRows.toLocaleString('en-US')} rows`)
  const memory: MemoryResult = await measureRelayMemory(
    backend,
    {
      rows: memoryRows,
      batchSize: BATCH_SIZE,
      firstSample: FIRST_MEMORY_SAMPLE,
      housekeeping: !backend.concurrentConnections,
    },
    progress,
  )
  done()
  const load = { before: loadBefore, after: loadavg()[0] ?? Number.NaN }
  return { backend, settings, load, append, relay, latency, latencyLow, memory }
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
