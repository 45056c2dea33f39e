import assert from 'node:assert/strict'
import { PGlite } from '@electric-sql/pglite'
import { decodeEnvelope, defineEvent, InMemoryTransport, OutboxRelay } from 'switchyard-bus'
import { OutboxWriter } from 'switchyard-bus'
import { fromPglite, PgliteInboxStore, PgliteOutboxStore } from 'switchyard-bus/pglite'

const Placed = defineEvent<{ id: string }>('OrderPlaced', { topic: 'orders', key: (p) => p.id })
const db = new PGlite() // in memory; new PGlite('./data') keeps a data directory
const store = new PgliteOutboxStore({ db })
const inbox = new PgliteInboxStore({ db })
const writer = new OutboxWriter({ store, events: [Placed], source: '/orders' })

async function main(): Promise<void> {
  try {
    await store.ensureSchema()
    await inbox.ensureSchema()
    await db.query('CREATE TABLE orders (id text PRIMARY KEY)')
    const event = Placed({ id: 'o1' })
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO orders VALUES ($1)', [event.payload.id]) // your change…
      await store.append(fromPglite(tx), writer.recordsFor([event])) // …and its event
    }) // await nothing that uses db itself in there (the relay, status…): one connection

    const transport = new InMemoryTransport()
    assert.equal(await new OutboxRelay({ store, publisher: transport }).runOnce(), 1)
    const [sent] = transport.published('orders')
    const { message, key } = decodeEnvelope(sent!.body)
    assert.deepEqual([message.id, message.payload, key], [event.id, { id: 'o1' }, 'o1'])

    const consume = () =>
      db.transaction((tx) => inbox.tryRecord(fromPglite(tx), 'billing', message.id))
    assert.equal(await consume(), true) // first delivery: apply its effects in that transaction
    assert.equal(await consume(), false) // a redelivery: skip them
  } finally {
    await db.close()
  }
}
void main()
