/**
 * Measurement 3, end-to-end latency: from COMMIT acknowledged to the message handed to the
 * publisher, at a steady rate, with the relay woken by LISTEN/NOTIFY.
 *
 * A producer runs an open loop: it starts the transactions that are due every millisecond
 * (`BEGIN; INSERT business row; append 1 record; COMMIT`, each on a pooled connection), never
 * waiting for earlier ones, so a slow commit does not lower the rate, up to MAX_IN_FLIGHT
 * transactions at once: a database that cannot keep up then misses slots (counted, and the rate
 * it reached is reported) instead of queueing without bound. It records the time each
 * commit was acknowledged; an `InMemoryTransport` listener records when the relay published each
 * message. The store keeps `notify` on (the default) and the relay runs `start()` with its default
 * 1-second poll interval, so latencies well under a second come from the wake-up, not the poll.
 * The first WARMUP_S seconds are sent but not counted (connections, JIT, LISTEN being set up).
 */
import { InMemoryTransport, OutboxRelay } from 'switchyard-bus'
import type { Backend, Database, BenchStore } from './backends.js'
import { createOrders, insertOrder, outboxRecord, percentile, sleep } from './workload.js'

export interface LatencyOptions {
  /** Messages per second. */
  readonly rate: number
  /** Counted seconds, after the warm-up. */
  readonly seconds: number
}

export interface LatencyResult {
  readonly rate: number
  readonly seconds: number
  /** Messages counted (sent after the warm-up). */
  readonly counted: number
  /** The rate the producer reached over the counted window, msg/s. */
  readonly achievedRate: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  /** Messages published before their COMMIT was acknowledged to the producer (latency < 0). */
  readonly early: number
  /** Send slots missed because MAX_IN_FLIGHT transactions were already open: over capacity. */
  readonly skipped: number
}

const WARMUP_S = 1
/** Open transactions at most: the pool's size on PostgreSQL; a short queue on PGlite. */
const MAX_IN_FLIGHT = 10
/** Longest wait for the last messages to be published after the producer stops. */
const DRAIN_TIMEOUT_MS = 15_000

export async function measureLatency(
  backend: Backend,
  options: LatencyOptions,
): Promise<LatencyResult> {
  const db = await backend.open('bench_outbox_latency')
  try {
    await createOrders(db)
    const store = db.store({ notify: true })
    await store.ensureSchema()
    const transport = new InMemoryTransport()
    const publishedAt = new Map<string, number>()
    const listener = transport.onPublish((_topic, message) => {
      publishedAt.set(message.id, performance.now())
    })
    const relay = new OutboxRelay({ store, publisher: transport, batchSize: 100 })
    relay.start()
    try {
      const sent = await produce(db, store, options)
      await waitFor(() => publishedAt.size >= sent.all.length, DRAIN_TIMEOUT_MS)
      return summarise(options, sent, publishedAt)
    } finally {
      await relay.stop()
      listener[Symbol.dispose]()
    }
  } finally {
    await db.close()
  }
}

interface Sent {
  /** Every message id, in send order. */
  readonly all: string[]
  /** Commit acknowledgement time per id. */
  readonly committedAt: Map<string, number>
  /** Ids sent after the warm-up, and the window they were sent in (ms). */
  readonly counted: string[]
  readonly windowMs: number
  readonly skipped: number
}

/** The open-loop producer: WARMUP_S + seconds at `rate`, transactions started on schedule. */
async function produce(db: Database, store: BenchStore, options: LatencyOptions): Promise<Sent> {
  const slots = Math.round(options.rate * (WARMUP_S + options.seconds))
  const warmup = Math.round(options.rate * WARMUP_S)
  const sent: Sent = { all: [], committedAt: new Map(), counted: [], windowMs: 0, skipped: 0 }
  const inFlight = new Set<Promise<void>>()
  const errors: unknown[] = []
  const start = performance.now()
  let countedFrom = start
  let slot = 0
  let skipped = 0
  while (slot < slots && errors.length === 0) {
    const due = Math.min(slots, Math.floor(((performance.now() - start) * options.rate) / 1000))
    for (; slot < due; slot++) {
      if (slot === warmup) countedFrom = performance.now()
      if (inFlight.size >= MAX_IN_FLIGHT) {
        if (slot >= warmup) skipped++
        continue
      }
      const record = outboxRecord()
      sent.all.push(record.id)
      if (slot >= warmup) sent.counted.push(record.id)
      const p = db
        .transaction(async (tx) => {
          await insertOrder(db, tx)
          await store.append(tx, [record])
        })
        .then(() => void sent.committedAt.set(record.id, performance.now()))
        .catch((error: unknown) => void errors.push(error))
      inFlight.add(p)
      void p.finally(() => inFlight.delete(p))
    }
    await sleep(1)
  }
  await Promise.all(inFlight)
  if (errors.length > 0) throw errors[0]
  return { ...sent, windowMs: performance.now() - countedFrom, skipped }
}

function summarise(
  options: LatencyOptions,
  sent: Sent,
  publishedAt: ReadonlyMap<string, number>,
): LatencyResult {
  const latencies = sent.counted.map((id) => {
    const published = publishedAt.get(id)
    const committed = sent.committedAt.get(id)
    if (published === undefined || committed === undefined)
      throw new Error(`message ${id} was not both committed and published`)
    return published - committed
  })
  latencies.sort((a, b) => a - b)
  return {
    rate: options.rate,
    seconds: options.seconds,
    counted: latencies.length,
    achievedRate: latencies.length / (sent.windowMs / 1000),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    early: latencies.filter((l) => l < 0).length,
    skipped: sent.skipped,
  }
}

async function waitFor(done: () => boolean, timeoutMs: number): Promise<void> {
  const until = performance.now() + timeoutMs
  while (!done()) {
    if (performance.now() > until) throw new Error(`not all messages published in ${timeoutMs} ms`)
    await sleep(5)
  }
}
