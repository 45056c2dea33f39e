/**
 * The allocation service: takes commands over HTTP, keeps products in PostgreSQL, and writes the
 * `Allocated` integration events to its outbox in the same transaction (a `PostgresUnitOfWork`
 * with an `OutboxWriter`). An `OutboxRelay` in the same process publishes them to RabbitMQ.
 *
 * Run: npx tsx examples/04-outbox-postgres-rabbitmq/producer.ts  (PORT, EXAMPLE_RUN optional)
 *   POST /batches      {"ref":"batch-1","sku":"LAMP","qty":10}
 *   POST /allocations  {"orderId":"order-1","sku":"LAMP","qty":4}, header x-correlation-id
 *   GET  /outbox       the outbox's status
 * SIGTERM or SIGINT stops it gracefully.
 */
import { createServer, type IncomingMessage } from 'node:http'
import { connect } from 'amqplib'
import pg from 'pg'
import {
  ConcurrencyError,
  correlation,
  isSwitchyardError,
  MessageBus,
  OutboxRelay,
  OutboxWriter,
  retry,
  type SqlExecutor,
  TrackingRepository,
  transient,
} from 'switchyard-bus'
import { PostgresOutboxStore, PostgresUnitOfWork } from 'switchyard-bus/postgres'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import { amqpUrl, PG_URL, printingLogger, runNames } from './config.js'
import { AddBatch, Allocate, Allocated, OutOfStock, Product } from './domain.js'

/** The business tables (in the service's schema, first on the search path). */
const TABLES = `
  CREATE TABLE IF NOT EXISTS products (sku text PRIMARY KEY, version int NOT NULL);
  CREATE TABLE IF NOT EXISTS batches (
    seq       int GENERATED ALWAYS AS IDENTITY,
    ref       text PRIMARY KEY,
    sku       text NOT NULL REFERENCES products (sku),
    available int NOT NULL CHECK (available >= 0)
  );
`

/** Products and their batches, through the unit of work's transaction (as in example 03). */
class ProductRepository extends TrackingRepository<Product, string> {
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

  /** Saves every product this unit of work saw; a concurrent change is a ConcurrencyError. */
  async flush(): Promise<void> {
    for (const product of this.seen) {
      if (product.version === 0) {
        await this.tx.query('INSERT INTO products (sku, version) VALUES ($1, 1)', [product.sku])
      } else {
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

async function main(): Promise<void> {
  const names = runNames()
  const schema = names.allocationSchema
  // Every connection of the pool looks up unqualified tables in this service's schema.
  const pool = new pg.Pool({ connectionString: PG_URL, options: `-c search_path=${schema}` })
  pool.on('error', (error) => console.error(`pool: ${error.message}`))
  const store = new PostgresOutboxStore({ pool, schema })
  await store.ensureSchema() // creates the schema too
  await pool.query(TABLES)

  const outbox = new OutboxWriter({ store, events: [Allocated], source: '/allocation' })
  const bus = new MessageBus<{ uow: PostgresUnitOfWork<{ products: ProductRepository }> }>({
    dependencies: {
      // One unit of work, so one transaction, per handler call; the outbox append joins it.
      uow: transient(() =>
        PostgresUnitOfWork.begin({
          pool,
          outbox,
          repositories: (tx) => ({ products: new ProductRepository(tx) }),
        }),
      ),
    },
    // correlation(): the events a handler records carry its command's correlation id (so the
    // outbox sends it). retry(): two allocations of one product at once; the loser runs again.
    middleware: [
      correlation(),
      retry({ attempts: 5, retryOn: (error) => error instanceof ConcurrencyError }),
    ],
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
      if (product === undefined) throw new OutOfStock(cmd.payload.sku)
      const batchRef = product.allocate(cmd.payload.orderId, cmd.payload.qty) // may throw
      await uow.commit() // the product and the Allocated outbox row, in one transaction
      return batchRef
    },
    { deps: ['uow'] },
  )

  const transport = new RabbitMqTransport({
    connection: () => connect(amqpUrl()), // a factory: the transport reconnects after a loss
    namespace: names.namespace,
    // No queue bound to the topic yet (no consumer group declared)? Then the publish fails with
    // SWITCHYARD_UNROUTABLE (the default, unroutable: 'reject') and the rows stay in the outbox.
  })
  const relay = new OutboxRelay({
    store,
    publisher: transport,
    // A failed row waits 0.25 s, doubling up to 2 s, before its next attempt, and turns dead
    // after 30 attempts: about a minute without a broker or a consumer group.
    backoff: { initialDelay: 250, maxDelay: 2000 },
    maxAttempts: 30,
    logger: printingLogger('relay: '),
  })
  relay.start() // LISTEN/NOTIFY wakes it at each commit; it polls every second as well

  const server = createServer((request, response) => {
    void route(request).then(([status, body]) => {
      response.writeHead(status, { 'content-type': 'application/json' })
      response.end(JSON.stringify(body))
    })
  })
  async function route(request: IncomingMessage): Promise<[number, unknown]> {
    try {
      if (request.method === 'GET' && request.url === '/outbox') return [200, await store.status()]
      const header = request.headers['x-correlation-id']
      const options = typeof header === 'string' ? { correlationId: header } : {}
      let body = ''
      for await (const chunk of request) body += String(chunk)
      const payload: unknown = body === '' ? {} : JSON.parse(body)
      if (request.method === 'POST' && request.url === '/batches') {
        await bus.execute(AddBatch(payload as never, options))
        return [201, {}]
      }
      if (request.method === 'POST' && request.url === '/allocations')
        return [201, { batchRef: await bus.execute(Allocate(payload as never, options)) }]
      return [404, { error: 'not found' }]
    } catch (error) {
      const invalid =
        isSwitchyardError(error, 'SWITCHYARD_VALIDATION_FAILED') || error instanceof SyntaxError
      const status = error instanceof OutOfStock ? 409 : invalid ? 400 : 500
      return [status, { error: String(error) }]
    }
  }
  await new Promise<void>((resolve) =>
    server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', resolve),
  )
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  console.log(`listening on http://127.0.0.1:${port}; relay → exchange ${names.namespace}`)

  const stop = async (): Promise<void> => {
    server.close()
    await relay.stop() // lets the batch in hand finish
    await transport.close() // waits for the publishes in flight
    await bus.close()
    await pool.end()
    console.log('stopped')
  }
  process.once('SIGTERM', () => void stop())
  process.once('SIGINT', () => void stop())
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
