/**
 * The shared harness of the fault tests (RELIABILITY.md §2.2): a seeded PRNG, relay children
 * (test/helpers/relay-child.ts) forked and killed by pid (and seen stopped by SIGSTOP), the store
 * fixtures the parent seeds and inspects, the ledger oracle, and the one-JSON-line report.
 *
 * The ledger is a file of JSON lines, one per message handed to the publisher, appended
 * synchronously by the children before the publish is confirmed, so a SIGKILL at any moment leaves
 * an exact account of what was published. No vitest import here: the children load this file too.
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { OutboxAppend, OutboxMaintenance, OutboxStore } from '../../src/index.js'
import { MysqlOutboxStore } from '../../src/mysql/index.js'
import { PostgresOutboxStore } from '../../src/postgres/index.js'
import { createMysqlPool, inMysqlTransaction } from './mysql.js'
import { createPool, inTransaction, uniqueSchema } from './postgres.js'

/** `SWITCHYARD_CHAOS_SCALE` (default 1) multiplies the sizes; `SWITCHYARD_CHAOS_SEED` fixes schedules. */
export const chaosScale = Number(process.env.SWITCHYARD_CHAOS_SCALE ?? 1)
export const chaosSeed = Number(process.env.SWITCHYARD_CHAOS_SEED ?? Date.now() % 100_000)

/** A small seeded PRNG (mulberry32), so a failing schedule can be replayed. */
export function random(seedValue: number): () => number {
  let a = seedValue >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every 50 ms until it holds; a generous liveness deadline, never a timing assertion. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  deadlineMs = 60_000,
): Promise<void> {
  const until = Date.now() + deadlineMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`Timed out after ${deadlineMs} ms waiting for ${what}`)
    await sleep(50)
  }
}

/** The message id of the ordinal `i`: zero-padded, so ids sort in production order. */
export const messageId = (i: number): string => `m-${String(i).padStart(7, '0')}`

/** A set of ids as one comparable string. */
export const idSet = (ids: Iterable<string>): string => [...ids].sort().join()

/** A message a test committed, in commit order. */
export interface Committed {
  readonly id: string
  readonly key: string
}

/** One ledger line: a message handed to the publisher by relay process `pid` in its `call`th publish. */
export interface Delivery {
  readonly id: string
  readonly key: string
  readonly topic: string
  readonly pid: number
  readonly call: number
}

/** One line of the marks ledger (`RELAY_MARKS`): a `markPublished` call and what the fence accepted. */
export interface Mark {
  readonly pid: number
  readonly ids: readonly string[]
  readonly accepted: number
}

/** Reads a JSON-lines file (a missing file is empty). */
export function readJsonLines<T>(file: string): T[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as T)
}

/** What the ledger oracle finds. */
export interface LedgerCheck {
  /** Committed, never published. */
  readonly lost: number
  /** Published, never committed. */
  readonly phantom: number
  /** Publications beyond the first of each id. */
  readonly duplicates: number
  /** The ids published more than once. */
  readonly duplicateIds: readonly string[]
  /** Keys whose first deliveries are not their commit order. */
  readonly orderViolations: number
}

/**
 * The ledger oracle: `committed` in commit order (per key, that order is the one to keep) against
 * the deliveries in publication order.
 */
export function checkLedger(
  committed: readonly Committed[],
  deliveries: readonly Pick<Delivery, 'id' | 'key'>[],
): LedgerCheck {
  const committedIds = new Set(committed.map((c) => c.id))
  const counts = new Map<string, number>()
  const firstSeen = new Map<string, string[]>()
  for (const d of deliveries) {
    const n = (counts.get(d.id) ?? 0) + 1
    counts.set(d.id, n)
    if (n === 1) firstSeen.set(d.key, [...(firstSeen.get(d.key) ?? []), d.id])
  }
  const expected = new Map<string, string[]>()
  for (const c of committed) expected.set(c.key, [...(expected.get(c.key) ?? []), c.id])
  let orderViolations = 0
  for (const [key, ids] of expected)
    if ((firstSeen.get(key) ?? []).join() !== ids.join()) orderViolations++
  return {
    lost: committed.filter((c) => !counts.has(c.id)).length,
    phantom: [...counts.keys()].filter((id) => !committedIds.has(id)).length,
    duplicates: deliveries.length - counts.size,
    duplicateIds: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    orderViolations,
  }
}

/** Prints the test's one JSON line: `{"test":…,"store":…,…}`. */
export function report(test: string, store: string, fields: Record<string, unknown>): void {
  console.log(JSON.stringify({ test, store, ...fields }))
}

// ---------------------------------------------------------------------------------------------
// Children

const childScript = fileURLToPath(new URL('./relay-child.ts', import.meta.url))

/** What a child says over IPC. */
export type ChildMessage =
  | { readonly type: 'ready'; readonly pid: number; readonly openMs: number }
  | { readonly type: 'done'; readonly pid: number }

/** Every child a test forks, so `finally` can kill them all. */
export class Children {
  readonly #all = new Set<ChildProcess>()

  /** Forks a relay child and resolves once it is relaying (rejects if it exits first). */
  start(
    env: Record<string, string>,
    onMessage?: (message: ChildMessage) => void,
  ): Promise<ChildProcess> {
    return new Promise((resolve, reject) => {
      const proc = fork(childScript, {
        env: { ...process.env, ...env },
        execArgv: ['--import', 'tsx'],
        stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      })
      this.#all.add(proc)
      const timer = setTimeout(() => reject(new Error('relay child not ready in 60 s')), 60_000)
      proc.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') {
          clearTimeout(timer)
          resolve(proc)
        }
        onMessage?.(message)
      })
      proc.once('error', reject)
      proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        reject(new Error(`relay child ${proc.pid} exited before ready (code ${code}, ${signal})`))
      })
    })
  }

  /** SIGKILLs a child and waits for its exit. */
  kill(proc: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
      if (exited(proc)) return resolve()
      proc.once('exit', () => resolve())
      proc.kill('SIGKILL')
    })
  }

  killAll(): Promise<void[]> {
    return Promise.all([...this.#all].map((proc) => this.kill(proc)))
  }
}

/** The lease owner a relay child claims as. */
export const relayOwner = (pid: number | undefined): string => `relay-child-${pid}`

export const exited = (proc: ChildProcess): boolean =>
  proc.exitCode !== null || proc.signalCode !== null

/** Resolves with the signal that ended the child (null for a normal exit). */
export function exitOf(proc: ChildProcess, deadlineMs = 60_000): Promise<NodeJS.Signals | null> {
  if (exited(proc)) return Promise.resolve(proc.signalCode)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`relay child ${proc.pid} still running after ${deadlineMs} ms`)),
      deadlineMs,
    )
    proc.once('exit', (_code, signal) => {
      clearTimeout(timer)
      resolve(signal)
    })
  })
}

/** Whether the process is stopped (SIGSTOP): `T` in ps's state column. */
export function isStopped(pid: number): boolean {
  try {
    return execFileSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' })
      .trim()
      .startsWith('T')
  } catch {
    return false
  }
}

/** A temporary directory for ledgers, removed by `remove()`. */
export function scratch(): { dir: string; file: (name: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sy-faults-'))
  return {
    dir,
    file: (name) => {
      const path = join(dir, name)
      writeFileSync(path, '')
      return path
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  }
}

// ---------------------------------------------------------------------------------------------
// Stores the parent seeds and inspects (the children open their own, from `childEnv`)

export type ServerStore = 'postgres' | 'mysql'

/** The database servers the fault tests run on. */
export const SERVER_STORES: readonly { readonly store: ServerStore; readonly title: string }[] = [
  { store: 'postgres', title: 'PostgreSQL' },
  { store: 'mysql', title: 'MariaDB' },
]

/** A row's state, as the parent reads it back. */
export interface RowState {
  readonly id: string
  readonly state: string
  readonly publishedAt: string | null
  readonly owner: string | null
}

/** An outbox in a unique schema (PostgreSQL) or database (MariaDB), with its own pool. */
export interface CrashStore {
  readonly kind: ServerStore
  readonly store: OutboxStore & OutboxMaintenance
  /** The environment a relay child needs to open this outbox. */
  readonly childEnv: Record<string, string>
  /** Appends in one transaction. */
  append(records: readonly OutboxAppend[]): Promise<void>
  /** Refreshes the planner statistics, as autovacuum would on a long-lived outbox. */
  analyze(): Promise<void>
  rows(): Promise<RowState[]>
  /** Drops the schema or database and ends the pool. */
  drop(): Promise<void>
}

/** Creates a fresh outbox on the given server. */
export async function openCrashStore(kind: ServerStore, url: string): Promise<CrashStore> {
  const name = uniqueSchema()
  const columns = (text: string) =>
    `id, state, CAST(published_at AS ${text}) AS published_at, lease_owner AS owner`
  if (kind === 'postgres') {
    const pool = createPool(url)
    const store = new PostgresOutboxStore({ pool, schema: name, notify: false })
    await store.ensureSchema()
    const table = `"${name}"."outbox"`
    return {
      kind,
      store,
      childEnv: { RELAY_STORE: kind, SWITCHYARD_PG_URL: url, RELAY_SCHEMA: name },
      append: (records) => inTransaction(pool, (tx) => store.append(tx, records)),
      analyze: async () => void (await pool.query(`ANALYZE ${table}`)),
      // A claimed row stays 'pending' here, holding a live lease: report it as in flight.
      rows: async () =>
        rowStates(
          (
            await pool.query(
              `SELECT ${columns('text')}, state = 'pending' AND lease_token IS NOT NULL AND available_at > now() AS leased FROM ${table}`,
            )
          ).rows,
        ),
      drop: async () => {
        await pool.query(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
        await pool.end()
      },
    }
  }
  const pool = createMysqlPool(url)
  await pool.query(`CREATE DATABASE \`${name}\``)
  const store = new MysqlOutboxStore({ pool, database: name })
  await store.ensureSchema()
  const table = `\`${name}\`.\`outbox\``
  return {
    kind,
    store,
    childEnv: { RELAY_STORE: kind, SWITCHYARD_MYSQL_URL: url, RELAY_SCHEMA: name },
    append: (records) => inMysqlTransaction(pool, (tx) => store.append(tx, records)),
    analyze: async () => void (await pool.query(`ANALYZE TABLE ${table}`)),
    rows: async () => rowStates((await pool.query(`SELECT ${columns('CHAR')} FROM ${table}`))[0]),
    drop: async () => {
      await pool.query(`DROP DATABASE IF EXISTS \`${name}\``)
      await pool.end()
    },
  }
}

function rowStates(rows: unknown): RowState[] {
  // MariaDB returns its VARBINARY ids as Buffers.
  const text = (value: string | Buffer | null | undefined): string | null =>
    value === null || value === undefined ? null : value.toString()
  return (rows as Record<string, string | Buffer | boolean | null>[]).map((r) => ({
    id: text(r.id as string)!,
    state: r.leased === true ? 'inflight' : text(r.state as string)!,
    publishedAt: text(r.published_at as string | null),
    owner: text(r.owner as string | null),
  }))
}

/** Options of {@link seed}. */
export interface SeedOptions {
  readonly messages: number
  readonly keys: number
  readonly topics?: readonly string[]
  /** Messages per transaction. Default 100. */
  readonly perTransaction?: number
  readonly rand: () => number
}

/** Commits `messages` over random keys (and topics), returning them in commit order. */
export async function seed(target: CrashStore, options: SeedOptions): Promise<Committed[]> {
  const { messages, keys, rand, topics = ['crash'], perTransaction = 100 } = options
  const committed: Committed[] = []
  for (let start = 0; start < messages; start += perTransaction) {
    const records: OutboxAppend[] = []
    for (let i = start; i < Math.min(start + perTransaction, messages); i++) {
      const key = `key-${Math.floor(rand() * keys)}`
      records.push(crashRecord(i, key, topics[i % topics.length]))
      committed.push({ id: messageId(i), key })
    }
    await target.append(records)
  }
  return committed
}

/** The outbox record of ordinal `i`. */
export function crashRecord(i: number, key: string, topic = 'crash'): OutboxAppend {
  return { id: messageId(i), key, topic, type: 'Crash', body: new TextEncoder().encode('{}') }
}

/** What {@link withCrashStore} hands a test. */
export interface CrashContext {
  readonly target: CrashStore
  readonly children: Children
  /** A fresh empty file in the test's scratch directory. */
  readonly file: (name: string) => string
  /** The environment of a relay child on this outbox, writing to `ledger`. */
  readonly relayEnv: (ledger: string, options: RelayChildOptions) => Record<string, string>
}

/** Relay options of a child (see relay-child.ts). */
export interface RelayChildOptions {
  readonly batch: number
  readonly leaseMs: number
  readonly publishMs?: number
}

/**
 * Runs `test` on a fresh outbox with a scratch directory; afterwards, pass or fail, kills every
 * child it started, drops the schema or database and removes the directory.
 */
export async function withCrashStore<T>(
  kind: ServerStore,
  url: string,
  test: (context: CrashContext) => Promise<T>,
): Promise<T> {
  const target = await openCrashStore(kind, url)
  const files = scratch()
  const children = new Children()
  try {
    return await test({
      target,
      children,
      file: files.file,
      relayEnv: (ledger, { batch, leaseMs, publishMs = 0 }) => ({
        ...target.childEnv,
        RELAY_LEDGER: ledger,
        RELAY_BATCH: String(batch),
        RELAY_LEASE_MS: String(leaseMs),
        RELAY_PUBLISH_MS: String(publishMs),
      }),
    })
  } finally {
    await children.killAll()
    await target.drop()
    files.remove()
  }
}

/** Waits until nothing is pending or in flight (a generous liveness deadline). */
export async function drained(store: OutboxMaintenance, deadlineMs = 120_000): Promise<void> {
  await waitFor(
    'the outbox backlog to drain',
    async () => {
      const status = await store.status()
      return status.pending + status.inflight === 0
    },
    deadlineMs,
  )
}

/** The ids a relay process held (claimed, not marked) in the outbox, e.g. right after it died. */
export async function heldBy(target: CrashStore, pid: number | undefined): Promise<string[]> {
  return (await target.rows())
    .filter((r) => r.state === 'inflight' && r.owner === relayOwner(pid))
    .map((r) => r.id)
}
