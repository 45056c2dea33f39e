/**
 * The database units of work (PostgreSQL, PGlite, MariaDB) with the outbox: the same scenarios on
 * each, through the bus, on a real database.
 */
import { PGlite } from '@electric-sql/pglite'
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import {
  AggregateRoot,
  ConcurrencyError,
  decodeEnvelope,
  defineCommand,
  defineEvent,
  type Event,
  InMemoryTransport,
  MessageBus,
  OutboxRelay,
  OutboxWriter,
  retry,
  type OutboxMaintenance,
  type OutboxStore,
  type SqlExecutor,
  type SqlUnitOfWork,
  TrackingRepository,
  transient,
} from '../../src/index.js'
import { MysqlOutboxStore, MysqlUnitOfWork } from '../../src/mysql/index.js'
import { fromPglite, PgliteOutboxStore, PgliteUnitOfWork } from '../../src/pglite/index.js'
import { fromPg, PostgresOutboxStore, PostgresUnitOfWork } from '../../src/postgres/index.js'
import { createMysqlPool } from '../helpers/mysql.js'
import { createPool, uniqueSchema } from '../helpers/postgres.js'

const services = inject('services')
const pgPool = services.postgres ? createPool(services.postgres) : undefined
const mysqlPool = services.mysql ? createMysqlPool(services.mysql) : undefined
const pglite = new PGlite()
afterAll(async () => {
  await Promise.all([pgPool?.end(), mysqlPool?.end(), pglite.close()])
})

const Allocate = defineCommand('Allocate')
  .withPayload<{ sku: string; orderId: string; qty: number }>()
  .returns<number>()
const Allocated = defineEvent<{ sku: string; orderId: string; qty: number }>('Allocated', {
  topic: 'allocation',
  key: (p) => p.sku,
})
const LowStock = defineEvent<{ sku: string }>('LowStock') // in process only: no topic

class Product extends AggregateRoot<Event> {
  constructor(
    readonly sku: string,
    public available: number,
  ) {
    super()
  }
  allocate(orderId: string, qty: number): number {
    if (qty > this.available) throw new Error(`out of stock: ${this.sku}`)
    this.available -= qty
    this.record(Allocated({ sku: this.sku, orderId, qty }))
    if (this.available < 3) this.record(LowStock({ sku: this.sku }))
    return this.available
  }
}

/** A repository over a plain table, with an optimistic version check on flush. */
class ProductRepository extends TrackingRepository<Product, string> {
  constructor(
    private readonly tx: SqlExecutor,
    private readonly table: string,
    /** The placeholder of the nth parameter: `$n` on PostgreSQL, `?` on MariaDB. */
    private readonly p: (n: number) => string,
  ) {
    super()
  }
  protected idOf(p: Product): string {
    return p.sku
  }
  protected async load(sku: string): Promise<Product | undefined> {
    const { rows } = await this.tx.query<{ sku: string; available: number; version: number }>(
      `SELECT sku, available, version FROM ${this.table} WHERE sku = ${this.p(1)}`,
      [sku],
    )
    const row = rows[0]
    if (row === undefined) return undefined
    return Object.assign(new Product(row.sku, row.available), { version: row.version })
  }
  protected async insert(): Promise<void> {}
  async flush(): Promise<void> {
    for (const p of this.seen) {
      const { rowCount } = await this.tx.query(
        `UPDATE ${this.table} SET available = ${this.p(1)}, version = version + 1 WHERE sku = ${this.p(2)} AND version = ${this.p(3)}`,
        [p.available, p.sku, p.version],
      )
      if (rowCount !== 1) throw new ConcurrencyError(`Product ${p.sku} changed since it was loaded`)
    }
  }
}

type Products = { products: ProductRepository }
type Begin = (outbox: OutboxWriter) => Promise<SqlUnitOfWork<Products>>

/** One database: a fresh products table and outbox, a way to begin units of work on it, cleanup. */
interface Fixture {
  readonly store: OutboxStore & OutboxMaintenance
  readonly begin: Begin
  /** The products' stock, read outside any unit of work. */
  available(): Promise<number>
  drop(): Promise<void>
}

const PRODUCTS_DDL =
  'sku varchar(32) PRIMARY KEY, available int NOT NULL, version int NOT NULL DEFAULT 1'

/** A fixture in the PostgreSQL dialect: on a pg pool or on PGlite, the same SQL. */
async function postgresDialect(
  db: SqlExecutor,
  makeStore: (schema: string) => OutboxStore & OutboxMaintenance,
  begin: (options: {
    outbox: OutboxWriter
    repositories: (tx: SqlExecutor) => Products
  }) => Promise<SqlUnitOfWork<Products>>,
): Promise<Fixture> {
  const schema = uniqueSchema()
  const table = `"${schema}".products`
  const store = makeStore(schema)
  await store.ensureSchema()
  await db.query(`CREATE TABLE ${table} (${PRODUCTS_DDL})`)
  await db.query(`INSERT INTO ${table} (sku, available) VALUES ('LAMP', 10)`)
  return {
    store,
    begin: (outbox) =>
      begin({
        outbox,
        repositories: (tx) => ({ products: new ProductRepository(tx, table, (n) => `$${n}`) }),
      }),
    available: async () =>
      (await db.query<{ available: number }>(`SELECT available FROM ${table}`)).rows[0]!.available,
    drop: async () => void (await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
  }
}

const databases: { name: string; available: boolean; setup: () => Promise<Fixture> }[] = [
  {
    name: 'PostgreSQL (PostgresUnitOfWork)',
    available: pgPool !== undefined,
    setup: () =>
      postgresDialect(
        fromPg(pgPool!),
        (schema) => new PostgresOutboxStore({ pool: pgPool!, schema }),
        (options) => PostgresUnitOfWork.begin({ pool: pgPool!, ...options }),
      ),
  },
  {
    name: 'PGlite (PgliteUnitOfWork)',
    available: true,
    setup: () =>
      postgresDialect(
        fromPglite(pglite),
        (schema) => new PgliteOutboxStore({ db: pglite, schema }),
        (options) => PgliteUnitOfWork.begin({ db: pglite, ...options }),
      ),
  },
  {
    name: 'MariaDB (MysqlUnitOfWork)',
    available: mysqlPool !== undefined,
    setup: async () => {
      const pool = mysqlPool!
      const database = uniqueSchema()
      const table = `\`${database}\`.products`
      await pool.query(`CREATE DATABASE \`${database}\``)
      const store = new MysqlOutboxStore({ pool, database })
      await store.ensureSchema()
      await pool.query(`CREATE TABLE ${table} (${PRODUCTS_DDL})`)
      await pool.query(`INSERT INTO ${table} (sku, available) VALUES ('LAMP', 10)`)
      return {
        store,
        begin: (outbox) =>
          MysqlUnitOfWork.begin({
            pool,
            outbox,
            repositories: (tx) => ({ products: new ProductRepository(tx, table, () => '?') }),
          }),
        available: async () => {
          const [rows] = await pool.query(`SELECT available FROM ${table}`)
          return (rows as { available: number }[])[0]!.available
        },
        drop: async () => void (await pool.query(`DROP DATABASE IF EXISTS \`${database}\``)),
      }
    },
  },
]

describe.each(databases)('$name with the outbox', ({ available: present, setup }) => {
  let db: Fixture
  let store: OutboxStore & OutboxMaintenance
  let bus: MessageBus<{ uow: SqlUnitOfWork<Products> }>
  const inProcess: Event[] = []

  beforeEach(async (context) => {
    if (!present) return context.skip()
    db = await setup()
    store = db.store
    const outbox = new OutboxWriter({ store, events: [Allocated], source: '/allocation' })
    bus = new MessageBus({
      dependencies: { uow: transient(() => db.begin(outbox)) },
      middleware: [retry({ attempts: 3, backoff: { initialDelay: 5, maxDelay: 20 } })],
    })
    bus.handle(
      Allocate,
      async (cmd, { deps: { uow } }) => {
        const product = await uow.repositories.products.get(cmd.payload.sku)
        if (product === undefined) throw new Error('no such product')
        const left = product.allocate(cmd.payload.orderId, cmd.payload.qty)
        await new Promise((resolve) => setTimeout(resolve, 5)) // let concurrent commands interleave
        await uow.commit()
        return left
      },
      { deps: ['uow'] },
    )
    inProcess.length = 0
    bus.handle(Allocated, (e) => void inProcess.push(e))
    bus.handle(LowStock, (e) => void inProcess.push(e))
  })
  afterEach(async () => {
    if (!present) return
    await bus.close()
    await db.drop()
  })

  const available = (): Promise<number> => db.available()

  it('commits the business change and its integration events together; the relay publishes them with their key', async () => {
    await expect(bus.execute(Allocate({ sku: 'LAMP', orderId: 'o1', qty: 8 }))).resolves.toBe(2)
    expect(await available()).toBe(2)
    expect(inProcess.map((e) => e.type)).toEqual(['Allocated', 'LowStock'])
    const transport = new InMemoryTransport()
    await new OutboxRelay({ store, publisher: transport }).runOnce()
    const published = transport.published('allocation')
    expect(published).toHaveLength(1) // LowStock has no topic: in process only
    expect(published[0]!.key).toBe('LAMP')
    const command = Allocate({ sku: 'LAMP', orderId: 'o2', qty: 1 })
    await bus.execute(command)
    const sent = transport.published('allocation')
    expect(decodeEnvelope(sent[0]!.body).message).toMatchObject({
      id: inProcess[0]!.id,
      type: 'Allocated',
      payload: { orderId: 'o1' },
      correlationId: inProcess[0]!.correlationId,
      causationId: inProcess[0]!.causationId,
    })
    await new OutboxRelay({ store, publisher: transport }).runOnce()
    // The stored copy carries the same links as the in-process one: caused by the command.
    expect(decodeEnvelope(sent[1]!.body).message).toMatchObject({
      payload: { orderId: 'o2' },
      correlationId: command.correlationId,
      causationId: command.id,
    })
  })

  it('stores neither the change nor its events when the handler fails', async () => {
    await expect(bus.execute(Allocate({ sku: 'LAMP', orderId: 'o1', qty: 99 }))).rejects.toThrow(
      'out of stock',
    )
    expect(await available()).toBe(10)
    expect((await store.status()).pending).toBe(0)
    expect(inProcess).toEqual([])
  })

  it('appends inside the business transaction: a commit that fails after the append leaves no outbox row', async () => {
    const Sabotage = defineCommand('Sabotage')
    bus = new MessageBus({
      dependencies: {
        uow: transient(() =>
          db.begin(new OutboxWriter({ store, events: [Allocated], source: '/allocation' })),
        ),
      },
    })
    bus.handle(
      Sabotage,
      async (_cmd, { deps: { uow } }) => {
        ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 1)
        // Runs after the outbox writer's hook, inside the same open transaction.
        uow.on('beforeCommit', () => {
          throw new Error('a later participant refused the commit')
        })
        await uow.commit()
      },
      { deps: ['uow'] },
    )
    await expect(bus.execute(Sabotage())).rejects.toThrow('a later participant refused the commit')
    expect(await available()).toBe(10)
    const status = await store.status()
    expect(status.pending + status.inflight + status.published).toBe(0)
  })

  it('re-runs a command after a version conflict; both concurrent commands land, each event once', async () => {
    const results = await Promise.all([
      bus.execute(Allocate({ sku: 'LAMP', orderId: 'o1', qty: 1 })),
      bus.execute(Allocate({ sku: 'LAMP', orderId: 'o2', qty: 1 })),
    ])
    expect(results.sort()).toEqual([8, 9])
    expect(await available()).toBe(8)
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport })
    while ((await relay.runOnce()) > 0) {
      // drain
    }
    const orders = transport
      .published('allocation')
      .map((m) => (decodeEnvelope(m.body).message.payload as { orderId: string }).orderId)
    expect(orders.sort()).toEqual(['o1', 'o2'])
  })
})

describe('PgliteUnitOfWork on the one PGlite connection', () => {
  it('runs units of work one at a time, and frees the database after commit, rollback or a failed begin', async () => {
    const first = await PgliteUnitOfWork.begin({ db: pglite, repositories: () => ({}) })
    let secondOpened = false
    const second = PgliteUnitOfWork.begin({ db: pglite, repositories: () => ({}) }).then((uow) => {
      secondOpened = true
      return uow
    })
    await first.tx.query('SELECT 1')
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(secondOpened).toBe(false) // waits for the first transaction
    await first.rollback()
    const opened = await second
    await opened.commit()
    await expect(
      PgliteUnitOfWork.begin({
        db: pglite,
        repositories: () => {
          throw new Error('no repositories today')
        },
      }),
    ).rejects.toThrow('no repositories today')
    const { rows } = await pglite.query<{ ok: number }>('SELECT 1 AS ok') // not left locked
    expect(rows).toEqual([{ ok: 1 }])
  })

  it('rolls back what a unit of work wrote when it is rolled back', async () => {
    const schema = uniqueSchema()
    await pglite.exec(`CREATE SCHEMA "${schema}"; CREATE TABLE "${schema}".t (v int)`)
    try {
      const uow = await PgliteUnitOfWork.begin({ db: pglite, repositories: () => ({}) })
      await uow.tx.query(`INSERT INTO "${schema}".t VALUES (1)`)
      await uow.rollback()
      const kept = await PgliteUnitOfWork.begin({ db: pglite, repositories: () => ({}) })
      await kept.tx.query(`INSERT INTO "${schema}".t VALUES (2)`)
      await kept.commit()
      const { rows } = await pglite.query<{ v: number }>(`SELECT v FROM "${schema}".t`)
      expect(rows).toEqual([{ v: 2 }])
    } finally {
      await pglite.query(`DROP SCHEMA "${schema}" CASCADE`)
    }
  })
})
