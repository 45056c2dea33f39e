/**
 * The consumer on PostgreSQL with the in-memory transport: decode, validate, inbox in the
 * handler's transaction (exactly one effect per message, also for concurrent duplicates), retry,
 * dead letters with the reason, and forwarding through the consumer's own outbox in the same
 * transaction. The effects table has no unique constraint, so a broken inbox shows as a duplicate.
 */
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { z } from 'zod'
import {
  AggregateRoot,
  Consumer,
  decodeEnvelope,
  defineEvent,
  encodeEnvelope,
  type Event,
  InMemoryTransport,
  MessageBus,
  OutboxRelay,
  OutboxWriter,
  type SqlExecutor,
  TrackingRepository,
  transient,
  type TransportMessage,
} from '../../../src/index.js'
import {
  PostgresInboxStore,
  PostgresOutboxStore,
  PostgresUnitOfWork,
} from '../../../src/postgres/index.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
})

const Allocated = defineEvent('Allocated', z.object({ orderId: z.string(), qty: z.number() }), {
  topic: 'allocation',
  key: (p) => p.orderId,
})
const Shipped = defineEvent<{ orderId: string }>('Shipped', {
  topic: 'shipping',
  key: (p) => p.orderId,
})

/** The consumer's effect: a shipment row, and the integration event it forwards. */
class Shipment extends AggregateRoot<Event> {
  constructor(readonly orderId: string) {
    super()
    this.record(Shipped({ orderId }))
  }
}
class Shipments extends TrackingRepository<Shipment, string> {
  constructor(
    private readonly tx: SqlExecutor,
    private readonly table: string,
  ) {
    super()
  }
  protected idOf = (s: Shipment): string => s.orderId
  protected load = (): Promise<undefined> => Promise.resolve(undefined)
  protected insert = async (s: Shipment): Promise<void> => {
    await this.tx.query(`INSERT INTO ${this.table} (order_id) VALUES ($1)`, [s.orderId])
  }
}

const wire = (message: Event, extra: Partial<TransportMessage> = {}): TransportMessage => ({
  id: message.id,
  key: (message.payload as { orderId?: string }).orderId,
  headers: {},
  body: encodeEnvelope(message, { source: '/orders' }),
  ...extra,
})
const waitFor = async (check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe.skipIf(pool === undefined)('Consumer with the inbox on PostgreSQL', () => {
  let schema: string
  let table: string
  let transport: InMemoryTransport
  let outbox: PostgresOutboxStore
  let calls: { orderId: string; attempt: number }[]
  let failTimes: number
  const consumers: Consumer[] = []

  const effects = async (): Promise<string[]> =>
    (await pool!.query<{ order_id: string }>(`SELECT order_id FROM ${table} ORDER BY id`)).rows.map(
      (r) => r.order_id,
    )

  function consumer(name = 'shipping-service'): Consumer {
    const writer = new OutboxWriter({ store: outbox, events: [Shipped], source: '/shipping' })
    const bus = new MessageBus({
      dependencies: {
        uow: transient(() =>
          PostgresUnitOfWork.begin({
            pool: pool!,
            outbox: writer,
            repositories: (tx) => ({ shipments: new Shipments(tx, table) }),
          }),
        ),
      },
    })
    let attempt = 0
    bus.handle(
      Allocated,
      async (event, { deps: { uow } }) => {
        calls.push({ orderId: event.payload.orderId, attempt: ++attempt })
        await uow.repositories.shipments.add(new Shipment(event.payload.orderId))
        await new Promise((resolve) => setTimeout(resolve, 20)) // let duplicates overlap
        if (failTimes-- > 0) throw new Error('the warehouse is busy')
        await uow.commit()
      },
      { deps: ['uow'], name: 'ship' },
    )
    const created = new Consumer({
      name,
      bus,
      subscriber: transport,
      events: [Allocated],
      inbox: new PostgresInboxStore({ pool: pool!, schema }),
      concurrency: 4,
      retry: { maxAttempts: 3, initialDelay: 5, maxDelay: 10 },
    })
    consumers.push(created)
    return created
  }

  beforeEach(async () => {
    schema = uniqueSchema()
    table = `"${schema}".shipments`
    transport = new InMemoryTransport()
    outbox = new PostgresOutboxStore({ pool: pool!, schema })
    await outbox.ensureSchema()
    await new PostgresInboxStore({ pool: pool!, schema }).ensureSchema()
    await pool!.query(`CREATE TABLE ${table} (id serial PRIMARY KEY, order_id text NOT NULL)`)
    calls = []
    failTimes = 0
  })
  afterEach(async () => {
    await Promise.all(consumers.splice(0).map((c) => c.stop()))
    await transport.close()
    await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })

  it('applies a message once: a redelivery is acknowledged and skipped, and the forwarded event is appended once, with its causation', async () => {
    await consumer().start()
    const event = Allocated({ orderId: 'o1', qty: 2 })
    await transport.publish('allocation', [wire(event)])
    await waitFor(async () => (await effects()).length === 1)
    await transport.publish('allocation', [wire(event)]) // the broker delivers it again
    await waitFor(() => transport.pending('allocation', 'shipping-service') === 0)
    expect(await effects()).toEqual(['o1'])
    expect(calls).toHaveLength(1) // the handler itself was skipped the second time

    const relayed = new InMemoryTransport()
    await new OutboxRelay({ store: outbox, publisher: relayed }).runOnce()
    const forwarded = relayed.published('shipping')
    expect(forwarded).toHaveLength(1)
    expect(decodeEnvelope(forwarded[0]!.body).message).toMatchObject({
      type: 'Shipped',
      correlationId: event.correlationId,
      causationId: event.id,
    })
  })

  it('gives one effect when the same message arrives three times at once, at three consumers of one group', async () => {
    for (let i = 0; i < 3; i++) await consumer().start()
    const event = Allocated({ orderId: 'o2', qty: 1 })
    await transport.publish('allocation', [wire(event), wire(event), wire(event)])
    await waitFor(() => transport.pending('allocation', 'shipping-service') === 0)
    expect(await effects()).toEqual(['o2'])
    expect((await outbox.status()).pending).toBe(1)
  })

  it('retries a failing handler with backoff; its failed attempts leave nothing behind', async () => {
    failTimes = 2
    await consumer().start()
    await transport.publish('allocation', [wire(Allocated({ orderId: 'o3', qty: 1 }))])
    await waitFor(() => transport.pending('allocation', 'shipping-service') === 0)
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3])
    expect(await effects()).toEqual(['o3'])
    expect(transport.deadLetters('allocation')).toEqual([])
  })

  it('dead-letters after maxAttempts with the error, keeping the original message', async () => {
    failTimes = Infinity
    await consumer().start()
    const sent = wire(Allocated({ orderId: 'o4', qty: 1 }), { headers: { tenant: 'acme' } })
    await transport.publish('allocation', [sent])
    await waitFor(() => transport.deadLetters('allocation').length === 1)
    const [dead] = transport.deadLetters('allocation')
    expect(dead).toMatchObject({ group: 'shipping-service', attempts: 3, message: sent })
    expect(dead!.reason).toContain('the warehouse is busy')
    expect(await effects()).toEqual([])
  })

  it('dead-letters what it cannot read at once, with a stable code, without calling the handler', async () => {
    await consumer().start()
    const Unknown = defineEvent<{ orderId: string }>('Cancelled', { topic: 'allocation' })
    const invalid = { ...Allocated({ orderId: 'o5', qty: 1 }), payload: { orderId: 5 } }
    await transport.publish('allocation', [
      { id: 'junk', headers: {}, body: new TextEncoder().encode('{not json') },
      wire(Unknown({ orderId: 'o6' })),
      wire(invalid),
      {
        id: 'proto',
        headers: {},
        body: new TextEncoder().encode(
          '{"specversion":"1.0","id":"p","type":"Allocated","source":"/x","data":{"__proto__":{"polluted":true}}}',
        ),
      },
    ])
    await waitFor(() => transport.deadLetters('allocation').length === 4)
    const reasons = transport
      .deadLetters('allocation')
      .map((d) => [d.attempts, d.reason.split(':')[0]])
      .sort() // handled concurrently: any order
    expect(reasons).toEqual([
      [1, 'SWITCHYARD_UNDECODABLE'],
      [1, 'SWITCHYARD_UNKNOWN_MESSAGE_TYPE'],
      [1, 'SWITCHYARD_UNSAFE_PAYLOAD'],
      [1, 'SWITCHYARD_VALIDATION_FAILED'],
    ])
    expect(calls).toEqual([])
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined()
  })

  it('records the inbox once when a handler opens two units of work (no wait on its own record)', async () => {
    const bus = new MessageBus({
      dependencies: {
        first: transient(() => PostgresUnitOfWork.begin({ pool: pool!, repositories: () => ({}) })),
        second: transient(() =>
          PostgresUnitOfWork.begin({ pool: pool!, repositories: () => ({}) }),
        ),
      },
    })
    bus.handle(
      Allocated,
      async (event, { deps: { first, second } }) => {
        await first.tx.query(`INSERT INTO ${table} (order_id) VALUES ($1)`, [event.payload.orderId])
        await first.commit()
        await second.commit()
      },
      { deps: ['first', 'second'], name: 'two-units' },
    )
    const c = new Consumer({
      name: 'two',
      bus,
      subscriber: transport,
      events: [Allocated],
      inbox: new PostgresInboxStore({ pool: pool!, schema }),
    })
    consumers.push(c)
    await c.start()
    const event = Allocated({ orderId: 'o7', qty: 1 })
    await transport.publish('allocation', [wire(event), wire(event)])
    await waitFor(() => transport.pending('allocation', 'two') === 0, 5000)
    expect(await effects()).toEqual(['o7'])
  })

  it('gives back, never dead-letters, the messages in hand when it stops', async () => {
    const bus = new MessageBus()
    let entered: () => void = () => undefined
    const inHandler = new Promise<void>((resolve) => (entered = resolve))
    bus.handle(
      Allocated,
      async (_event, { signal }) => {
        entered()
        await new Promise((resolve) => setTimeout(resolve, 50))
        signal.throwIfAborted() // a handler that honours the stop
      },
      { name: 'slow' },
    )
    const c = new Consumer({
      name: 'stopping',
      bus,
      subscriber: transport,
      events: [Allocated],
      retry: { maxAttempts: 1 }, // any failure of the message itself would dead-letter it
    })
    await c.start()
    await transport.publish('allocation', [wire(Allocated({ orderId: 'o8', qty: 1 }))])
    await inHandler
    await c.stop()
    expect(transport.deadLetters('allocation')).toEqual([])
    expect(transport.pending('allocation', 'stopping')).toBe(1) // waits for the next start
    const again = new Consumer({
      name: 'stopping',
      bus,
      subscriber: transport,
      events: [Allocated],
    })
    consumers.push(again)
    await again.start()
    await waitFor(() => transport.pending('allocation', 'stopping') === 0)
    expect(transport.deadLetters('allocation')).toEqual([])
  })
})
