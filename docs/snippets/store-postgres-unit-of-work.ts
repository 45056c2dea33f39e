import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { AggregateRoot, decodeEnvelope, defineEvent, type Event } from 'switchyard-bus'
import { InMemoryTransport, OutboxRelay, OutboxWriter } from 'switchyard-bus'
import { type SqlExecutor, TrackingRepository } from 'switchyard-bus'
import { PostgresOutboxStore, PostgresUnitOfWork } from 'switchyard-bus/postgres'

const Placed = defineEvent<{ id: string }>('OrderPlaced', { topic: 'orders', key: (p) => p.id })
const url = process.env.SWITCHYARD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
const pool = new pg.Pool({ connectionString: url })
const schema = `docs_${randomBytes(5).toString('hex')}`
const store = new PostgresOutboxStore({ pool, schema })
const outbox = new OutboxWriter({ store, events: [Placed], source: '/orders' }) // events with a topic

class Order extends AggregateRoot<Event> {
  constructor(readonly id: string) {
    super()
    this.record(Placed({ id }))
  }
}
class Orders extends TrackingRepository<Order, string> {
  constructor(private readonly tx: SqlExecutor) {
    super()
  }
  protected idOf = (order: Order): string => order.id
  protected load = (): Promise<undefined> => Promise.resolve(undefined)
  protected insert = async (order: Order): Promise<void> => {
    await this.tx.query(`INSERT INTO ${schema}.orders VALUES ($1)`, [order.id])
  }
}
const repositories = (tx: SqlExecutor) => ({ orders: new Orders(tx) })

async function main(): Promise<void> {
  try {
    await store.ensureSchema()
    await pool.query(`CREATE TABLE ${schema}.orders (id text PRIMARY KEY)`)
    const uow = await PostgresUnitOfWork.begin({ pool, outbox, repositories }) // BEGIN
    await uow.repositories.orders.add(new Order('o1')) // the INSERT
    await uow.commit() // the outbox append (in beforeCommit), then COMMIT
    const transport = new InMemoryTransport()
    assert.equal(await new OutboxRelay({ store, publisher: transport }).runOnce(), 1)
    const [sent] = transport.published('orders')
    assert.equal(sent?.key, 'o1') // from the definition's key
    assert.deepEqual(decodeEnvelope(sent.body).message.payload, { id: 'o1' })
  } finally {
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await pool.end()
  }
}
void main()
