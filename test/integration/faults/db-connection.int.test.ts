/**
 * Database connection faults (RELIABILITY.md T8 at CI size), on PostgreSQL and MariaDB.
 *
 * Relay faults: producers append straight to the database (rolling back a tenth of their
 * transactions), while the relay's pool goes through a fault proxy (test/helpers/tcp-proxy.ts):
 * - `reset`: every connection reset about once a second for 8 s;
 * - `blackhole`: every connection silently half-open for 5 s (pg-boss style), then healed, with
 *   the driver limits the relay's docs recommend (pg `query_timeout`, `connectionTimeoutMillis`;
 *   mysql2 `connectTimeout`);
 * - `blackhole-driver-defaults`: the same with the drivers' defaults, so only the relay's own
 *   `storeTimeoutMs` gets it out (reports how many pool connections stay stuck);
 * - `latency`: 200 ± 100 ms each way for 5 s.
 * Each asserts lost 0, phantom 0 (nothing rolled back published), per-key order of first
 * deliveries with no gaps, that the relay resumed by itself after the fault, and that the relay's
 * logs never contain the password of the (password-bearing) PostgreSQL URL it connects with.
 *
 * Commit-ack loss: producers go through the proxy and run units of work (a domain row plus an
 * outbox row; PostgresUnitOfWork on PostgreSQL, MysqlUnitOfWork on MariaDB). The proxy hits a
 * share of their COMMITs: forwarded but the reply lost (the server commits, the client sees an
 * error), or never forwarded (the server rolls back). Afterwards domain row ⇔ outbox row for every
 * unit, and the relay publishes exactly the committed ones.
 *
 * One JSON line per store and fault. SWITCHYARD_CHAOS_SCALE multiplies durations and counts;
 * SWITCHYARD_CHAOS_SEED fixes keys, rollbacks, fault timing and which COMMITs are hit.
 * SWITCHYARD_T8_STORE_TIMEOUT_MS overrides the relay's `storeTimeoutMs` (3000 here): 0 shows the
 * liveness gap the option closes (`blackhole-driver-defaults` then never resumes).
 */
import { randomBytes, randomUUID } from 'node:crypto'
import { inspect } from 'node:util'
import mysql from 'mysql2/promise'
import pg from 'pg'
import { afterAll, describe, expect, inject, it } from 'vitest'
import {
  AggregateRoot,
  decodeEnvelope,
  defineEvent,
  type Event,
  type OutboxAppend,
  type OutboxMaintenance,
  OutboxRelay,
  type OutboxStore,
  OutboxWriter,
  type Publisher,
  type SqlExecutor,
  TrackingRepository,
} from '../../../src/index.js'
import { fromMysql2, MysqlOutboxStore, MysqlUnitOfWork } from '../../../src/mysql/index.js'
import {
  type PgPool,
  PostgresOutboxStore,
  PostgresUnitOfWork,
} from '../../../src/postgres/index.js'
import { RecordingLogger } from '../../../src/testing/index.js'
import { createMysqlPool } from '../../helpers/mysql.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'
import { TcpProxy } from '../../helpers/tcp-proxy.js'
import { random } from '../../helpers/crash-harness.js'

const services = inject('services')
const pgUrl = services.postgres ?? null
const mysqlUrl = services.mysql ?? null
const pgPool = pgUrl === null ? undefined : createPool(pgUrl)
const mysqlPool = mysqlUrl === null ? undefined : createMysqlPool(mysqlUrl)
afterAll(async () => {
  await pgPool?.end()
  await mysqlPool?.end()
})

const scale = Number(process.env.SWITCHYARD_CHAOS_SCALE ?? 1)
const seed = Number(process.env.SWITCHYARD_CHAOS_SEED ?? Date.now() % 100_000)
const KEYS = 40
const PRODUCERS = 2
const RESET_FOR_MS = 8000 * scale
const BLACKHOLE_MS = 5000 * scale
const LATENCY_FOR_MS = 5000 * scale
const UNITS = 80 * scale
/** Generous liveness deadline for draining the backlog after a fault (not a performance bar). */
const DRAIN_DEADLINE_MS = 60_000 * scale
const TEST_TIMEOUT = 150_000 * scale

/** The relay's settings in every scenario. */
const RELAY = {
  batchSize: 50,
  leaseMs: 5000,
  publishTimeoutMs: 1000,
  storeTimeoutMs: Number(process.env.SWITCHYARD_T8_STORE_TIMEOUT_MS ?? 3000),
  pollIntervalMs: 100,
  backoff: { initialDelay: 50, maxDelay: 500 },
} as const

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves with `promise`, or with `fallback` after `ms` (for cleanup that may hang on purpose). */
const within = <T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> =>
  Promise.race([promise.catch(() => fallback), sleep(ms).then(() => fallback)])

/** Everything the logger saw, as text: messages, fields, errors with stacks and causes. */
const logText = (logger: RecordingLogger): string =>
  logger.entries
    .map(
      (e) => `${e.level} ${e.message ?? ''} ${inspect(e.fields, { depth: 12, showHidden: true })}`,
    )
    .join('\n')

type Driver = 'tuned' | 'defaults'
interface Row {
  readonly id: string
  readonly key: string | null
  readonly keySeq: number | null
  readonly state: string
}

/** One store under test: the relay's side through the proxy, the producers' side straight. */
interface Setup {
  readonly relayStore: OutboxStore & OutboxMaintenance
  /** Appends in one transaction on a direct connection; `rollback` throws after appending. */
  append(records: readonly OutboxAppend[], rollback: boolean): Promise<void>
  rows(): Promise<Row[]>
  /** Connections of the relay's pool: open in total, idle, checked out. */
  relayPoolStats(): { total: number; idle: number; busy: number }
  close(): Promise<void>
}

interface Target {
  readonly store: 'postgres' | 'mariadb'
  readonly protocol: 'postgres' | 'mysql'
  readonly url: string | null
  /** The URL the relay uses (PostgreSQL: with a canary password, which trust auth ignores). */
  relayUrl(proxy: TcpProxy): string
  /** The password that must never appear in logs, when the URL has one. */
  readonly canary: string | undefined
  setup(relayUrl: string, driver: Driver): Promise<Setup>
}

const canary = `canary-${randomBytes(6).toString('hex')}`

const postgres: Target = {
  store: 'postgres',
  protocol: 'postgres',
  url: pgUrl,
  canary,
  relayUrl(proxy) {
    const url = new URL(proxy.url(pgUrl!))
    url.password = canary
    return url.toString()
  },
  async setup(relayUrl, driver) {
    const direct = pgPool!
    const schema = uniqueSchema('sy_t8')
    const producerStore = new PostgresOutboxStore({ pool: direct, schema })
    await producerStore.ensureSchema()
    const relayPool = new pg.Pool({
      connectionString: relayUrl,
      max: 10,
      ...(driver === 'tuned'
        ? { query_timeout: 2000, connectionTimeoutMillis: 2000, keepAlive: true }
        : {}),
    })
    relayPool.on('error', () => undefined) // idle clients die with the proxy's resets
    return {
      relayStore: new PostgresOutboxStore({ pool: relayPool, schema }),
      append: (records, rollback) =>
        inTransaction(direct, async (tx) => {
          await producerStore.append(tx, records)
          if (rollback) throw new Error('rolled back on purpose')
        }),
      rows: async () =>
        (
          await direct.query<{
            id: string
            key: string | null
            key_seq: string | null
            state: string
          }>(`SELECT id, key, key_seq, state FROM "${schema}".outbox`)
        ).rows.map((r) => ({
          id: r.id,
          key: r.key,
          keySeq: r.key_seq === null ? null : Number(r.key_seq),
          state: r.state,
        })),
      relayPoolStats: () => ({
        total: relayPool.totalCount,
        idle: relayPool.idleCount,
        busy: relayPool.totalCount - relayPool.idleCount,
      }),
      close: async () => {
        await within(relayPool.end(), 5000, undefined)
        await direct.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      },
    }
  },
}

const mariadb: Target = {
  store: 'mariadb',
  protocol: 'mysql',
  url: mysqlUrl,
  canary: undefined, // root has no password here
  relayUrl: (proxy) => proxy.url(mysqlUrl!),
  async setup(relayUrl, driver) {
    const direct = mysqlPool!
    const database = uniqueSchema('sy_t8')
    await direct.query(`CREATE DATABASE \`${database}\``)
    const producerStore = new MysqlOutboxStore({ pool: direct, database })
    await producerStore.ensureSchema()
    const relayPool = mysql.createPool({
      uri: relayUrl,
      connectionLimit: 10,
      supportBigNumbers: true,
      ...(driver === 'tuned' ? { connectTimeout: 2000, enableKeepAlive: true } : {}),
    })
    const internals = (
      relayPool as unknown as {
        pool: { _allConnections: { length: number }; _freeConnections: { length: number } }
      }
    ).pool
    return {
      relayStore: new MysqlOutboxStore({ pool: relayPool, database }),
      append: async (records, rollback) => {
        const connection = await direct.getConnection()
        try {
          await connection.beginTransaction()
          await producerStore.append(fromMysql2(connection), records)
          if (rollback) throw new Error('rolled back on purpose')
          await connection.commit()
        } catch (error) {
          await connection.rollback().catch(() => undefined)
          throw error
        } finally {
          connection.release()
        }
      },
      rows: async () => {
        const [rows] = await direct.query(
          `SELECT id, msg_key, key_seq, state FROM \`${database}\`.outbox`,
        )
        // Ids and keys are VARBINARY: UTF-8 bytes.
        return (
          rows as {
            id: Buffer
            msg_key: Buffer | null
            key_seq: string | number | null
            state: string
          }[]
        ).map((r) => ({
          id: r.id.toString('utf8'),
          key: r.msg_key === null ? null : r.msg_key.toString('utf8'),
          keySeq: r.key_seq === null ? null : Number(r.key_seq),
          state: r.state,
        }))
      },
      relayPoolStats: () => {
        const total = internals._allConnections.length
        const idle = internals._freeConnections.length
        return { total, idle, busy: total - idle }
      },
      close: async () => {
        await within(relayPool.end(), 5000, undefined)
        await direct.query(`DROP DATABASE IF EXISTS \`${database}\``)
      },
    }
  },
}

type Fault = 'reset' | 'blackhole' | 'blackhole-driver-defaults' | 'latency'

/** Runs one relay fault scenario and returns its report (asserted by the caller). */
async function relayFault(target: Target, fault: Fault) {
  const rng = random(seed + fault.length * 7919 + (target.store === 'postgres' ? 0 : 104_729))
  const proxy = await TcpProxy.start({
    upstream: target.url!,
    protocol: target.protocol,
    random: rng,
  })
  const setup = await target.setup(
    target.relayUrl(proxy),
    fault === 'blackhole-driver-defaults' ? 'defaults' : 'tuned',
  )
  const started = Date.now()
  const published: { id: string; at: number }[] = []
  const publisher: Publisher = {
    publish: async (_topic, messages) => {
      const at = Date.now()
      for (const m of messages) published.push({ id: m.id, at })
    },
    close: async () => undefined,
  }
  const logger = new RecordingLogger('debug')
  const relay = new OutboxRelay({ ...RELAY, store: setup.relayStore, publisher, logger })
  const acked = new Set<string>()
  const rolledBack = new Set<string>()
  let producerErrors = 0
  let producing = true
  const producers = Array.from({ length: PRODUCERS }, async () => {
    while (producing) {
      const records = Array.from({ length: 1 + Math.floor(rng() * 3) }, () => {
        const key = `k${Math.floor(rng() * KEYS)}`
        return {
          id: randomUUID(),
          topic: 't8',
          key,
          type: 'T8',
          body: Buffer.from(JSON.stringify({ key })),
        }
      })
      const rollback = rng() < 0.1
      try {
        await setup.append(records, rollback)
        for (const r of records) acked.add(r.id)
      } catch {
        if (rollback) for (const r of records) rolledBack.add(r.id)
        else producerErrors++
      }
      await sleep(5 + rng() * 15)
    }
  })
  let faultStart = 0
  let faultEnd = 0
  try {
    relay.start()
    await sleep(1000)
    faultStart = Date.now()
    switch (fault) {
      case 'reset': {
        while (Date.now() - faultStart < RESET_FOR_MS) {
          await sleep(700 + rng() * 600)
          proxy.cut()
        }
        break
      }
      case 'blackhole':
      case 'blackhole-driver-defaults': {
        proxy.blackhole()
        await sleep(BLACKHOLE_MS)
        proxy.heal()
        break
      }
      case 'latency': {
        proxy.latency(200, 100)
        await sleep(LATENCY_FOR_MS)
        proxy.latency(0)
        break
      }
    }
    faultEnd = Date.now()
    await sleep(1000) // producers go on a little after the fault
  } finally {
    producing = false
    await Promise.all(producers)
  }
  // Drain: every committed row published (the relay alone; the test only watches).
  let rows: Row[] = []
  const drainDeadline = Date.now() + DRAIN_DEADLINE_MS
  const publishedIds = (): Set<string> => new Set(published.map((p) => p.id))
  for (;;) {
    rows = await setup.rows()
    const seen = publishedIds()
    if (rows.every((r) => r.state === 'published' && seen.has(r.id))) break
    if (Date.now() > drainDeadline) break
    await sleep(200)
  }
  const poolAfterDrain = setup.relayPoolStats()
  await relay.stop()
  const drainedAt = Date.now()

  // The checker.
  const committed = new Map(rows.map((r) => [r.id, r]))
  const seen = publishedIds()
  const lost = [...committed.keys()].filter((id) => !seen.has(id)).length
  const phantom = [...seen].filter((id) => !committed.has(id)).length
  const rolledBackPublished = [...rolledBack].filter((id) => seen.has(id)).length
  const ackedMissing = [...acked].filter((id) => !committed.has(id)).length
  const firstSeqs = new Map<string, number[]>()
  const first = new Set<string>()
  for (const { id } of published) {
    if (first.has(id)) continue
    first.add(id)
    const row = committed.get(id)
    if (row === undefined || row.key === null || row.keySeq === null) continue
    const list = firstSeqs.get(row.key) ?? []
    list.push(row.keySeq)
    firstSeqs.set(row.key, list)
  }
  let orderViolations = 0
  let gaps = 0
  for (const list of firstSeqs.values()) {
    if (list.some((s, i) => i > 0 && s <= list[i - 1]!)) orderViolations++
    const sorted = [...list].sort((a, b) => a - b)
    if (sorted.some((s, i) => s !== i + 1)) gaps++
  }
  const afterFault = published.find((p) => p.at >= faultEnd)
  let maxStall = 0
  let last = faultStart
  for (const { at } of published) {
    if (at < faultStart) continue
    maxStall = Math.max(maxStall, at - last)
    last = at
  }
  const text = logText(logger)
  const errorsLogged = logger.entries.filter((e) => e.level === 'error' || e.level === 'warn')
  const report = {
    test: 'T8',
    store: target.store,
    fault,
    seed,
    scale,
    committed: committed.size,
    acked: acked.size,
    acked_missing: ackedMissing,
    rolled_back: rolledBack.size,
    producer_errors: producerErrors,
    published: published.length,
    published_unique: seen.size,
    lost,
    phantom,
    rolled_back_published: rolledBackPublished,
    dup_publishes: published.length - seen.size,
    order_violations: orderViolations,
    gaps,
    published_during_fault: published.filter((p) => p.at >= faultStart && p.at < faultEnd).length,
    resume_ms: afterFault === undefined ? null : afterFault.at - faultEnd,
    max_stall_ms: maxStall,
    drain_ms: drainedAt - faultEnd,
    relay_log_errors: errorsLogged.length,
    store_timeouts: errorsLogged.filter(
      (e) =>
        (e.fields.err as { details?: { timeoutMs?: unknown } } | undefined)?.details?.timeoutMs,
    ).length,
    credential_leaks: target.canary === undefined ? null : text.split(target.canary).length - 1,
    relay_pool_after_drain: poolAfterDrain,
    proxy: proxy.stats(),
    duration_ms: drainedAt - started,
  }
  console.log(JSON.stringify(report))
  await proxy.close()
  await setup.close()
  return report
}

// ---------------------------------------------------------------------------------------------
// Commit-ack loss: units of work through the proxy.

const OrderPlaced = defineEvent<{ orderId: string; key: string }>('OrderPlaced', {
  topic: 't8-orders',
  key: (p) => p.key,
})

class Order extends AggregateRoot<Event> {
  constructor(
    readonly id: string,
    readonly key: string,
  ) {
    super()
    this.record(OrderPlaced({ orderId: id, key }))
  }
}

/** Inserts orders inside the unit of work's transaction. */
class OrderRepository extends TrackingRepository<Order, string> {
  constructor(
    private readonly tx: SqlExecutor,
    /** `INSERT INTO … (id, k) VALUES (…)` in the dialect's placeholders. */
    private readonly insertSql: string,
  ) {
    super()
  }
  protected idOf(order: Order): string {
    return order.id
  }
  protected async load(): Promise<Order | undefined> {
    return undefined
  }
  protected async insert(order: Order): Promise<void> {
    await this.tx.query(this.insertSql, [order.id, order.key])
  }
}

interface UnitsSetup {
  /** Runs one unit of work through the proxy: a domain row and its event, committed together. */
  unit(order: Order): Promise<void>
  domainIds(): Promise<Set<string>>
  /** Outbox rows: message id and the order id in its payload. */
  outbox(): Promise<{ id: string; orderId: string }[]>
  /** A store on a direct connection, for the relay. */
  readonly relayStore: OutboxStore
  /** Connection errors emitted while a unit of work held the connection, with no library listener. */
  readonly unhandledClientErrors: () => number
  close(): Promise<void>
}

/**
 * pg-pool takes its error listener off a client while the client is checked out: a connection
 * reset while a unit of work holds the client emits an 'error' that, unheard, kills the process
 * (found by this test; PostgresUnitOfWork now listens while it holds the client). The producers'
 * pool adds a listener to each client it hands out and counts the errors only it heard
 * (`uow_client_errors_unhandled_by_library`, which must be 0).
 */
function guardClientErrors(pool: pg.Pool): { pool: PgPool; unhandled: () => number } {
  let unhandled = 0
  const guarded = new WeakSet<pg.PoolClient>()
  return {
    unhandled: () => unhandled,
    pool: {
      query: (text, values) => pool.query(text, values),
      connect: async () => {
        const client = await pool.connect()
        if (!guarded.has(client)) {
          guarded.add(client)
          client.on('error', () => {
            if (client.listenerCount('error') === 1) unhandled++
          })
        }
        return client
      },
    },
  }
}

const source = '/t8'
const writerFor = (store: OutboxStore) => new OutboxWriter({ store, events: [OrderPlaced], source })
const orderIdOf = (body: Uint8Array): string =>
  (decodeEnvelope(body).message.payload as { orderId: string }).orderId

async function pgUnits(proxy: TcpProxy): Promise<UnitsSetup> {
  const direct = pgPool!
  const schema = uniqueSchema('sy_t8c')
  const store = new PostgresOutboxStore({ pool: direct, schema })
  await store.ensureSchema()
  const table = `"${schema}".orders`
  await direct.query(`CREATE TABLE ${table} (id text PRIMARY KEY, k text NOT NULL)`)
  const producers = new pg.Pool({ connectionString: proxy.url(pgUrl!), max: 4 })
  producers.on('error', () => undefined)
  const guard = guardClientErrors(producers)
  const outbox = writerFor(store)
  return {
    unit: async (order) => {
      const uow = await PostgresUnitOfWork.begin({
        pool: guard.pool,
        outbox,
        repositories: (tx) => ({
          orders: new OrderRepository(tx, `INSERT INTO ${table} (id, k) VALUES ($1, $2)`),
        }),
      })
      await uow.transaction(async (work) => {
        await work.repositories.orders.add(order)
      })
    },
    domainIds: async () =>
      new Set(
        (await direct.query<{ id: string }>(`SELECT id FROM ${table}`)).rows.map((r) => r.id),
      ),
    outbox: async () =>
      (
        await direct.query<{ id: string; body: Buffer }>(`SELECT id, body FROM "${schema}".outbox`)
      ).rows.map((r) => ({ id: r.id, orderId: orderIdOf(r.body) })),
    relayStore: store,
    unhandledClientErrors: guard.unhandled,
    close: async () => {
      await within(producers.end(), 5000, undefined)
      await direct.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    },
  }
}

async function mysqlUnits(proxy: TcpProxy): Promise<UnitsSetup> {
  const direct = mysqlPool!
  const database = uniqueSchema('sy_t8c')
  await direct.query(`CREATE DATABASE \`${database}\``)
  const store = new MysqlOutboxStore({ pool: direct, database })
  await store.ensureSchema()
  const table = `\`${database}\`.orders`
  await direct.query(`CREATE TABLE ${table} (id VARCHAR(64) PRIMARY KEY, k VARCHAR(64) NOT NULL)`)
  const producers = mysql.createPool({ uri: proxy.url(mysqlUrl!), connectionLimit: 4 })
  const outbox = writerFor(store)
  return {
    unit: async (order) => {
      const uow = await MysqlUnitOfWork.begin({
        pool: producers,
        outbox,
        repositories: (tx) => ({
          orders: new OrderRepository(tx, `INSERT INTO ${table} (id, k) VALUES (?, ?)`),
        }),
      })
      await uow.transaction(async (work) => {
        await work.repositories.orders.add(order)
      })
    },
    domainIds: async () => {
      const [rows] = await direct.query(`SELECT id FROM ${table}`)
      return new Set((rows as { id: string }[]).map((r) => r.id))
    },
    outbox: async () => {
      const [rows] = await direct.query(`SELECT id, body FROM \`${database}\`.outbox`)
      return (rows as { id: Buffer; body: Buffer }[]).map((r) => ({
        id: r.id.toString('utf8'),
        orderId: orderIdOf(r.body),
      }))
    },
    relayStore: store,
    unhandledClientErrors: () => 0, // mysql2 pool connections always listen ('error' removes them)
    close: async () => {
      await within(producers.end(), 5000, undefined)
      await direct.query(`DROP DATABASE IF EXISTS \`${database}\``)
    },
  }
}

async function commitAckLoss(target: Target) {
  const rng = random(seed + (target.store === 'postgres' ? 31 : 37))
  const proxy = await TcpProxy.start({
    upstream: target.url!,
    protocol: target.protocol,
    random: rng,
  })
  const setup = target.store === 'postgres' ? await pgUnits(proxy) : await mysqlUnits(proxy)
  const started = Date.now()
  const outcomes = new Map<string, 'acked' | 'error'>()
  let next = 0
  const run = async (count: number): Promise<void> => {
    const worker = async (): Promise<void> => {
      while (next < count) {
        next++
        const order = new Order(randomUUID(), `k${Math.floor(rng() * KEYS)}`)
        try {
          await setup.unit(order)
          outcomes.set(order.id, 'acked')
        } catch {
          outcomes.set(order.id, 'error')
        }
      }
    }
    await Promise.all(Array.from({ length: 4 }, worker))
  }
  // First half: the COMMIT reaches the server and its reply is lost; second half: the COMMIT is lost.
  let disarm = proxy.commitFaults({ lose: 'ack', probability: 0.3 })
  await run(UNITS / 2)
  disarm()
  disarm = proxy.commitFaults({ lose: 'request', probability: 0.3 })
  await run(UNITS)
  disarm()
  const { commitAcksLost, commitsDropped } = proxy.stats()
  await proxy.close()

  const domain = await setup.domainIds()
  const outbox = await setup.outbox()
  const outboxOrders = new Set(outbox.map((r) => r.orderId))
  const errors = [...outcomes].filter(([, o]) => o === 'error').map(([id]) => id)
  const acked = [...outcomes].filter(([, o]) => o === 'acked').map(([id]) => id)
  const mismatched = [...outcomes.keys()].filter((id) => domain.has(id) !== outboxOrders.has(id))

  // The relay (direct connection, no faults) publishes exactly the committed units.
  const published: string[] = []
  const relay = new OutboxRelay({
    ...RELAY,
    store: setup.relayStore,
    publisher: {
      publish: async (_topic, messages) => void published.push(...messages.map((m) => m.id)),
      close: async () => undefined,
    },
  })
  while ((await relay.runOnce()) > 0) {
    // drain
  }
  const outboxIds = new Set(outbox.map((r) => r.id))
  const publishedSet = new Set(published)
  const report = {
    test: 'T8',
    store: target.store,
    fault: 'commit-ack-loss',
    seed,
    scale,
    units: outcomes.size,
    acked: acked.length,
    client_errors: errors.length,
    acks_lost: commitAcksLost,
    commits_dropped: commitsDropped,
    committed_despite_error: errors.filter((id) => domain.has(id)).length,
    rolled_back_on_error: errors.filter((id) => !domain.has(id)).length,
    acked_missing: acked.filter((id) => !domain.has(id)).length,
    domain_rows: domain.size,
    outbox_rows: outbox.length,
    domain_outbox_mismatch: mismatched.length,
    uow_client_errors_unhandled_by_library: setup.unhandledClientErrors(),
    published: published.length,
    published_not_in_outbox: published.filter((id) => !outboxIds.has(id)).length,
    outbox_not_published: [...outboxIds].filter((id) => !publishedSet.has(id)).length,
    duration_ms: Date.now() - started,
  }
  console.log(JSON.stringify(report))
  await setup.close()
  return report
}

for (const target of [postgres, mariadb]) {
  const missing = target.store === 'postgres' ? pgPool === undefined : mysqlPool === undefined
  describe.skipIf(missing)(`T8 database connection faults on ${target.store}`, () => {
    for (const fault of ['reset', 'blackhole', 'blackhole-driver-defaults', 'latency'] as const) {
      it(
        `${fault}: no row lost or invented, keys in order, and the relay resumes by itself`,
        async () => {
          const r = await relayFault(target, fault)
          expect(r.committed).toBeGreaterThan(0)
          expect(r.lost).toBe(0)
          expect(r.phantom).toBe(0)
          expect(r.rolled_back_published).toBe(0)
          expect(r.acked_missing).toBe(0)
          expect(r.order_violations).toBe(0)
          expect(r.gaps).toBe(0)
          expect(r.resume_ms).not.toBeNull()
          expect(r.credential_leaks ?? 0).toBe(0)
        },
        TEST_TIMEOUT,
      )
    }

    it(
      'commit-ack loss: the client sees an error, domain row ⇔ outbox row, and the relay publishes exactly those',
      async () => {
        const r = await commitAckLoss(target)
        expect(r.acks_lost).toBeGreaterThan(0)
        expect(r.commits_dropped).toBeGreaterThan(0)
        expect(r.client_errors).toBe(r.acks_lost + r.commits_dropped)
        expect(r.committed_despite_error).toBe(r.acks_lost)
        expect(r.acked_missing).toBe(0)
        expect(r.domain_outbox_mismatch).toBe(0)
        expect(r.uow_client_errors_unhandled_by_library ?? 0).toBe(0)
        expect(r.outbox_rows).toBe(r.domain_rows)
        expect(r.published_not_in_outbox).toBe(0)
        expect(r.outbox_not_published).toBe(0)
        expect(r.published).toBe(r.outbox_rows)
      },
      TEST_TIMEOUT,
    )
  })
}
