/**
 * Measurement 1, outbox relay PostgreSQL → RabbitMQ: how fast a prefilled outbox drains into a
 * quorum queue, against bare amqplib publishing the same messages.
 *
 * - bare: the messages (the outbox bench's ~200-byte body, the same ids and keys) published with
 *   amqplib on one confirm channel, `window` (1,000) confirms in flight, with the properties the
 *   transport sets (persistent, mandatory, id, key header), to the run's topic exchange, routed to
 *   the group queue the relay fills. No database on this side: it is the broker's and the driver's
 *   own speed, what a relay could reach at best.
 * - relay: one `OutboxRelay` (`PostgresOutboxStore`, `RabbitMqTransport`, `batchSize` 100, other
 *   options default) calling `runOnce()` until every row is published. Its publisher is the
 *   transport behind a wrapper that adds up the time spent inside `publish` (the rest of the drain
 *   is the store's claims and marks), to show where the time goes.
 * - relay, batch 1,000 (info): the same with `batchSize` 1,000, as many confirms in flight per
 *   batch as the baseline's window.
 *
 * Before each timed drain the queue is purged; on the relay side the outbox is truncated, filled
 * with `rows` rows (keys drawn from `keys` values, so every claim of 100 finds 100 keys with a head
 * row: full batches to the end), then `ANALYZE`d. After it, the queue must hold exactly `rows`
 * messages. Cases alternate in rotated order per round.
 */
import {
  type OutboxAppend,
  OutboxRelay,
  type Publisher,
  type TransportMessage,
} from 'switchyard-bus'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import type { Backend, BenchStore, Database } from '../outbox/backends.js'
import { outboxRecords, TOPIC } from '../outbox/workload.js'
import { type Broker, outgoing, publishWindowed } from './broker.js'
import { type Samples, samples, timeCase } from './samples.js'

export interface RelayBenchOptions {
  readonly rows: number
  readonly rounds: number
  readonly keys: number
  readonly batchSize: number
  readonly bigBatchSize: number
  /** Confirms in flight on the bare side. */
  readonly window: number
}

/** Per case, one sample per round. */
export interface RelayBenchResult {
  readonly rows: number
  readonly keys: number
  readonly bare: Samples
  readonly relay: Samples
  readonly relayBig: Samples
  /** Where a relay's batches spent their time, per round. */
  readonly split: { readonly relay: BatchSplit; readonly relayBig: BatchSplit }
}

type Case = 'bare' | 'relay' | 'relayBig'

/** Per round: the share of the drain inside `publish`, and ms per batch in and outside it. */
export interface BatchSplit {
  readonly publishShare: number[]
  /** One `publish` call (a batch, confirms included). */
  readonly publishMs: number[]
  /** The rest of a batch: the store's claim and mark. */
  readonly storeMs: number[]
}

const split = (): BatchSplit => ({ publishShare: [], publishMs: [], storeMs: [] })

const GROUP = 'relay'
const FILL_BATCH = 1000

/** A publisher that adds up the time spent in the transport's `publish`. */
class TimedPublisher implements Publisher {
  ms = 0
  calls = 0
  constructor(private readonly inner: Publisher) {}
  async publish(topic: string, messages: readonly TransportMessage[]): Promise<void> {
    const start = performance.now()
    try {
      await this.inner.publish(topic, messages)
    } finally {
      this.ms += performance.now() - start
      this.calls++
    }
  }
  close(): Promise<void> {
    return this.inner.close()
  }
}

export async function measureRelay(
  backend: Backend,
  broker: Broker,
  options: RelayBenchOptions,
  progress: (text: string) => void,
): Promise<RelayBenchResult> {
  const db = await backend.open('bench_rmq_relay')
  const transport = new RabbitMqTransport({
    connection: () => broker.connect(),
    namespace: broker.namespace,
    unroutable: 'reject', // a message that reached no queue fails the batch: none may be lost
  })
  const bareConnection = await broker.connect()
  try {
    const store = db.store({ notify: false })
    await store.ensureSchema()
    const topology = await transport.declareTopology(TOPIC, GROUP)
    broker.track(topology)
    const channel = await bareConnection.createConfirmChannel()
    const result: RelayBenchResult = {
      rows: options.rows,
      keys: options.keys,
      bare: samples(),
      relay: samples(),
      relayBig: samples(),
      split: { relay: split(), relayBig: split() },
    }
    const cases: Case[] = ['bare', 'relay', 'relayBig']
    for (let r = 0; r < options.rounds; r++) {
      for (let k = 0; k < cases.length; k++) {
        const c = cases[(k + r) % cases.length]!
        const records = outboxRecords(options.rows, options.keys)
        await broker.purge(topology.queue)
        if (c === 'bare') {
          const messages = records.map((m) => outgoing(m.id, m.key, m.body))
          await timeCase(result.bare, options.rows, () =>
            publishWindowed(channel, broker.namespace, TOPIC, messages, options.window),
          )
        } else {
          await prefill(db, store, records)
          const publisher = new TimedPublisher(transport)
          const batchSize = c === 'relay' ? options.batchSize : options.bigBatchSize
          const relay = new OutboxRelay({ store, publisher, batchSize, owner: `bench-${c}` })
          const ms = await timeCase(result[c], options.rows, () => drain(relay, options.rows))
          const where = result.split[c]
          where.publishShare.push(publisher.ms / ms)
          where.publishMs.push(publisher.ms / publisher.calls)
          where.storeMs.push((ms - publisher.ms) / publisher.calls)
        }
        const queued = await broker.ready(topology.queue)
        if (queued !== options.rows)
          throw new Error(`${c}: the queue holds ${queued} messages, expected ${options.rows}`)
      }
      progress(`  relay round ${r + 1}/${options.rounds} done`)
    }
    await broker.purge(topology.queue)
    return result
  } finally {
    await transport.close()
    await bareConnection.close()
    await db.close()
  }
}

/** Empties the outbox, appends the records in transactions of FILL_BATCH, then ANALYZE. */
async function prefill(
  db: Database,
  store: BenchStore,
  records: readonly OutboxAppend[],
): Promise<void> {
  const outbox = `"${db.schema}".outbox`
  const keys = `"${db.schema}".outbox_keys`
  await db.sql.query(`TRUNCATE ${outbox}, ${keys}`)
  for (let i = 0; i < records.length; i += FILL_BATCH) {
    const chunk = records.slice(i, i + FILL_BATCH)
    await db.transaction((tx) => store.append(tx, chunk))
  }
  await db.sql.query(`ANALYZE ${outbox}, ${keys}`)
}

/** `runOnce()` until `rows` rows are published; one relay alone always finds a head row. */
async function drain(relay: OutboxRelay, rows: number): Promise<void> {
  let published = 0
  while (published < rows) {
    const n = await relay.runOnce()
    if (n === 0) throw new Error(`the relay found nothing with ${rows - published} rows left`)
    published += n
  }
}
