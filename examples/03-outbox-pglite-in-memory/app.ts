/**
 * The wiring: an in-memory PGlite database holding the products and the outbox, a repository over
 * its tables, a bus whose handlers each get their own PgliteUnitOfWork (a `transient` dependency)
 * with the OutboxWriter attached, and a relay from the outbox to the in-memory transport.
 */
import { PGlite } from '@electric-sql/pglite'
import {
  ConcurrencyError,
  correlation,
  InMemoryTransport,
  MessageBus,
  OutboxRelay,
  type OutboxRelayOptions,
  type OutboxStatus,
  OutboxWriter,
  type SqlExecutor,
  TrackingRepository,
  transient,
} from 'switchyard-bus'
import { PgliteOutboxStore, PgliteUnitOfWork } from 'switchyard-bus/pglite'
import { AddBatch, Allocate, Allocated, GetAllocations, LowStock, Product } from './domain.js'

/** The business tables; the outbox's own tables are made by `store.ensureSchema()`. */
const SCHEMA = `
  CREATE TABLE products (sku text PRIMARY KEY, version int NOT NULL);
  CREATE TABLE batches (
    seq       int GENERATED ALWAYS AS IDENTITY,
    ref       text PRIMARY KEY,
    sku       text NOT NULL REFERENCES products (sku),
    available int NOT NULL CHECK (available >= 0)
  );
  CREATE TABLE allocations_view (
    order_id  text NOT NULL,
    sku       text NOT NULL,
    batch_ref text NOT NULL,
    PRIMARY KEY (order_id, sku)
  );
`

/** Products and their batches, read and written through the unit of work's transaction. */
export class ProductRepository extends TrackingRepository<Product, string> {
  constructor(private readonly tx: SqlExecutor) {
    super()
  }

  protected idOf(product: Product): string {
    return product.sku
  }

  protected async load(sku: string): Promise<Product | undefined> {
    const { rows } = await this.tx.query<{ version: number }>(
      'SELECT version FROM products WHERE sku = $1',
      [sku],
    )
    if (rows[0] === undefined) return undefined
    const batches = await this.tx.query<{ ref: string; available: number }>(
      'SELECT ref, available FROM batches WHERE sku = $1 ORDER BY seq',
      [sku],
    )
    return Object.assign(new Product(sku, batches.rows), { version: rows[0].version })
  }

  protected async insert(): Promise<void> {} // new products are written by flush()

  /** Saves every product this unit of work saw, checking that nobody changed it meanwhile. */
  async flush(): Promise<void> {
    for (const product of this.seen) {
      if (product.version === 0) {
        await this.tx.query('INSERT INTO products (sku, version) VALUES ($1, 1)', [product.sku])
      } else {
        // PGlite runs one transaction at a time, so this never fails here; it would on PostgreSQL.
        const { rowCount } = await this.tx.query(
          'UPDATE products SET version = version + 1 WHERE sku = $1 AND version = $2',
          [product.sku, product.version],
        )
        if (rowCount !== 1)
          throw new ConcurrencyError(`Product ${product.sku} changed since it was loaded`)
      }
      for (const batch of product.batches) {
        await this.tx.query(
          `INSERT INTO batches (ref, sku, available) VALUES ($1, $2, $3)
           ON CONFLICT (ref) DO UPDATE SET available = EXCLUDED.available`,
          [batch.ref, product.sku, batch.available],
        )
      }
    }
  }
}

export interface Deps {
  uow: PgliteUnitOfWork<{ products: ProductRepository }>
}

export interface AppOptions {
  /** Told of each LowStock event, an in-process event. Default: nothing. */
  readonly notify?: (text: string) => void
}

/** Makes the database (in memory), its tables, the outbox, the bus and its handlers. */
export async function createApp(options: AppOptions = {}) {
  const notify = options.notify ?? (() => undefined)
  const db = new PGlite() // in memory; new PGlite('./data') would keep a data directory
  const store = new PgliteOutboxStore({ db })
  await store.ensureSchema()
  await db.exec(SCHEMA)

  // Integration events (defined with a topic) are appended to the outbox inside the unit of
  // work's transaction, at commit: stored if and only if the business change is.
  const outbox = new OutboxWriter({ store, events: [Allocated], source: '/allocation' })
  const bus = new MessageBus<Deps>({
    dependencies: {
      // One unit of work, so one PGlite transaction, per handler invocation.
      uow: transient(() =>
        PgliteUnitOfWork.begin({
          db,
          outbox,
          repositories: (tx) => ({ products: new ProductRepository(tx) }),
        }),
      ),
    },
    // Events the aggregate records are linked to the command as they are created, so the outbox
    // (which encodes them before the commit) sends the command's correlation and causation ids.
    middleware: [correlation()],
  })

  bus.handle(
    AddBatch,
    async (cmd, { deps: { uow } }) => {
      const { ref, sku, qty } = cmd.payload
      const product = (await uow.repositories.products.get(sku)) ?? new Product(sku)
      if (product.version === 0) await uow.repositories.products.add(product)
      product.addBatch(ref, qty)
      await uow.commit()
    },
    { deps: ['uow'] },
  )

  bus.handle(
    Allocate,
    async (cmd, { deps: { uow } }) => {
      const product = await uow.repositories.products.get(cmd.payload.sku)
      if (product === undefined) throw new Error(`Invalid sku ${cmd.payload.sku}`)
      // Throws OutOfStock before the commit: the bus rolls the unit of work back.
      const batchRef = product.allocate(cmd.payload.orderId, cmd.payload.qty)
      await uow.commit() // the product, and the Allocated row in the outbox, in one transaction
      return batchRef
    },
    { deps: ['uow'] },
  )

  // In-process handlers run as soon as the command committed, before `execute` resolves.
  bus.handle(
    Allocated,
    async (event, { deps: { uow } }) => {
      const { orderId, sku, batchRef } = event.payload
      await uow.tx.query(
        'INSERT INTO allocations_view (order_id, sku, batch_ref) VALUES ($1, $2, $3)',
        [orderId, sku, batchRef],
      )
      await uow.commit()
    },
    { deps: ['uow'] },
  )
  bus.handle(LowStock, (event) =>
    notify(`low stock: ${event.payload.sku}, ${event.payload.left} left`),
  )

  bus.handle(GetAllocations, async (query) => {
    const { rows } = await db.query<{ batch_ref: string }>(
      'SELECT batch_ref FROM allocations_view WHERE order_id = $1 ORDER BY sku',
      [query.payload.orderId],
    )
    return rows.map((r) => r.batch_ref)
  })

  const transport = new InMemoryTransport()

  return {
    db,
    bus,
    store,
    transport,

    /**
     * A relay from the outbox to the in-memory transport. It polls every 50 ms (the default is
     * 1 s): each round publishes only the oldest row of each key, so a key with three rows
     * waiting takes three rounds.
     */
    relay(relayOptions: Omit<OutboxRelayOptions, 'store' | 'publisher'> = {}): OutboxRelay {
      return new OutboxRelay({ store, publisher: transport, pollIntervalMs: 50, ...relayOptions })
    },

    /** Units left in the product's batches, as stored. */
    async stock(sku: string): Promise<number> {
      const { rows } = await db.query<{ available: number }>(
        'SELECT coalesce(sum(available), 0)::int AS available FROM batches WHERE sku = $1',
        [sku],
      )
      return rows[0]?.available ?? 0
    },

    /** The outbox rows, oldest first (the table `store.ensureSchema()` made). */
    async outboxRows(): Promise<{ key: string; keySeq: number; type: string; state: string }[]> {
      const { rows } = await db.query<{ key: string; keySeq: number; type: string; state: string }>(
        'SELECT key, key_seq::int AS "keySeq", type, state FROM switchyard.outbox ORDER BY seq',
      )
      return rows
    },

    /** Stop relays first; then this closes the bus and the database. */
    async close(): Promise<void> {
      await bus.close()
      await transport.close()
      await db.close()
    },
  }
}

export type App = Awaited<ReturnType<typeof createApp>>

/** Waits until the outbox has nothing left to publish (no pending or in-flight rows). */
export async function waitForEmptyOutbox(
  store: PgliteOutboxStore,
  timeoutMs = 10_000,
): Promise<OutboxStatus> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await store.status()
    if (status.pending + status.inflight === 0) return status
    if (Date.now() > deadline)
      throw new Error(`the outbox still has ${status.pending + status.inflight} rows to publish`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}
