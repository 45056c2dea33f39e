/**
 * A relay in its own process, for the fault tests (crash-harness.ts). It publishes to a recording
 * publisher that appends one JSON line per message to the ledger synchronously, before confirming,
 * so the parent can kill this process at any moment and still account for every publish.
 *
 * Env:
 * - `RELAY_STORE`: `postgres` (default, `SWITCHYARD_PG_URL`), `mysql` (`SWITCHYARD_MYSQL_URL`) or
 *   `pglite` (`RELAY_PGLITE_DIR`, a data directory); `RELAY_SCHEMA`: the schema, or the MariaDB
 *   database.
 * - `RELAY_LEDGER`: the publish ledger; `RELAY_MARKS` (optional): one line per `markPublished`
 *   with the ids and how many the fence accepted; `RELAY_LOG` (optional): the relay's warnings and
 *   errors.
 * - `RELAY_BATCH`, `RELAY_LEASE_MS`, `RELAY_PUBLISH_TIMEOUT_MS`: relay options; `RELAY_PUBLISH_MS`:
 *   a broker round trip to simulate, half before the ledger line, half after (default 0).
 * - `SWITCHYARD_FAULT`: the relay's fault points, plus this publisher's own
 *   `publisher.before-confirm` (ledger written, publish not yet confirmed).
 * - `RELAY_STALL_AT=n` (optional): after writing the ledger of its nth publish, the process stops
 *   itself with SIGSTOP, before the publish is confirmed (a stalled relay; the parent sends SIGCONT).
 * - `RELAY_PRODUCE=n` (optional): the child also appends messages 0…n-1 (resuming after those the
 *   outbox already holds), `RELAY_PER_TX` per transaction over `RELAY_KEYS` keys chosen with
 *   `RELAY_SEED`, and appends each committed transaction's ids to `RELAY_COMMITTED` after the
 *   commit returns. With `RELAY_DRAIN=1` it then waits for the backlog to drain (or a row to go
 *   dead), stops, closes the store and sends `done`.
 */
import { appendFileSync } from 'node:fs'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import type {
  ClaimRef,
  Logger,
  MarkAndClaim,
  OutboxAppend,
  OutboxMaintenance,
  OutboxStore,
  Publisher,
  SqlExecutor,
} from '../../src/index.js'
import { OutboxRelay } from '../../src/index.js'
import { MysqlOutboxStore } from '../../src/mysql/index.js'
import { faultPoint } from '../../src/outbox/fault-points.js'
import { fromPglite, PgliteOutboxStore } from '../../src/pglite/index.js'
import { PostgresOutboxStore } from '../../src/postgres/index.js'
import {
  type ChildMessage,
  crashRecord,
  type Mark,
  random,
  relayOwner,
  sleep,
} from './crash-harness.js'
import { createMysqlPool, inMysqlTransaction } from './mysql.js'
import { inTransaction } from './postgres.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is required`)
  return value
}
const numberEnv = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)

type Store = OutboxStore & OutboxMaintenance

interface Opened {
  readonly store: Store
  readonly transaction: (work: (tx: SqlExecutor) => Promise<void>) => Promise<void>
  readonly close: () => Promise<void>
}

async function open(): Promise<Opened> {
  const schema = env('RELAY_SCHEMA')
  switch (process.env.RELAY_STORE ?? 'postgres') {
    case 'postgres': {
      const pool = new pg.Pool({ connectionString: env('SWITCHYARD_PG_URL'), max: 3 })
      pool.on('error', () => undefined)
      const store = new PostgresOutboxStore({ pool, schema, notify: false })
      return { store, transaction: (work) => inTransaction(pool, work), close: () => pool.end() }
    }
    case 'mysql': {
      const pool = createMysqlPool(env('SWITCHYARD_MYSQL_URL'))
      const store = new MysqlOutboxStore({ pool, database: schema })
      return {
        store,
        transaction: (work) => inMysqlTransaction(pool, work),
        close: () => pool.end(),
      }
    }
    case 'pglite': {
      // Opening a data directory left by a SIGKILL runs PostgreSQL's crash recovery.
      const db = await PGlite.create(env('RELAY_PGLITE_DIR'))
      const store = new PgliteOutboxStore({ db, schema, notify: false })
      await store.ensureSchema()
      return {
        store,
        transaction: (work) => db.transaction((tx) => work(fromPglite(tx))),
        close: () => db.close(),
      }
    }
    default:
      throw new Error(`RELAY_STORE must be postgres, mysql or pglite`)
  }
}

/**
 * The store as the relay sees it: with RELAY_MARKS set, each mark's outcome is recorded, whether
 * it came as `markPublished` or with the next claim (`markAndClaim`).
 */
function recordingMarks(store: Store): Store {
  const marks = process.env.RELAY_MARKS
  if (marks === undefined) return store
  const record = (claims: readonly ClaimRef[], accepted: number): void => {
    const mark: Mark = { pid: process.pid, ids: claims.map((c) => c.id), accepted }
    appendFileSync(marks, `${JSON.stringify(mark)}\n`)
  }
  const markPublished: Store['markPublished'] = async (claims) => {
    const accepted = await store.markPublished(claims)
    record(claims, accepted)
    return accepted
  }
  const markAndClaim: MarkAndClaim['markAndClaim'] = async (claims, options) => {
    const result = await (store as Store & MarkAndClaim).markAndClaim(claims, options)
    if (claims.length > 0) record(claims, result.accepted)
    return result
  }
  return new Proxy(store, {
    get(target, name) {
      if (name === 'markPublished') return markPublished
      if (name === 'markAndClaim' && 'markAndClaim' in target) return markAndClaim
      const value: unknown = Reflect.get(target, name, target)
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value
    },
  })
}

/** With `RELAY_LOG` set, the relay's warnings and errors as JSON lines in that file. */
function fileLogger(): Logger | undefined {
  const file = process.env.RELAY_LOG
  if (file === undefined) return undefined
  const line =
    (level: string) =>
    (fields: object, message?: string): void => {
      const { err, ...rest } = fields as { err?: unknown }
      const error = err instanceof Error ? err.message : err
      appendFileSync(
        file,
        `${JSON.stringify({ t: Date.now(), pid: process.pid, level, message, error, ...rest })}\n`,
      )
    }
  return { debug: () => undefined, info: () => undefined, warn: line('warn'), error: line('error') }
}

function recordingPublisher(): Publisher {
  const ledger = env('RELAY_LEDGER')
  const stallAt = numberEnv('RELAY_STALL_AT', 0)
  const latencyMs = numberEnv('RELAY_PUBLISH_MS', 0)
  let call = 0
  return {
    publish: async (topic, messages) => {
      const n = ++call
      if (latencyMs > 0) await sleep(latencyMs / 2) // on the way to the broker
      appendFileSync(
        ledger,
        messages
          .map(
            (m) =>
              `${JSON.stringify({ id: m.id, key: m.key, topic, pid: process.pid, call: n })}\n`,
          )
          .join(''),
      )
      if (n === stallAt) process.kill(process.pid, 'SIGSTOP') // returns after SIGCONT
      faultPoint('publisher.before-confirm')
      if (latencyMs > 0) await sleep(latencyMs / 2) // the confirm on its way back
    },
    close: async () => undefined,
  }
}

const backlog = async (store: Store): Promise<{ total: number; open: number; dead: number }> => {
  const s = await store.status()
  return {
    total: s.pending + s.inflight + s.dead + s.published,
    open: s.pending + s.inflight,
    dead: s.dead,
  }
}

/** Appends the messages the outbox does not hold yet; records each commit after it returns. */
async function produce(opened: Opened, count: number): Promise<void> {
  const perTx = numberEnv('RELAY_PER_TX', 10)
  const keys = numberEnv('RELAY_KEYS', 50)
  const seedValue = numberEnv('RELAY_SEED', 1)
  const committedLedger = env('RELAY_COMMITTED')
  const pauseMs = numberEnv('RELAY_PRODUCE_PAUSE_MS', 5)
  for (let start = (await backlog(opened.store)).total; start < count; start += perTx) {
    const records: OutboxAppend[] = []
    for (let i = start; i < Math.min(start + perTx, count); i++)
      records.push(crashRecord(i, `key-${Math.floor(random(seedValue * 1_000_003 + i)() * keys)}`))
    await opened.transaction((tx) => opened.store.append(tx, records))
    appendFileSync(
      committedLedger,
      records.map((r) => `${JSON.stringify({ id: r.id, key: r.key })}\n`).join(''),
    )
    await sleep(pauseMs)
  }
}

async function main(): Promise<void> {
  const started = Date.now()
  const opened = await open()
  const logger = fileLogger()
  await opened.store.status() // connected: the parent's kill schedule starts when the relay can work
  const relay = new OutboxRelay({
    store: recordingMarks(opened.store),
    publisher: recordingPublisher(),
    batchSize: numberEnv('RELAY_BATCH', 50),
    leaseMs: numberEnv('RELAY_LEASE_MS', 1000),
    publishTimeoutMs: numberEnv('RELAY_PUBLISH_TIMEOUT_MS', 500),
    pollIntervalMs: 20,
    owner: relayOwner(process.pid),
    backoff: { initialDelay: 5, maxDelay: 50 },
    ...(logger === undefined ? {} : { logger }),
  })
  relay.start()
  const send = (message: ChildMessage): void => void process.send?.(message)
  send({ type: 'ready', pid: process.pid, openMs: Date.now() - started })
  const count = numberEnv('RELAY_PRODUCE', 0)
  if (count === 0) return
  await produce(opened, count)
  if (process.env.RELAY_DRAIN !== '1') return
  for (;;) {
    // A dead row blocks its key for good: stop there too, the parent reports it.
    const { total, open: left, dead } = await backlog(opened.store)
    if (total >= count && (left === 0 || dead > 0)) break
    await sleep(200)
  }
  await relay.stop()
  await opened.close()
  process.send?.({ type: 'done', pid: process.pid } satisfies ChildMessage, () => process.exit(0))
}

main().catch((error: unknown) => {
  console.error('relay child failed:', error)
  process.exit(1)
})
