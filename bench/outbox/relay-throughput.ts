/**
 * Measurement 2, relay throughput: how fast a prefilled backlog drains to the in-memory transport.
 *
 * - baseline: a hand-written queue consumer on the plain table (workload.ts): per batch one
 *   transaction of `SELECT … ORDER BY seq LIMIT 100 FOR UPDATE SKIP LOCKED`, publish, `UPDATE … SET
 *   published = true`. It publishes to an `InMemoryTransport` too, so both sides do the same work
 *   outside the database.
 * - relay: one `OutboxRelay` (batchSize 100, defaults otherwise) running its loop (`start()`)
 *   until its `onMetrics` counted every row published, then `stop()`: the loop marks each batch
 *   in the next batch's claim, as a deployed relay does.
 * - 2 relays (PostgreSQL only): two `OutboxRelay`s at once, each on a store with a pool of its own.
 *
 * Each timed drain starts from the same state: the table truncated, ROWS rows appended in
 * transactions of 1,000 (keys spread over 1,000 values), then ANALYZE (the server here runs with
 * autovacuum off, so nothing else would gather statistics). Cases alternate in rotated order per
 * round; the report takes the median rows/s.
 */
import {
  InMemoryTransport,
  type OutboxAppend,
  OutboxRelay,
  type TransportMessage,
} from 'switchyard-bus'
import { collect, heapUsed } from '../dispatch/harness.js'
import type { Backend, BenchStore, Database, Session } from './backends.js'
import { createPlainQueue, insertPlain, outboxRecords, sleep, TOPIC } from './workload.js'

export interface RelayThroughputOptions {
  readonly rows: number
  readonly rounds: number
  readonly batchSize: number
}

/** Rows per second, one value per round; `twoRelays` is undefined where it cannot run. */
export interface RelayThroughputResult {
  readonly rows: number
  readonly baseline: number[]
  readonly relay: number[]
  readonly twoRelays: number[] | undefined
  /**
   * Two bare loops at once, each on a connection of its own (info, where two relays run): how much
   * a second consumer of a plain SKIP LOCKED queue gains on this machine, the ceiling for the
   * second relay.
   */
  readonly twoBaselines: number[] | undefined
  /**
   * Heap retained after one single-relay drain with its InMemoryTransport still referenced, bytes
   * per message: the transport keeps every message it published (it is for tests and demos), which
   * is why the memory measurement (relay-memory.ts) publishes to a counting publisher instead.
   */
  readonly transportBytesPerMessage: number
}

type Case = 'baseline' | 'relay' | 'twoRelays' | 'twoBaselines'

const FILL_BATCH = 1000
/** A relay that finds nothing for this long while rows remain has a bug: stop, do not spin. */
const STALL_MS = 10_000

export async function measureRelayThroughput(
  backend: Backend,
  options: RelayThroughputOptions,
  progress: (text: string) => void,
): Promise<RelayThroughputResult> {
  const db = await backend.open('bench_outbox_relay')
  try {
    await createPlainQueue(db)
    // Two stores on two pools, so the two-relay case never shares a connection.
    const stores = [db.store({ notify: true }), db.store({ notify: true })] as const
    await stores[0].ensureSchema()
    // Appends run on the transaction they are given, so any store fills; this one skips NOTIFY.
    const filler = db.store({ notify: false })
    const cases: Case[] = ['baseline', 'relay']
    if (backend.concurrentConnections) cases.push('twoRelays', 'twoBaselines')
    const result = {
      rows: options.rows,
      baseline: [] as number[],
      relay: [] as number[],
      twoRelays: backend.concurrentConnections ? ([] as number[]) : undefined,
      twoBaselines: backend.concurrentConnections ? ([] as number[]) : undefined,
      transportBytesPerMessage: 0,
    }
    const session = await db.session()
    const second = backend.concurrentConnections ? await db.session() : undefined
    try {
      for (let r = 0; r < options.rounds; r++) {
        for (let k = 0; k < cases.length; k++) {
          const c = cases[(k + r) % cases.length]!
          const plain = c === 'baseline' || c === 'twoBaselines'
          await prefill(db, plain ? undefined : filler, options.rows)
          const transport = new InMemoryTransport()
          collect()
          const heapBefore = heapUsed()
          const start = performance.now()
          if (c === 'baseline') await drainPlain(db, session, transport, options.batchSize)
          else if (c === 'twoBaselines')
            await Promise.all(
              [session, second!].map((s) => drainPlain(db, s, transport, options.batchSize)),
            )
          else
            await drainRelays(
              (counter) => relaysFor(c, stores, transport, options, counter),
              options.rows,
            )
          const rowsPerSecond = options.rows / ((performance.now() - start) / 1000)
          result[c]?.push(rowsPerSecond)
          if (c === 'relay' && r === 0) {
            // The transport is still referenced (checked below), so this is what it keeps.
            collect()
            result.transportBytesPerMessage = (heapUsed() - heapBefore) / options.rows
          }
          checkPublished(c, transport, options.rows)
        }
        progress(`  relay throughput round ${r + 1}/${options.rounds} done`)
      }
    } finally {
      session.release()
      second?.release()
    }
    return result
  } finally {
    await db.close()
  }
}

function relaysFor(
  c: 'relay' | 'twoRelays',
  stores: readonly [BenchStore, BenchStore],
  transport: InMemoryTransport,
  options: RelayThroughputOptions,
  onPublished: (n: number) => void,
): OutboxRelay[] {
  const used = c === 'relay' ? [stores[0]] : stores
  return used.map(
    (store, i) =>
      new OutboxRelay({
        store,
        publisher: transport,
        batchSize: options.batchSize,
        owner: `bench-${i}`,
        statusIntervalMs: 0,
        onMetrics: (m) => onPublished(m.published),
      }),
  )
}

/**
 * Empties the plain table (no filler) or the outbox, appends `rows` rows in transactions of
 * FILL_BATCH, then runs ANALYZE.
 */
async function prefill(db: Database, filler: BenchStore | undefined, rows: number): Promise<void> {
  if (filler !== undefined) return refillOutbox(db, filler, outboxRecords(rows))
  const plain = `"${db.schema}".plain`
  await db.sql.query(`TRUNCATE ${plain}`)
  for (let done = 0; done < rows; done += FILL_BATCH) {
    const records = outboxRecords(Math.min(FILL_BATCH, rows - done))
    await db.transaction((tx) => insertPlain(db, tx, records))
  }
  await db.sql.query(`ANALYZE ${plain}`)
}

/**
 * Empties the outbox (its key counters and stored ids too), appends `records` through `store` in
 * transactions of FILL_BATCH, then runs ANALYZE: every drain starts from the same state.
 */
export async function refillOutbox(
  db: Database,
  store: BenchStore,
  records: readonly OutboxAppend[],
): Promise<void> {
  const s = `"${db.schema}"`
  await db.sql.query(`TRUNCATE ${s}.outbox, ${s}.outbox_keys, ${s}.outbox_ids`)
  for (let i = 0; i < records.length; i += FILL_BATCH) {
    const chunk = records.slice(i, i + FILL_BATCH)
    await db.transaction((tx) => store.append(tx, chunk))
  }
  await db.sql.query(`ANALYZE ${s}.outbox, ${s}.outbox_keys`)
}

interface PlainRow {
  seq: string | number
  id: string
  key: string | null
  body: Uint8Array
  headers: Record<string, string>
}

/** The hand-written consumer: claim, publish and mark in one transaction per batch. */
async function drainPlain(
  db: Database,
  session: Session,
  transport: InMemoryTransport,
  batchSize: number,
): Promise<void> {
  const t = `"${db.schema}".plain`
  for (;;) {
    const n = await session.transaction(async (tx) => {
      const { rows } = await tx.query<PlainRow>(
        `SELECT seq, id, key, body, headers FROM ${t}
         WHERE NOT published ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [batchSize],
      )
      if (rows.length === 0) return 0
      await transport.publish(TOPIC, rows.map(toMessage))
      await tx.query(
        `UPDATE ${t} SET published = true, published_at = now() WHERE seq = ANY($1::bigint[])`,
        [rows.map((r) => r.seq)],
      )
      return rows.length
    })
    if (n === 0) return
  }
}

const toMessage = (r: PlainRow): TransportMessage => ({
  id: r.id,
  key: r.key ?? undefined,
  headers: r.headers,
  body: r.body,
})

/**
 * Starts every relay's loop and waits until `rows` rows were marked published between them (their
 * `onMetrics` counts), then stops them. No progress for STALL_MS while rows remain is a bug: fail.
 */
export async function drainRelays(
  make: (onPublished: (n: number) => void) => OutboxRelay[],
  rows: number,
): Promise<void> {
  let published = 0
  let done: () => void = () => undefined
  const finished = new Promise<void>((resolve) => (done = resolve))
  const relays = make((n) => {
    published += n
    if (published >= rows) done()
  })
  for (const relay of relays) relay.start()
  try {
    let last = -1
    while (published < rows) {
      if (published === last)
        throw new Error(`relay stalled with ${rows - published} rows unpublished`)
      last = published
      await Promise.race([finished, sleep(STALL_MS)])
    }
  } finally {
    await Promise.all(relays.map((relay) => relay.stop()))
  }
}

function checkPublished(c: Case, transport: InMemoryTransport, rows: number): void {
  const got = transport.published(TOPIC).length
  if (got !== rows) throw new Error(`${c}: published ${got} messages, expected ${rows}`)
}
