/**
 * Correlation, causation and W3C trace context across services through RabbitMQ: the orders
 * service appends `Placed` (with a correlation id, a causation id and `traceparent` / `tracestate`
 * / a tenant header) to its PostgreSQL outbox; its relay publishes it; the shipping service's
 * `Consumer` (PostgreSQL inbox) handles it and records a `Shipment` whose `Shipped` event goes to
 * the shipping outbox in the same transaction; the shipping relay publishes that, and an audit
 * subscription reads it off RabbitMQ. The handler must see the ids and headers as they were sent,
 * and the forwarded envelope must keep the correlation id, name the consumed event as its cause
 * and continue the same trace (same trace id in its `traceparent`).
 */
import { describe, expect, inject, it } from 'vitest'
import { z } from 'zod'
import {
  AggregateRoot,
  Consumer,
  decodeEnvelope,
  defineEvent,
  type Delivery,
  type Event,
  MessageBus,
  OutboxRelay,
  OutboxWriter,
  type SqlExecutor,
  TrackingRepository,
  transient,
} from '../../../src/index.js'
import {
  PostgresInboxStore,
  PostgresOutboxStore,
  PostgresUnitOfWork,
} from '../../../src/postgres/index.js'
import { report, waitFor } from '../../helpers/crash-harness.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736'
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`
const TRACESTATE = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'

/** The trace id of a W3C `traceparent` (`version-traceid-parentid-flags`). */
const traceIdOf = (traceparent: string | undefined): string | undefined =>
  /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/.exec(traceparent ?? '')?.[1]

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'correlation, causation and trace context from outbox to forwarded event over RabbitMQ',
  () => {
    it('keeps them through outbox → relay → RabbitMQ → consumer → outbox → relay → RabbitMQ', async () => {
      const broker = new TestBroker(amqpUrl!)
      const pool = createPool(pgUrl!)
      const ordersSchema = uniqueSchema('syr')
      const shippingSchema = uniqueSchema('syr')
      const ordersTopic = broker.topic('orders')
      const shippingTopic = broker.topic('shipping')
      const Placed = defineEvent('faults.Placed', z.object({ orderId: z.string() }), {
        topic: ordersTopic,
        key: (p) => p.orderId,
      })
      const Shipped = defineEvent<{ orderId: string }>('faults.Shipped', {
        topic: shippingTopic,
        key: (p) => p.orderId,
      })
      class Shipment extends AggregateRoot<Event> {
        constructor(readonly orderId: string) {
          super()
          this.record(Shipped({ orderId }))
        }
      }
      class Shipments extends TrackingRepository<Shipment, string> {
        constructor(private readonly tx: SqlExecutor) {
          super()
        }
        protected idOf = (s: Shipment): string => s.orderId
        protected load = (): Promise<undefined> => Promise.resolve(undefined)
        protected insert = async (s: Shipment): Promise<void> => {
          await this.tx.query(`INSERT INTO "${shippingSchema}".shipments (order_id) VALUES ($1)`, [
            s.orderId,
          ])
        }
      }

      const relays: OutboxRelay[] = []
      let consumer: Consumer | undefined
      try {
        const ordersOutbox = new PostgresOutboxStore({ pool, schema: ordersSchema })
        const shippingOutbox = new PostgresOutboxStore({ pool, schema: shippingSchema })
        await ordersOutbox.ensureSchema()
        await shippingOutbox.ensureSchema()
        const inbox = new PostgresInboxStore({ pool, schema: shippingSchema })
        await inbox.ensureSchema()
        await pool.query(
          `CREATE TABLE "${shippingSchema}".shipments (id serial PRIMARY KEY, order_id text NOT NULL)`,
        )

        // The shipping service: consumes Placed, forwards Shipped through its own outbox.
        const seen: { event: Event; delivery?: Delivery }[] = []
        const bus = new MessageBus({
          dependencies: {
            uow: transient(() =>
              PostgresUnitOfWork.begin({
                pool,
                outbox: new OutboxWriter({
                  store: shippingOutbox,
                  events: [Shipped],
                  source: '/shipping',
                }),
                repositories: (tx) => ({ shipments: new Shipments(tx) }),
              }),
            ),
          },
        })
        bus.handle(
          Placed,
          async (event, { deps: { uow } }) => {
            seen.push({ event })
            await uow.repositories.shipments.add(new Shipment(event.payload.orderId))
            await uow.commit()
          },
          { deps: ['uow'], name: 'ship' },
        )
        const consumerTransport = broker.transport()
        broker.track(consumerTransport.topology(ordersTopic, 'shipping'))
        const deliveries: Delivery[] = []
        consumer = new Consumer({
          name: 'shipping',
          bus,
          events: [Placed],
          inbox,
          subscriber: {
            subscribe: (topic, handler, options) =>
              consumerTransport.subscribe(
                topic,
                (d, signal) => {
                  deliveries.push(d)
                  return handler(d, signal)
                },
                options,
              ),
            close: () => consumerTransport.close(),
          },
        })
        await consumer.start()

        // Whoever listens to shipping: an audit subscription, declared before anything is sent.
        const auditTransport = broker.transport()
        broker.track(auditTransport.topology(shippingTopic, 'audit'))
        const forwarded: Delivery[] = []
        await auditTransport.subscribe(shippingTopic, async (d) => void forwarded.push(d), {
          group: 'audit',
        })

        // The orders service: one Placed in its outbox, then its relay and the shipping relay.
        const placed = Placed(
          { orderId: 'order-1' },
          {
            correlationId: 'request-7f3a',
            causationId: 'command-place-order-1',
            headers: { traceparent: TRACEPARENT, tracestate: TRACESTATE, tenant: 'acme' },
          },
        )
        const ordersWriter = new OutboxWriter({
          store: ordersOutbox,
          events: [Placed],
          source: '/orders',
        })
        await inTransaction(pool, (tx) =>
          ordersOutbox.append(tx, ordersWriter.recordsFor([placed])),
        )
        for (const store of [ordersOutbox, shippingOutbox]) {
          const relay = new OutboxRelay({
            store,
            publisher: broker.transport({ unroutable: 'reject' }),
            pollIntervalMs: 50,
            publishTimeoutMs: 5000,
            leaseMs: 10_000,
          })
          relay.start()
          relays.push(relay)
        }
        await waitFor('the forwarded Shipped', () => forwarded.length >= 1, 20_000)

        const handled = seen[0]!.event
        const delivery = deliveries[0]!
        const wire = forwarded[0]!
        const shipped = decodeEnvelope(wire.body).message
        report('rabbitmq-correlation', 'postgres', {
          handlerSaw: {
            id: handled.id,
            correlationId: handled.correlationId,
            causationId: handled.causationId,
            headers: { ...handled.headers },
          },
          deliveryHeaders: delivery.headers,
          forwarded: {
            id: shipped.id,
            type: shipped.type,
            correlationId: shipped.correlationId,
            causationId: shipped.causationId,
            headers: { ...shipped.headers },
            transportHeaders: wire.headers,
          },
          forwardedTraceIdKept: traceIdOf(shipped.headers.traceparent) === TRACE_ID,
        })

        // What the handler saw: the message as the orders service made it.
        expect(seen).toHaveLength(1)
        expect(handled).toMatchObject({
          id: placed.id,
          type: 'faults.Placed',
          correlationId: 'request-7f3a',
          causationId: 'command-place-order-1',
          payload: { orderId: 'order-1' },
        })
        expect({ ...handled.headers }).toEqual({
          traceparent: TRACEPARENT,
          tracestate: TRACESTATE,
          tenant: 'acme',
        })
        // The broker-level headers carry the trace context too (for tools that read only those).
        expect(delivery).toMatchObject({ id: placed.id, key: 'order-1', attempt: 1 })
        expect(delivery.headers).toMatchObject({ traceparent: TRACEPARENT, tracestate: TRACESTATE })

        // The forwarded event: same correlation, caused by the consumed event, same trace.
        expect(forwarded).toHaveLength(1)
        expect(wire.key).toBe('order-1')
        expect(shipped).toMatchObject({
          type: 'faults.Shipped',
          correlationId: 'request-7f3a',
          causationId: placed.id,
          payload: { orderId: 'order-1' },
        })
        expect(shipped.id).not.toBe(placed.id)
        expect(traceIdOf(shipped.headers.traceparent), 'the forwarded traceparent').toBe(TRACE_ID)
        expect(traceIdOf(wire.headers.traceparent), 'the forwarded transport header').toBe(TRACE_ID)
      } finally {
        await Promise.all(relays.map((r) => r.stop()))
        await consumer?.stop()
        await broker.cleanup()
        await pool.query(`DROP SCHEMA IF EXISTS "${ordersSchema}" CASCADE`)
        await pool.query(`DROP SCHEMA IF EXISTS "${shippingSchema}" CASCADE`)
        await pool.end()
      }
    }, 60_000)
  },
)
