import assert from 'node:assert/strict'
import { PGlite } from '@electric-sql/pglite'
import { Consumer, defineEvent, encodeEnvelope, InMemoryTransport } from 'switchyard-bus'
import { type Event, MessageBus, transient, type TransportMessage } from 'switchyard-bus'
import { PgliteInboxStore, PgliteUnitOfWork } from 'switchyard-bus/pglite'
import { z } from 'zod'

const Allocated = defineEvent('Allocated', z.object({ orderId: z.string(), qty: z.number() }), {
  topic: 'allocations',
  key: (p) => p.orderId,
})

const db = new PGlite() // in memory
const inbox = new PgliteInboxStore({ db })
const transport = new InMemoryTransport()
const bus = new MessageBus({
  dependencies: { uow: transient(() => PgliteUnitOfWork.begin({ db, repositories: () => ({}) })) },
})
let calls = 0
bus.handle(
  Allocated,
  async (event, { deps: { uow } }) => {
    calls++
    await uow.tx.query('INSERT INTO shipments (order_id) VALUES ($1)', [event.payload.orderId])
    await uow.commit() // the inbox record commits with this row, or neither does
  },
  { deps: ['uow'], name: 'ship' }, // the name scopes the inbox records: give it, and keep it
)
const consumer = new Consumer({
  name: 'shipping', // the inbox records "shipping/ship"; the group is "shipping"
  bus,
  subscriber: transport,
  events: [Allocated],
  inbox,
})

/** What a producer's outbox relay publishes: the message id, its key, the CloudEvents body. */
const wire = (event: Event, key?: string): TransportMessage => ({
  id: event.id,
  key,
  headers: {},
  body: encodeEnvelope(event, { source: '/orders', key }),
})
async function settled(): Promise<void> {
  while (transport.pending('allocations', 'shipping') > 0)
    await new Promise((resolve) => setTimeout(resolve, 5))
}

async function main(): Promise<void> {
  try {
    await inbox.ensureSchema()
    await db.query('CREATE TABLE shipments (order_id text NOT NULL)') // no unique constraint
    await bus.start() // checks the handlers (distinct names, dependencies) before any message
    await consumer.start() // the group exists from now on: it receives what is published next

    const allocated = Allocated({ orderId: 'o1', qty: 2 })
    await transport.publish('allocations', [wire(allocated, 'o1')])
    await settled()
    await transport.publish('allocations', [wire(allocated, 'o1')]) // delivered again
    await settled()
    const shipments = await db.query('SELECT order_id FROM shipments')
    assert.deepEqual(shipments.rows, [{ order_id: 'o1' }]) // one effect
    assert.equal(calls, 1) // the second time the handler was skipped, and the message acknowledged
    const records = await db.query('SELECT consumer, message_id FROM switchyard.inbox')
    assert.deepEqual(records.rows, [{ consumer: 'shipping/ship', message_id: allocated.id }])

    // What it cannot read is dead-lettered at once, with a stable code, without a handler call.
    const junk = { id: 'junk', headers: {}, body: new TextEncoder().encode('{not json') }
    const invalid = { ...Allocated({ orderId: 'o2', qty: 1 }), payload: { orderId: 'o2' } }
    await transport.publish('allocations', [junk, wire(invalid)])
    await settled()
    const dead = transport.deadLetters('allocations')
    assert.deepEqual(
      dead.map((d) => [d.message.id, d.group, d.attempts, d.reason.split(':')[0]]),
      [
        ['junk', 'shipping', 1, 'SWITCHYARD_UNDECODABLE'],
        [invalid.id, 'shipping', 1, 'SWITCHYARD_VALIDATION_FAILED'],
      ],
    )
    assert.deepEqual(dead[0]?.message, junk) // the original message, kept as it was
    assert.equal(calls, 1)
  } finally {
    await consumer.stop() // first: the messages in hand finish, or go back to the transport
    await bus.close()
    await transport.close()
    await db.close()
  }
}
void main()
