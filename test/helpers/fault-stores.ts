/**
 * The SQL outbox stores that the fault tests (test/integration/faults/) run on, behind one shape:
 * PostgreSQL (a unique schema per test) and MariaDB (a unique database per test), each with
 * sessions that hold a transaction open on their own connection, so a test can interleave
 * transactions, watch one wait on a lock (as the server reports it) and read the transaction id
 * the server assigned. Plus a recording publisher and the small oracle helpers the tests share.
 */
import { performance } from 'node:perf_hooks'
import type mysql from 'mysql2/promise'
import type pg from 'pg'
import {
  InMemoryTransport,
  type OutboxAppend,
  type OutboxMaintenance,
  type OutboxStore,
  type SqlExecutor,
} from '../../src/index.js'
import { fromMysql2, MysqlOutboxStore } from '../../src/mysql/index.js'
import { fromPg, PostgresOutboxStore } from '../../src/postgres/index.js'
import { createMysqlPool } from './mysql.js'
import { createPool, uniqueSchema } from './postgres.js'

export type FaultStoreName = 'postgres' | 'mariadb'

/** A transaction held open on its own connection. */
export interface FaultSession {
  readonly tx: SqlExecutor
  /** Whether it has neither committed nor rolled back yet. */
  readonly open: boolean
  /**
   * The transaction id the server assigned at this transaction's first write (PostgreSQL
   * `pg_current_xact_id()`, InnoDB `trx_id`); undefined before any write. Not while blocked.
   */
  xid(): Promise<bigint | undefined>
  /** Resolves once the server reports this session waiting for a lock; rejects after `timeoutMs`. */
  waitUntilBlocked(timeoutMs?: number): Promise<void>
  commit(): Promise<void>
  rollback(): Promise<void>
}

/** One store in its own schema or database. */
export interface FaultStore {
  readonly name: FaultStoreName
  readonly store: OutboxStore & OutboxMaintenance
  /**
   * Checks out a connection and begins a transaction on it. `lockWaitS` sets how long this session
   * may wait for a lock (MariaDB `innodb_lock_wait_timeout`, 50 s by default, so a session meant
   * to wait behind a longer transaction needs it; PostgreSQL `lock_timeout`, unbounded by default).
   */
  begin(options?: { readonly lockWaitS?: number }): Promise<FaultSession>
  /** The statements the server reports waiting on a lock right now (for failure messages). */
  lockWaits(): Promise<string[]>
  /** Rolls back the sessions still open and drops the schema or database. */
  dispose(): Promise<void>
}

/** A store the fault tests run on, or `url: null` when its service is missing (skip). */
export interface FaultStoreTarget {
  readonly name: FaultStoreName
  readonly url: string | null
  create(): Promise<FaultStore>
  /** Ends the pools (call in afterAll). */
  end(): Promise<void>
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` every `everyMs` until it holds; rejects with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 10,
): Promise<void> {
  const until = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`not within ${timeoutMs} ms: ${what}`)
    await sleep(everyMs)
  }
}

/** Nearest-rank percentile of `values` (0 when empty). */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** An outbox record whose body names it (the relay never reads bodies). */
export function record(id: string, key: string | undefined, topic: string): OutboxAppend {
  return {
    id,
    key,
    topic,
    type: 'FaultTest',
    body: new TextEncoder().encode(JSON.stringify({ id, key })),
  }
}

/** A publish as the recording publisher saw it. */
export interface Delivery {
  readonly id: string
  readonly key: string | undefined
  /** `performance.now()` when the publisher received it. */
  readonly at: number
}

/** An in-memory transport that also logs every message it is given, in order, with a timestamp. */
export function recordingPublisher(): {
  transport: InMemoryTransport
  deliveries: Delivery[]
} {
  const transport = new InMemoryTransport()
  const deliveries: Delivery[] = []
  transport.onPublish((_topic, message) => {
    deliveries.push({ id: message.id, key: message.key, at: performance.now() })
  })
  return { transport, deliveries }
}

export function faultStoreTargets(services: {
  readonly postgres?: string | null | undefined
  readonly mysql?: string | null | undefined
}): FaultStoreTarget[] {
  return [postgresTarget(services.postgres ?? null), mariadbTarget(services.mysql ?? null)]
}

// Each target has two pools: one for the store (the relay's claims and marks) and one for the test's
// sessions and probes, so a stuck relay statement cannot starve the test of connections.
function postgresTarget(url: string | null): FaultStoreTarget {
  let pools: { store: pg.Pool; sessions: pg.Pool } | undefined
  return {
    name: 'postgres',
    url,
    end: async () => {
      await pools?.store.end()
      await pools?.sessions.end()
    },
    create: async () => {
      pools ??= { store: createPool(url!), sessions: createPool(url!) }
      const db = pools.sessions
      const schema = uniqueSchema('syf')
      const store = new PostgresOutboxStore({ pool: pools.store, schema })
      await store.ensureSchema()
      const sessions = new Set<FaultSession>()
      return {
        name: 'postgres',
        store,
        begin: async (options) => {
          const client = await db.connect()
          let open = true
          let pid: number
          try {
            pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
              .pid
            await client.query('BEGIN')
            if (options?.lockWaitS !== undefined)
              await client.query(`SET LOCAL lock_timeout = '${Math.round(options.lockWaitS)}s'`)
          } catch (error) {
            client.release(true)
            throw error
          }
          const finish = async (statement: 'COMMIT' | 'ROLLBACK'): Promise<void> => {
            if (!open) throw new Error(`session already finished (${statement})`)
            open = false
            sessions.delete(session)
            try {
              await client.query(statement)
              client.release()
            } catch (error) {
              client.release(true)
              throw error
            }
          }
          const session: FaultSession = {
            tx: fromPg(client),
            get open() {
              return open
            },
            xid: async () => {
              const { rows } = await client.query<{ xid: string | null }>(
                'SELECT pg_current_xact_id_if_assigned()::text AS xid',
              )
              const xid = rows[0]?.xid
              return xid === null || xid === undefined ? undefined : BigInt(xid)
            },
            waitUntilBlocked: (timeoutMs = 30_000) =>
              waitFor(
                `PostgreSQL backend ${pid} waiting on a lock`,
                async () =>
                  (
                    await db.query<{ w: string | null }>(
                      'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
                      [pid],
                    )
                  ).rows[0]?.w === 'Lock',
                timeoutMs,
              ),
            commit: () => finish('COMMIT'),
            rollback: () => finish('ROLLBACK'),
          }
          sessions.add(session)
          return session
        },
        lockWaits: async () =>
          (
            await db.query<{ query: string }>(
              `SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1`,
              [`%${schema}%`],
            )
          ).rows.map((r) => r.query.replace(/\s+/g, ' ')),
        dispose: async () => {
          // All at once: a session blocked behind another is released when that one rolls back.
          await Promise.all([...sessions].map((s) => s.rollback().catch(() => undefined)))
          await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        },
      }
    },
  }
}

function mariadbTarget(url: string | null): FaultStoreTarget {
  let pools: { store: mysql.Pool; sessions: mysql.Pool } | undefined
  return {
    name: 'mariadb',
    url,
    end: async () => {
      await pools?.store.end()
      await pools?.sessions.end()
    },
    create: async () => {
      pools ??= { store: createMysqlPool(url!), sessions: createMysqlPool(url!) }
      const db = pools.sessions
      const database = uniqueSchema('syf')
      await db.query(`CREATE DATABASE \`${database}\``)
      const store = new MysqlOutboxStore({ pool: pools.store, database })
      await store.ensureSchema()
      const sessions = new Set<FaultSession>()
      return {
        name: 'mariadb',
        store,
        begin: async (options) => {
          const connection = await db.getConnection()
          let open = true
          let thread: number
          try {
            const [rows] = await connection.query('SELECT CONNECTION_ID() AS id')
            thread = Number((rows as { id: number }[])[0]!.id)
            if (options?.lockWaitS !== undefined)
              await connection.query('SET SESSION innodb_lock_wait_timeout = ?', [
                Math.round(options.lockWaitS),
              ])
            await connection.beginTransaction()
          } catch (error) {
            connection.destroy()
            throw error
          }
          const finish = async (commit: boolean): Promise<void> => {
            if (!open) throw new Error('session already finished')
            open = false
            sessions.delete(session)
            try {
              if (commit) await connection.commit()
              else await connection.rollback()
              // The next session on this connection gets the server default again.
              if (options?.lockWaitS !== undefined)
                await connection.query('SET SESSION innodb_lock_wait_timeout = DEFAULT')
              connection.release()
            } catch (error) {
              connection.destroy()
              throw error
            }
          }
          const session: FaultSession = {
            tx: fromMysql2(connection),
            get open() {
              return open
            },
            xid: async () => {
              // Read it after a write: a transaction that has only read shows a placeholder id.
              // The snapshot behind innodb_trx is refreshed only after 100 ms without readers,
              // so wait that long first, and again while this transaction is not in it yet.
              for (let attempt = 0; attempt < 20; attempt++) {
                await sleep(150)
                const [rows] = await connection.query(
                  'SELECT trx_id FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()',
                )
                const id = (rows as { trx_id: string | number }[])[0]?.trx_id
                if (id !== undefined) return BigInt(id)
              }
              return undefined
            },
            waitUntilBlocked: (timeoutMs = 30_000) =>
              waitFor(
                `MariaDB thread ${thread} waiting on a lock`,
                async () => {
                  const [rows] = await db.query(
                    'SELECT trx_state FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = ?',
                    [thread],
                  )
                  return (rows as { trx_state: string }[])[0]?.trx_state === 'LOCK WAIT'
                },
                timeoutMs,
                // InnoDB refreshes the snapshot behind information_schema.innodb_trx only after
                // 100 ms without readers: polling faster would keep reading the same stale one.
                200,
              ),
            commit: () => finish(true),
            rollback: () => finish(false),
          }
          sessions.add(session)
          return session
        },
        lockWaits: async () => {
          // Each waiting statement with what blocks it (the blocker's current statement, or its
          // age when idle in its transaction), so a stall can be diagnosed from the failure alone.
          const [rows] = await db.query(
            `SELECT w.trx_query AS waiting, b.trx_query AS blocking, b.trx_id AS blocker,
                    TIMESTAMPDIFF(SECOND, b.trx_started, NOW()) AS blocker_age_s,
                    l.lock_mode AS mode, l.lock_index AS idx
               FROM information_schema.innodb_trx w
               LEFT JOIN information_schema.innodb_lock_waits lw ON lw.requesting_trx_id = w.trx_id
               LEFT JOIN information_schema.innodb_trx b ON b.trx_id = lw.blocking_trx_id
               LEFT JOIN information_schema.innodb_locks l ON l.lock_id = lw.blocking_lock_id
              WHERE w.trx_state = 'LOCK WAIT' AND w.trx_query LIKE ?`,
            [`%${database}%`],
          )
          type Wait = {
            waiting: string | null
            blocking: string | null
            blocker: string | null
            blocker_age_s: number | null
            mode: string | null
            idx: string | null
          }
          const flat = (text: string | null): string =>
            (text ?? '').replace(/\s+/g, ' ').slice(0, 300)
          return (rows as Wait[]).map(
            (r) =>
              `${flat(r.waiting)} ⟵ blocked by trx ${r.blocker ?? '?'} (${r.mode ?? '?'} on ${r.idx ?? '?'}, open ${r.blocker_age_s ?? '?'} s, running: ${flat(r.blocking) || 'nothing'})`,
          )
        },
        dispose: async () => {
          // All at once: a session blocked behind another is released when that one rolls back.
          await Promise.all([...sessions].map((s) => s.rollback().catch(() => undefined)))
          await db.query(`DROP DATABASE IF EXISTS \`${database}\``)
        },
      }
    },
  }
}
