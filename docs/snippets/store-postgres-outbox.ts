import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { decodeEnvelope, defineEvent, encodeEnvelope } from 'switchyard-bus'
import { InMemoryTransport, OutboxRelay } from 'switchyard-bus'
import { fromPg, PostgresInboxStore, PostgresOutboxStore } from 'switchyard-bus/postgres'

const Allocated = defineEvent('Allocated', { topic: 'allocation' }).withPayload<{ sku: string }>()
const pool = new pg.Pool({
  connectionString: process.env.SWITCHYARD_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
})
const schema = `docs_${randomBytes(5).toString('hex')}` // the default is switchyard
const outbox = new PostgresOutboxStore({ pool, schema })
const inbox = new PostgresInboxStore({ pool, schema })

async function main(): Promise<void> {
  const client = await pool.connect()
  try {
    await outbox.ensureSchema()
    await inbox.ensureSchema()
    await pool.query(`CREATE TABLE ${schema}.orders (id text PRIMARY KEY)`)
    const event = Allocated({ sku: 'LAMP' })
    const body = encodeEnvelope(event, { source: '/allocation', key: 'LAMP' })
    await client.query('BEGIN')
    await client.query(`INSERT INTO ${schema}.orders VALUES ('o1')`) // your change…
    await outbox.append(fromPg(client), [
      { id: event.id, topic: 'allocation', key: 'LAMP', type: event.type, body },
    ]) // …and its event: both or neither
    await client.query('COMMIT')

    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store: outbox, publisher: transport })
    assert.equal(await relay.runOnce(), 1) // claimed, published, marked published
    const [sent] = transport.published('allocation')
    const { message, key } = decodeEnvelope(sent!.body)
    assert.deepEqual([message.id, message.payload, key], [event.id, { sku: 'LAMP' }, 'LAMP'])

    for (const firstTime of [true, false]) {
      await client.query('BEGIN') // the consumer's transaction, holding its effects
      assert.equal(await inbox.tryRecord(fromPg(client), 'billing', message.id), firstTime)
      await client.query('COMMIT') // a redelivery finds the record: skip its effects
    }
  } finally {
    client.release(true) // closes the connection, rolling back anything left open
    await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await pool.end()
  }
}
void main()
