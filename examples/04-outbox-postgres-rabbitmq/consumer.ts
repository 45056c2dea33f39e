/**
 * The reporting service: consumes `Allocated` from RabbitMQ (group `reporting`) with a `Consumer`,
 * and keeps a read model of allocations in its own PostgreSQL schema. Its handler's unit of work
 * (its own `PostgresUnitOfWork`) also records the message id in a `PostgresInboxStore`, in the
 * same transaction: a message delivered again after a commit is skipped, so each allocation is
 * applied once. The read-model table has no unique constraint, so a duplicate would show.
 *
 * Run: npx tsx examples/04-outbox-postgres-rabbitmq/consumer.ts  (EXAMPLE_RUN optional)
 * CRASH_AFTER_COMMIT=<orderId> makes it kill itself (SIGKILL) right after committing that order
 * the first time, before RabbitMQ got the ack: the demo's crash. SIGTERM or SIGINT stop it.
 */
import { connect } from 'amqplib'
import pg from 'pg'
import { Consumer, decodeEnvelope, MessageBus, type Subscriber, transient } from 'switchyard-bus'
import { PostgresInboxStore, PostgresUnitOfWork } from 'switchyard-bus/postgres'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import { amqpUrl, PG_URL, printingLogger, runNames } from './config.js'
import { Allocated } from './domain.js'

const READ_MODEL = `
  CREATE TABLE IF NOT EXISTS allocations_view (
    id             serial PRIMARY KEY,
    message_id     text NOT NULL,
    order_id       text NOT NULL,
    sku            text NOT NULL,
    qty            int NOT NULL,
    batch_ref      text NOT NULL,
    correlation_id text NOT NULL,
    causation_id   text,
    applied_at     timestamptz NOT NULL DEFAULT now()
  );
`

async function main(): Promise<void> {
  const names = runNames()
  const crashAfter = process.env.CRASH_AFTER_COMMIT
  const pool = new pg.Pool({
    connectionString: PG_URL,
    options: `-c search_path=${names.reportingSchema}`,
  })
  pool.on('error', (error) => console.error(`pool: ${error.message}`))
  const inbox = new PostgresInboxStore({ pool, schema: names.reportingSchema })
  await inbox.ensureSchema() // creates the schema too
  await pool.query(READ_MODEL)

  /** Ids of the messages whose handler committed in this process (for the printed report). */
  const applied = new Set<string>()
  const bus = new MessageBus({
    dependencies: {
      uow: transient(() => PostgresUnitOfWork.begin({ pool, repositories: () => ({}) })),
    },
  })
  bus.handle(
    Allocated,
    async (event, { deps: { uow } }) => {
      const { orderId, sku, qty, batchRef } = event.payload
      await uow.tx.query(
        `INSERT INTO allocations_view
           (message_id, order_id, sku, qty, batch_ref, correlation_id, causation_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [event.id, orderId, sku, qty, batchRef, event.correlationId, event.causationId ?? null],
      )
      await uow.commit() // the row and the inbox record, together
      applied.add(event.id)
      if (orderId === crashAfter) {
        console.log(`${orderId} committed; crashing before the ack (SIGKILL)`)
        process.kill(process.pid, 'SIGKILL')
      }
    },
    { deps: ['uow'], name: 'read-model' }, // the inbox records "reporting/read-model"
  )

  const transport = new RabbitMqTransport({
    connection: () => connect(amqpUrl()),
    namespace: names.namespace,
  })
  // The transport, with one line printed per delivery and what became of it.
  const subscriber: Subscriber = {
    subscribe: (topic, handler, options) =>
      transport.subscribe(
        topic,
        async (delivery, signal) => {
          const { message } = decodeEnvelope(delivery.body)
          const { orderId } = message.payload as { orderId: string }
          const what = `delivery ${delivery.attempt} of ${message.type} ${orderId} (correlation ${message.correlationId})`
          try {
            const outcome = await handler(delivery, signal)
            if (outcome?.deadLetter !== undefined)
              console.log(`${what}: dead-lettered, ${outcome.deadLetter}`)
            else if (applied.delete(delivery.id)) console.log(`${what}: applied`)
            else console.log(`${what}: skipped, the inbox already has it`)
            return outcome
          } catch (error) {
            console.log(`${what}: failed, will be redelivered (${String(error)})`)
            throw error
          }
        },
        options,
      ),
    close: () => transport.close(),
  }
  const consumer = new Consumer({
    name: names.group, // its group (so its queue) and its inbox scope
    bus,
    subscriber,
    events: [Allocated], // subscribes to their topics: allocations
    inbox,
    concurrency: 1, // one at a time (prefetch 1); more run different products in parallel
    retry: { maxAttempts: 5, initialDelay: 500, maxDelay: 5000 },
    logger: printingLogger('consumer: '),
  })
  await consumer.start() // declares the exchange, the queue and its dead-letter queue
  const { queue } = transport.topology(names.topic, names.group)
  console.log(
    `consuming ${queue}${crashAfter === undefined ? '' : `; crash set after ${crashAfter}`}`,
  )

  const stop = async (): Promise<void> => {
    await consumer.stop() // lets the message in hand finish, returns the rest to RabbitMQ
    await transport.close()
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
