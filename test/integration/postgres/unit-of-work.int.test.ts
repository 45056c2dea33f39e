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
  type SqlExecutor,
  TrackingRepository,
  transient,
} from '../../../src/index.js'
import { PostgresOutboxStore, PostgresUnitOfWork } from '../../../src/postgres/index.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
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
  ) {
    super()
  }
  protected idOf(p: Product): string {
    return p.sku
  }
  protected async load(sku: string): Promise<Product | undefined> {
    const { rows } = await this.tx.query<{ sku: string; available: number; version: number }>(
      `SELECT sku, available, version FROM ${this.table} WHERE sku = $1`,
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
        `UPDATE ${this.table} SET available = $1, version = version + 1 WHERE sku = $2 AND version = $3`,
        [p.available, p.sku, p.version],
      )
      if (rowCount !== 1) throw new ConcurrencyError(`Product ${p.sku} changed since it was loaded`)
    }
  }
}

describe.skipIf(pool === undefined)('PostgresUnitOfWork with the outbox', () => {
  let schema: string
  let table: string
  let store: PostgresOutboxStore
  let bus: MessageBus<{ uow: PostgresUnitOfWork<{ products: ProductRepository }> }>
  const inProcess: Event[] = []

  beforeEach(async () => {
    schema = uniqueSchema()
    table = `"${schema}".products`
    store = new PostgresOutboxStore({ pool: pool!, schema })
    await store.ensureSchema()
    await pool!.query(
      `CREATE TABLE ${table} (sku text PRIMARY KEY, available int NOT NULL, version int NOT NULL DEFAULT 1)`,
    )
    await pool!.query(`INSERT INTO ${table} (sku, available) VALUES ('LAMP', 10)`)
    const outbox = new OutboxWriter({ store, events: [Allocated], source: '/allocation' })
    bus = new MessageBus({
      dependencies: {
        uow: transient(() =>
          PostgresUnitOfWork.begin({
            pool: pool!,
            outbox,
            repositories: (tx) => ({ products: new ProductRepository(tx, table) }),
          }),
        ),
      },
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
    await bus.close()
    await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })

  const available = async (): Promise<number> =>
    (await pool!.query<{ available: number }>(`SELECT available FROM ${table}`)).rows[0]!.available

  it('commits the business change and its integration events together; the relay publishes them with their key', async () => {
    await expect(bus.execute(Allocate({ sku: 'LAMP', orderId: 'o1', qty: 8 }))).resolves.toBe(2)
    expect(await available()).toBe(2)
    expect(inProcess.map((e) => e.type)).toEqual(['Allocated', 'LowStock'])
    const transport = new InMemoryTransport()
    await new OutboxRelay({ store, publisher: transport }).runOnce()
    const published = transport.published('allocation')
    expect(published).toHaveLength(1) // LowStock has no topic: in process only
    expect(published[0]!.key).toBe('LAMP')
    expect(decodeEnvelope(published[0]!.body).message).toMatchObject({
      id: inProcess[0]!.id,
      type: 'Allocated',
      payload: { orderId: 'o1' },
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
          PostgresUnitOfWork.begin({
            pool: pool!,
            outbox: new OutboxWriter({ store, events: [Allocated], source: '/allocation' }),
            repositories: (tx) => ({ products: new ProductRepository(tx, table) }),
          }),
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
