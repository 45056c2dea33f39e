/**
 * Measurement 4, relay memory: the process's RSS (and V8 heap) after a full GC once the relay has
 * published 10,000 messages, then at every tenth of ROWS (main.ts: 200,000 on PostgreSQL, 100,000
 * on PGlite by default; 1,000,000 with SWITCHYARD_BENCH_RELAY_ROWS=1000000).
 *
 * The backlog is appended first (transactions of 1,000 records), so the only work left while the
 * relay drains it is the relay's. The relay calls `runOnce()` in a loop (batchSize 100); between
 * two batches the benchmark takes its samples (full GC, `process.memoryUsage()`, and the database
 * size). On PGlite the database runs in this process: its files go to a data directory in a
 * temporary folder (in memory they are ArrayBuffers of this process, and a file's buffer, grown
 * ahead of its writes, becomes resident as they reach it: one such step was +78 MB between the 10k
 * and 20k samples with every other figure flat), and its WebAssembly memory (shared buffers,
 * caches) is read from /proc/self/smaps and reported apart. It publishes to a counting
 * publisher that keeps nothing: an `InMemoryTransport` keeps every message it publishes (see
 * relay-throughput.ts), which would measure the transport, not the relay.
 */
import { readFileSync } from 'node:fs'
import { OutboxRelay, type Publisher, type TransportMessage } from 'switchyard-bus'
import { collect, MB } from '../dispatch/harness.js'
import type { Backend, BenchStore, Database } from './backends.js'
import { outboxRecords, sleep } from './workload.js'

export interface MemoryOptions {
  readonly rows: number
  readonly batchSize: number
  /** Published count of the first (reference) sample. */
  readonly firstSample: number
  /**
   * Housekeeping at every sample: `store.cleanup(0)`, `VACUUM` of the outbox, then `CHECKPOINT`.
   * What a long-running PGlite outbox needs: it has no autovacuum, and no checkpointer either, so
   * its write-ahead log grows by ~1.6 kB per message until a checkpoint (max_wal_size is 1 GB).
   */
  readonly housekeeping: boolean
}

export interface MemorySample {
  readonly published: number
  /** Seconds since the drain started. */
  readonly seconds: number
  readonly rssMB: number
  readonly heapMB: number
  /** Memory outside the V8 heap that V8 knows of (ArrayBuffers: pg buffers, PGlite's WASM). */
  readonly externalMB: number
  /** `pg_database_size` (the server's disk on PostgreSQL; the data directory's on PGlite). */
  readonly databaseMB: number
  /**
   * The part of the RSS in WebAssembly memories (PGlite's heap: its shared buffers and caches, when
   * it runs in this process); 0 on PostgreSQL; NaN where /proc/self/smaps cannot be read.
   */
  readonly wasmMB: number
}

export interface MemoryResult {
  readonly rows: number
  readonly fillSeconds: number
  readonly drainSeconds: number
  /** Ordering keys the rows are spread over (KEYS_PER_ROW_DEPTH rows per key on average). */
  readonly keys: number
  /** Seconds spent on housekeeping (not in drainSeconds); 0 when off. */
  readonly housekeepingSeconds: number
  /** The first sample, at `firstSample` published, and every tenth of the way after it. */
  readonly samples: MemorySample[]
}

const FILL_BATCH = 1000
const STALL_MS = 10_000
/**
 * Rows per ordering key, on average: the same depth as measurement 2 (20,000 rows over 1,000
 * keys). With 1,000 keys, 1M rows would put 1,000 rows under every key, and each claim's
 * head-of-line check reads every earlier row of the key still in the table (published ones too):
 * the drain would then measure that check (see docs/benchmarks.md), not the relay's memory.
 */
const ROWS_PER_KEY = 20

/** Counts what it is given and keeps none of it. */
class CountingPublisher implements Publisher {
  count = 0

  async publish(_topic: string, messages: readonly TransportMessage[]): Promise<void> {
    this.count += messages.length
  }

  async close(): Promise<void> {}
}

export async function measureRelayMemory(
  backend: Backend,
  options: MemoryOptions,
  progress: (text: string) => void,
): Promise<MemoryResult> {
  const db = await backend.open('bench_outbox_memory', { onDisk: true })
  try {
    const store = db.store({ notify: true })
    await store.ensureSchema()
    const keys = Math.max(1000, Math.round(options.rows / ROWS_PER_KEY))
    const fillStart = performance.now()
    await fill(db, store, options.rows, keys, backend.concurrentConnections ? 2 : 1, progress)
    // The server here runs with autovacuum off; a production server would have analysed by now.
    await db.sql.query(`ANALYZE "${db.schema}".outbox`)
    const fillSeconds = (performance.now() - fillStart) / 1000
    await settle()
    const drained = await drain(db, store, options, progress)
    return { rows: options.rows, keys, fillSeconds, ...drained }
  } finally {
    await db.close()
  }
}

/** Appends `rows` records, FILL_BATCH per transaction, from `writers` concurrent sessions. */
async function fill(
  db: Database,
  store: BenchStore,
  rows: number,
  keys: number,
  writers: number,
  progress: (text: string) => void,
): Promise<void> {
  let next = 0
  let reported = 0
  await Promise.all(
    Array.from({ length: writers }, async () => {
      while (next < rows) {
        const n = Math.min(FILL_BATCH, rows - next)
        next += n
        await db.transaction((tx) => store.append(tx, outboxRecords(n, keys)))
        if (next - reported >= rows / 5) {
          reported = next
          progress(`  memory: appended ${next.toLocaleString('en-US')} rows`)
        }
      }
    }),
  )
}

async function drain(
  db: Database,
  store: BenchStore,
  options: MemoryOptions,
  progress: (text: string) => void,
): Promise<Pick<MemoryResult, 'drainSeconds' | 'housekeepingSeconds' | 'samples'>> {
  const publisher = new CountingPublisher()
  const relay = new OutboxRelay({ store, publisher, batchSize: options.batchSize })
  const step = Math.max(options.firstSample, Math.floor(options.rows / 10))
  const samples: MemorySample[] = []
  let nextSample = Math.min(options.firstSample, options.rows)
  let idleSince: number | undefined
  const start = performance.now()
  // Time spent sampling (GC, the size query) and housekeeping is left out of the drain's figures.
  let paused = 0
  let housekeeping = 0
  let published = 0
  while (published < options.rows) {
    const n = await relay.runOnce()
    published += n
    if (n === 0) {
      idleSince ??= performance.now()
      if (performance.now() - idleSince > STALL_MS) throw new Error('relay stalled')
      await sleep(1)
      continue
    }
    idleSince = undefined
    if (published >= nextSample || published >= options.rows) {
      const before = performance.now()
      if (options.housekeeping) {
        await housekeep(db, store)
        housekeeping += performance.now() - before
      }
      samples.push(await sample(db, published, (before - start - paused) / 1000))
      paused += performance.now() - before
      progress(`  memory: published ${published.toLocaleString('en-US')}`)
      nextSample = (Math.floor(published / step) + 1) * step
    }
  }
  const drainSeconds = (performance.now() - start - paused) / 1000
  if (publisher.count !== options.rows)
    throw new Error(`published ${publisher.count} messages, expected ${options.rows}`)
  return { drainSeconds, housekeepingSeconds: housekeeping / 1000, samples }
}

/**
 * Lets the memory the fill used go before the drain starts: full GCs with pauses between them,
 * so V8 and the allocator can return freed pages. Otherwise the 10k sample still holds some of it.
 */
async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    collect()
    await sleep(300)
  }
}

/** What a long-running PGlite outbox needs: delete published rows, VACUUM, CHECKPOINT. */
async function housekeep(db: Database, store: BenchStore): Promise<void> {
  await store.cleanup(0, 10_000)
  await db.sql.query(`VACUUM "${db.schema}".outbox`)
  await db.sql.query('CHECKPOINT')
}

/** A full GC, then the process's memory and the database size. */
async function sample(db: Database, published: number, seconds: number): Promise<MemorySample> {
  const { rows } = await db.sql.query<{ size: string | number }>(
    'SELECT pg_database_size(current_database()) AS size',
  )
  collect()
  const m = process.memoryUsage()
  return {
    published,
    seconds,
    rssMB: m.rss / MB,
    heapMB: m.heapUsed / MB,
    externalMB: m.external / MB,
    databaseMB: Number(rows[0]?.size ?? Number.NaN) / MB,
    wasmMB: webAssemblyRssMB(),
  }
}

/** Below this, a reservation with no access is not a WebAssembly memory's. */
const WASM_RESERVATION_KB = 4 * 1024 * 1024

/**
 * The resident part of this process's WebAssembly memories, from /proc/self/smaps (Linux). V8 backs
 * a memory with a reservation of about 8 GB: the pages in use are mapped read-write, the rest right
 * after them with no access. So the read-write mappings followed at once by a no-access mapping of
 * over 4 GB are those memories (on PGlite here: one of the size of its heap, `mod.HEAPU8`).
 */
function webAssemblyRssMB(): number {
  let text: string
  try {
    text = readFileSync('/proc/self/smaps', 'utf8')
  } catch {
    return Number.NaN
  }
  const maps = text.split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/).map((block) => {
    const [range = '', perms = ''] = block.split(' ', 2)
    const [start, end] = range.split('-')
    const kb = (field: string): number =>
      Number(new RegExp(`\\n${field}:\\s+(\\d+) kB`).exec(block)?.[1] ?? 0)
    return { start, end, perms, sizeKB: kb('Size'), rssKB: kb('Rss') }
  })
  let kb = 0
  for (let i = 0; i + 1 < maps.length; i++) {
    const [here, next] = [maps[i]!, maps[i + 1]!]
    if (
      here.perms.startsWith('rw') &&
      next.perms.startsWith('---') &&
      next.sizeKB > WASM_RESERVATION_KB &&
      here.end === next.start
    )
      kb += here.rssKB
  }
  return kb / 1024
}
