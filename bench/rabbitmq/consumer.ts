/**
 * Measurement 2, consuming from RabbitMQ into PostgreSQL: how fast a prefilled queue drains, one
 * transaction per message that inserts one row, with `Consumer` + inbox against bare amqplib.
 *
 * - bare: amqplib `consume` on a channel with `prefetch(concurrency)`; per delivery: `JSON.parse`
 *   of the body, then on a pooled connection `BEGIN; INSERT row; COMMIT`, then `ack`.
 * - bare + inbox (info): the same transaction with the inbox's statement written by hand first
 *   (`INSERT INTO inbox … ON CONFLICT DO NOTHING`, the row only if it inserted): what the
 *   exactly-once bookkeeping costs in SQL alone, without the library.
 * - consumer: `Consumer` (`concurrency` the same, so the same prefetch) on `RabbitMqTransport`,
 *   with a `PostgresInboxStore`; the event's handler takes a `PostgresUnitOfWork` (transient
 *   dependency), inserts the row through its transaction and commits (inbox record + row).
 *
 * Both sides use one `pg` pool of `concurrency` connections and the same group queue (quorum, as
 * the transport declares it), filled before each timed drain with the same `messages` CloudEvents
 * envelopes (keys drawn from `keys` values, so the consumer's one-at-a-time-per-key rule seldom
 * holds a delivery back) by the bare publisher. The clock runs from starting to consume until the
 * last message is settled (acked after its commit); then every side must have written exactly
 * `messages` rows and left the queue empty. Cases alternate in rotated order per round.
 */
import type { ChannelModel, ConsumeMessage } from 'amqplib'
import pg from 'pg'
import {
  Consumer,
  defineEvent,
  encodeEnvelope,
  MessageBus,
  type SqlExecutor,
  type Subscriber,
  transient,
} from 'switchyard-bus'
import { PostgresInboxStore, PostgresUnitOfWork } from 'switchyard-bus/postgres'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import type { Backend } from '../outbox/backends.js'
import { type Broker, type Outgoing, outgoing, publishWindowed } from './broker.js'
import { type Samples, samples, timeCase } from './samples.js'

export interface ConsumerBenchOptions {
  readonly messages: number
  readonly rounds: number
  readonly keys: number
  readonly concurrency: number
  /** Confirms in flight while filling the queue. */
  readonly window: number
}

/** Per case, one sample per round. */
export interface ConsumerBenchResult {
  readonly messages: number
  readonly concurrency: number
  readonly bare: Samples
  readonly bareInbox: Samples
  readonly consumer: Samples
}

type Case = 'bare' | 'bareInbox' | 'consumer'

const TOPIC = 'shipments'
/** The consumer's name: its group (so its queue) and its inbox scope. */
const NAME = 'inbox'
const HANDLER = 'ship'

const ShipmentRequested = defineEvent<{ orderId: string; customer: string; qty: number }>(
  'Bench.ShipmentRequested',
  { topic: TOPIC, key: (p) => p.customer },
)

export async function measureConsumer(
  backend: Backend,
  pgUrl: string,
  broker: Broker,
  options: ConsumerBenchOptions,
  progress: (text: string) => void,
): Promise<ConsumerBenchResult> {
  const db = await backend.open('bench_rmq_inbox')
  const pool = new pg.Pool({ connectionString: pgUrl, max: options.concurrency })
  pool.on('error', () => undefined) // an idle client losing its connection must not end the run
  const transport = new RabbitMqTransport({
    connection: () => broker.connect(),
    namespace: broker.namespace,
  })
  const bareConnection = await broker.connect()
  const rows = `"${db.schema}".shipments`
  const inboxTable = `"${db.schema}".inbox`
  try {
    const inbox = new PostgresInboxStore({ pool, schema: db.schema })
    await inbox.ensureSchema()
    await db.sql.query(`CREATE TABLE ${rows} (
      id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      message_id text NOT NULL,
      order_id   text NOT NULL,
      qty        integer NOT NULL
    )`)
    const topology = await transport.declareTopology(TOPIC, NAME)
    broker.track(topology)
    const fill = await bareConnection.createConfirmChannel()
    const messages = envelopes(options.messages, options.keys)

    const settled = new Counter()
    const consumer = inboxConsumer(pool, transport, inbox, rows, settled, options.concurrency)
    const result: ConsumerBenchResult = {
      messages: options.messages,
      concurrency: options.concurrency,
      bare: samples(),
      bareInbox: samples(),
      consumer: samples(),
    }
    const cases: Case[] = ['bare', 'bareInbox', 'consumer']
    for (let r = 0; r < options.rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + r) % cases.length]!
        await db.sql.query(`TRUNCATE ${rows}, ${inboxTable}`)
        await broker.purge(topology.queue)
        await publishWindowed(fill, broker.namespace, TOPIC, messages, options.window)
        await db.sql.query(`ANALYZE ${rows}, ${inboxTable}`)
        settled.reset(options.messages)
        const inboxSql = c === 'bareInbox' ? inboxTable : undefined
        await timeCase(result[c], options.messages, async () => {
          if (c !== 'consumer')
            return consumeBare(
              bareConnection,
              pool,
              topology.queue,
              rows,
              inboxSql,
              options,
              settled,
            )
          await consumer.start()
          await settled.done
        })
        if (c === 'consumer') await consumer.stop()
        await check(db.sql, broker, c, topology.queue, rows, options.messages)
      }
      progress(`  consumer round ${r + 1}/${options.rounds} done`)
    }
    return result
  } finally {
    await transport.close()
    await bareConnection.close()
    await pool.end()
    await db.close()
  }
}

/** The same CloudEvents envelopes for every round, as the bare publisher sends them. */
function envelopes(n: number, keys: number): Outgoing[] {
  return Array.from({ length: n }, (_, i) => {
    const event = ShipmentRequested({
      orderId: `order-${i}`,
      customer: `customer-${Math.floor(Math.random() * keys)}`,
      qty: 1 + (i % 5),
    })
    const body = encodeEnvelope(event, { source: '/bench/orders' })
    return outgoing(event.id, event.payload.customer, body)
  })
}

/** Counts settled messages; `done` resolves at the expected count, rejects on a failure. */
class Counter {
  count = 0
  #expected = 0
  #resolve: () => void = () => undefined
  #reject: (error: Error) => void = () => undefined
  done: Promise<void> = Promise.resolve()

  reset(expected: number): void {
    this.count = 0
    this.#expected = expected
    this.done = new Promise<void>((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
  }

  hit(): void {
    if (++this.count === this.#expected) this.#resolve()
  }

  fail(error: Error): void {
    this.#reject(error)
  }
}

/**
 * The library side: a bus whose handler inserts the row in a `PostgresUnitOfWork`, a `Consumer`
 * with the inbox, and the transport behind a subscriber that counts each settled delivery (the
 * subscription acks as soon as the handler resolves).
 */
function inboxConsumer(
  pool: pg.Pool,
  transport: RabbitMqTransport,
  inbox: PostgresInboxStore,
  rows: string,
  settled: Counter,
  concurrency: number,
): Consumer {
  const bus = new MessageBus({
    dependencies: {
      uow: transient(() => PostgresUnitOfWork.begin({ pool, repositories: () => ({}) })),
    },
  })
  bus.handle(
    ShipmentRequested,
    async (event, { deps: { uow } }) => {
      await uow.tx.query(`INSERT INTO ${rows} (message_id, order_id, qty) VALUES ($1, $2, $3)`, [
        event.id,
        event.payload.orderId,
        event.payload.qty,
      ])
      await uow.commit() // the row and the inbox record, together
    },
    { deps: ['uow'], name: HANDLER },
  )
  const counting: Subscriber = {
    subscribe: (topic, handler, subscribeOptions) =>
      transport.subscribe(
        topic,
        async (delivery, signal) => {
          const outcome = await handler(delivery, signal)
          if (outcome?.deadLetter !== undefined)
            settled.fail(new Error(`consumer dead-lettered a message: ${outcome.deadLetter}`))
          else settled.hit()
          return outcome
        },
        subscribeOptions,
      ),
    close: () => transport.close(),
  }
  return new Consumer({
    name: NAME,
    bus,
    subscriber: counting,
    events: [ShipmentRequested],
    inbox,
    concurrency,
    retry: { maxAttempts: 1 }, // a failure is a broken run: dead-letter at once, reported above
  })
}

/** The bare consumer: prefetch, one transaction per delivery, ack after COMMIT. */
async function consumeBare(
  connection: ChannelModel,
  pool: pg.Pool,
  queue: string,
  rows: string,
  inboxTable: string | undefined,
  options: ConsumerBenchOptions,
  settled: Counter,
): Promise<void> {
  const channel = await connection.createChannel()
  try {
    await channel.prefetch(options.concurrency)
    const handle = async (message: ConsumeMessage): Promise<void> => {
      const { id, data } = JSON.parse(message.content.toString('utf8')) as {
        id: string
        data: { orderId: string; qty: number }
      }
      const client = await pool.connect()
      try {
        await client.query('BEGIN')
        const fresh =
          inboxTable === undefined ||
          (
            await client.query(
              `INSERT INTO ${inboxTable} (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
              [`${NAME}/${HANDLER}`, id],
            )
          ).rowCount === 1
        if (fresh)
          await client.query(
            `INSERT INTO ${rows} (message_id, order_id, qty) VALUES ($1, $2, $3)`,
            [id, data.orderId, data.qty],
          )
        await client.query('COMMIT')
      } finally {
        client.release()
      }
      channel.ack(message)
      settled.hit()
    }
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message !== null) handle(message).catch((error: Error) => settled.fail(error))
      },
      { noAck: false },
    )
    await settled.done
    await channel.cancel(consumerTag)
  } finally {
    await channel.close()
  }
}

/** Every side must have written `expected` rows, and left nothing in the queue. */
async function check(
  sql: SqlExecutor,
  broker: Broker,
  c: Case,
  queue: string,
  rows: string,
  expected: number,
): Promise<void> {
  const { rows: counted } = await sql.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${rows}`)
  const n = counted[0]?.n
  const left = await broker.ready(queue)
  if (n !== expected || left !== 0)
    throw new Error(`${c}: ${String(n)} rows written, ${left} messages left; expected ${expected}`)
}
