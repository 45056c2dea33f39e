/**
 * The two databases the outbox benchmark runs on, behind one small interface, so every measurement
 * is written once: PostgreSQL through `pg` (a server, many connections) and in-memory PGlite (one
 * connection inside this process).
 *
 * Every measurement opens its own `Database`: a unique schema, created on open and dropped (with
 * everything in it) on close; on PGlite also a fresh instance, so no measurement inherits another's
 * in-process database.
 */
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import pg from 'pg'
import type { OutboxMaintenance, OutboxStore, SqlExecutor, WakeUpSource } from 'switchyard-bus'
import { fromPglite, PgliteOutboxStore } from 'switchyard-bus/pglite'
import { fromPg, PostgresOutboxStore } from 'switchyard-bus/postgres'

/** What the benchmark needs of a store: the port, maintenance (status) and LISTEN. */
export type BenchStore = OutboxStore & OutboxMaintenance & WakeUpSource

/** Runs transactions one at a time. */
export interface Session {
  /** `BEGIN`, `work`, `COMMIT` (`ROLLBACK` if `work` throws); resolves once committed. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>
}

/** A session pinned to one connection (PostgreSQL) or to the one instance (PGlite). */
export interface PinnedSession extends Session {
  release(): void
}

/** One measurement's database: its own schema, dropped on close. */
export interface Database extends Session {
  /** The schema name (unquoted; a safe identifier). */
  readonly schema: string
  /** Runs statements outside any transaction (DDL, TRUNCATE, ANALYZE). */
  readonly sql: SqlExecutor
  /** A session on a connection of its own (PostgreSQL); the instance itself (PGlite). */
  session(): Promise<PinnedSession>
  /**
   * An outbox store in this schema. On PostgreSQL each store gets a pool of its own (`max` 3: one
   * LISTEN client, one for claims and marks, one spare), so two relays never share connections.
   */
  store(options: { readonly notify: boolean }): BenchStore
  /** Drops the schema and releases every connection (or closes the PGlite instance). */
  close(): Promise<void>
}

export interface Backend {
  readonly name: 'PostgreSQL' | 'PGlite'
  readonly id: 'postgres' | 'pglite'
  /** Whether several connections can work at once (false: PGlite's one connection). */
  readonly concurrentConnections: boolean
  /** A line for the report: what "8 concurrent clients" means here. */
  readonly clientsNote: string
  /** A line for the report: the server or library and the settings that shape the figures. */
  describe(): Promise<string>
  /**
   * `onDisk`: PGlite keeps its files in a data directory in a temporary folder (removed on close)
   * instead of in memory, where they would be part of this process's RSS. PostgreSQL ignores it.
   */
  open(prefix: string, options?: { readonly onDisk?: boolean }): Promise<Database>
}

const uniqueSchema = (prefix: string): string => `${prefix}_${randomBytes(4).toString('hex')}`

const ignore = (): void => undefined

// ---------------------------------------------------------------------------------------------
// PostgreSQL

export function postgresBackend(url: string): Backend {
  return {
    name: 'PostgreSQL',
    id: 'postgres',
    concurrentConnections: true,
    clientsNote: '8 concurrent clients = 8 connections, one transaction at a time each',
    describe: () => describePostgres(url),
    open: (prefix) => openPostgres(url, prefix),
  }
}

/** Settings that explain the figures: durability (fsync per commit) and vacuuming. */
async function describePostgres(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings
       WHERE name IN ('server_version', 'synchronous_commit', 'fsync', 'autovacuum',
                      'shared_buffers')
       ORDER BY name`,
    )
    return rows.map((r) => `${r.name}=${r.setting}`).join(', ')
  } finally {
    await client.end()
  }
}

async function openPostgres(url: string, prefix: string): Promise<Database> {
  const schema = uniqueSchema(prefix)
  const pools: pg.Pool[] = []
  const newPool = (max: number): pg.Pool => {
    const pool = new pg.Pool({ connectionString: url, max })
    // pg asks for this: an idle client that loses its connection would otherwise end the process.
    pool.on('error', ignore)
    pools.push(pool)
    return pool
  }
  // Sessions and pooled transactions: 8 workers plus a spare or two.
  const shared = newPool(10)
  const admin = newPool(1)
  await admin.query(`CREATE SCHEMA "${schema}"`)
  const session = async (): Promise<PinnedSession> => {
    const client = await shared.connect()
    return {
      transaction: (work) => pgTransaction(client, work),
      release: () => client.release(),
    }
  }
  return {
    schema,
    sql: fromPg(admin),
    session,
    transaction: async (work) => {
      const client = await shared.connect()
      try {
        return await pgTransaction(client, work)
      } finally {
        client.release()
      }
    },
    store: ({ notify }) => new PostgresOutboxStore({ pool: newPool(3), schema, notify }),
    close: async () => {
      try {
        await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      } finally {
        await Promise.all(pools.map((p) => p.end()))
      }
    },
  }
}

async function pgTransaction<T>(
  client: pg.PoolClient,
  work: (tx: SqlExecutor) => Promise<T>,
): Promise<T> {
  await client.query('BEGIN')
  try {
    const result = await work(fromPg(client))
    await client.query('COMMIT')
    return result
  } catch (error) {
    await client.query('ROLLBACK').catch(ignore)
    throw error
  }
}

// ---------------------------------------------------------------------------------------------
// PGlite

export function pgliteBackend(): Backend {
  return {
    name: 'PGlite',
    id: 'pglite',
    concurrentConnections: false,
    clientsNote:
      '8 concurrent clients = 8 concurrent async callers on the one in-memory instance ' +
      '(PGlite has a single connection and runs one transaction at a time)',
    describe: describePglite,
    open: openPglite,
  }
}

async function describePglite(): Promise<string> {
  const db = new PGlite()
  try {
    const { rows } = await db.query<{ version: string }>('SELECT version()')
    return `in-memory (new PGlite()), ${rows[0]?.version.split(' on ')[0] ?? 'unknown version'}`
  } finally {
    await db.close()
  }
}

async function openPglite(
  prefix: string,
  options: { readonly onDisk?: boolean } = {},
): Promise<Database> {
  const schema = uniqueSchema(prefix)
  const dataDir =
    options.onDisk === true ? await mkdtemp(join(tmpdir(), 'switchyard-bench-')) : undefined
  const db = new PGlite(dataDir)
  await db.query(`CREATE SCHEMA "${schema}"`)
  const transaction = <T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> =>
    db.transaction((tx) => work(fromPglite(tx)))
  return {
    schema,
    sql: fromPglite(db),
    session: async () => ({ transaction, release: ignore }),
    transaction,
    store: ({ notify }) => new PgliteOutboxStore({ db, schema, notify }),
    close: async () => {
      try {
        await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      } finally {
        await db.close()
        if (dataDir !== undefined) await rm(dataDir, { recursive: true, force: true })
      }
    },
  }
}
