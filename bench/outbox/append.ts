/**
 * Measurement 1, append overhead: 8 concurrent clients run `BEGIN; INSERT business row; COMMIT`
 * (baseline) or the same plus one `store.append(tx, [record])` (outbox), each for a fixed time;
 * throughput in committed transactions per second. The sides alternate in rotated order, round
 * after round, and the report takes the median of the rounds.
 *
 * A third, informative side appends through a store built with `notify: false`: `append` then
 * skips its `SELECT pg_notify(…)` statement, which shows what the wake-up hint costs (one round
 * trip per append, and at commit the server's global notification-queue lock).
 *
 * A fourth, informative side runs the business INSERT twice: the price of one more statement of
 * the cheapest kind in the transaction, the ceiling for any append that is a statement of its own.
 *
 * A fifth, informative side inserts the appended row alone, as one prepared INSERT (a named
 * statement; PGlite plans it each time, which for a one-row VALUES costs little), into a copy of
 * the outbox table with the same columns and indexes: no key counter, no id row, no NOTIFY. The
 * ceiling for any outbox that keeps its rows in a table a relay can claim in order by key.
 */
import type { SqlExecutor } from 'switchyard-bus'
import { collect } from '../dispatch/harness.js'
import type { BenchStore, Database, Backend, Session } from './backends.js'
import { createOrders, insertOrder, outboxRecord } from './workload.js'

export interface AppendOptions {
  readonly clients: number
  readonly rounds: number
  readonly roundMs: number
  readonly warmupMs: number
}

/** Transactions per second, one value per round. */
export interface AppendResult {
  readonly baseline: number[]
  readonly outbox: number[]
  readonly outboxNoNotify: number[]
  readonly secondInsert: number[]
  readonly rowOnly: number[]
}

type Side = keyof AppendResult

const SIDES: readonly Side[] = ['baseline', 'outbox', 'outboxNoNotify', 'secondInsert', 'rowOnly']

export async function measureAppend(
  backend: Backend,
  options: AppendOptions,
  progress: (text: string) => void,
): Promise<AppendResult> {
  const db = await backend.open('bench_outbox_append')
  try {
    await createOrders(db)
    const stores = { notify: db.store({ notify: true }), quiet: db.store({ notify: false }) }
    await stores.notify.ensureSchema()
    await createRowOnly(db)
    const sessions = await Promise.all(Array.from({ length: options.clients }, () => db.session()))
    try {
      const work = (side: Side): ((tx: SqlExecutor) => Promise<void>) =>
        transactionBody(db, stores, side)
      for (const side of SIDES) await runFor(sessions, options.warmupMs, work(side))
      const result: AppendResult = {
        baseline: [],
        outbox: [],
        outboxNoNotify: [],
        secondInsert: [],
        rowOnly: [],
      }
      for (let r = 0; r < options.rounds; r++) {
        for (let k = 0; k < SIDES.length; k++) {
          const side = SIDES[(k + r) % SIDES.length]!
          collect()
          result[side].push(await runFor(sessions, options.roundMs, work(side)))
        }
        progress(`  append round ${r + 1}/${options.rounds} done`)
      }
      return result
    } finally {
      for (const s of sessions) s.release()
    }
  } finally {
    await db.close()
  }
}

/** What one transaction of a side does, after its BEGIN and before its COMMIT. */
function transactionBody(
  db: Database,
  stores: { readonly notify: BenchStore; readonly quiet: BenchStore },
  side: Side,
): (tx: SqlExecutor) => Promise<void> {
  switch (side) {
    case 'baseline':
      return (tx) => insertOrder(db, tx)
    case 'outbox':
      return async (tx) => {
        await insertOrder(db, tx)
        await stores.notify.append(tx, [outboxRecord()])
      }
    case 'outboxNoNotify':
      return async (tx) => {
        await insertOrder(db, tx)
        await stores.quiet.append(tx, [outboxRecord()])
      }
    case 'secondInsert':
      return async (tx) => {
        await insertOrder(db, tx)
        await insertOrder(db, tx)
      }
    case 'rowOnly':
      return async (tx) => {
        await insertOrder(db, tx)
        await insertRowOnly(db, tx)
      }
  }
}

/** The outbox table's twin (columns, defaults, identity, indexes), for the `rowOnly` side. */
async function createRowOnly(db: Database): Promise<void> {
  await db.sql.query(
    `CREATE TABLE "${db.schema}".row_only (LIKE "${db.schema}".outbox INCLUDING ALL) WITH (fillfactor = 50)`,
  )
}

/** The row an append of `outboxRecord()` stores, with its values as the store binds them. */
async function insertRowOnly(db: Database, tx: SqlExecutor): Promise<void> {
  const r = outboxRecord()
  await tx.query(
    `INSERT INTO "${db.schema}".row_only (id, topic, key, key_seq, type, body, headers)
     VALUES ($1, $2, $3, 1, $4, $5, $6::jsonb)`,
    [r.id, r.topic, r.key, r.type, Buffer.from(r.body), '{}'],
    { name: 'bench_row_only' },
  )
}

/**
 * Every session runs transactions back to back until `ms` have passed; returns commits per second
 * over the time until the last one finished (so a transaction in flight at the deadline counts,
 * and so does the time it took).
 */
async function runFor(
  sessions: readonly Session[],
  ms: number,
  body: (tx: SqlExecutor) => Promise<void>,
): Promise<number> {
  const start = performance.now()
  const deadline = start + ms
  const counts = await Promise.all(
    sessions.map(async (session) => {
      let n = 0
      while (performance.now() < deadline) {
        await session.transaction(body)
        n++
      }
      return n
    }),
  )
  const seconds = (performance.now() - start) / 1000
  return counts.reduce((a, b) => a + b, 0) / seconds
}
