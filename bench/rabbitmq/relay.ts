/**
 * Measurement 1, outbox relay PostgreSQL → RabbitMQ: how fast a prefilled outbox drains into a
 * quorum queue, against bare amqplib publishing the same messages.
 *
 * - bare: the messages (the outbox bench's ~200-byte body, the same ids and keys) published with
 *   amqplib on one confirm channel, `window` (1,000) confirms in flight, with the properties the
 *   transport sets (persistent, mandatory, id, key header), to the run's topic exchange, routed to
 *   the group queue the relay fills. No database on this side: it is the broker's and the driver's
 *   own speed, what a relay could reach at best.
 * - relay: one `OutboxRelay` (`PostgresOutboxStore`, `RabbitMqTransport`) with `batchSize` 250 and
 *   `concurrency` 4: four batches in flight, so at most 1,000 messages await a confirm, the
 *   baseline's window. It runs its loop (`start()`) until every row is marked published (counted
 *   through `onMetrics`), then `stop()`. Its publisher and store sit behind wrappers that add up
 *   the time spent inside `publish` and inside `claim`/`markPublished`, to show where time goes.
 * - relay, defaults (info): `batchSize` 100, `concurrency` 1: one batch at a time, each waiting
 *   for its confirms before the next claim.
 *
 * Before each timed drain the queue is purged; on the relay side the outbox is truncated, filled
 * with `rows` rows (keys drawn from `keys` values, so every claim of 100 finds 100 keys with a head
 * row: full batches to the end), then `ANALYZE`d. After it, the queue must hold exactly `rows`
 * messages. Cases alternate in rotated order per round.
 */
import {
  type MarkAndClaim,
  OutboxRelay,
  type Publisher,
  type TransportMessage,
} from 'switchyard-bus'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import type { Backend, BenchStore } from '../outbox/backends.js'
import { drainRelays, refillOutbox } from '../outbox/relay-throughput.js'
import { outboxRecords, TOPIC } from '../outbox/workload.js'
import { type Broker, outgoing, publishWindowed } from './broker.js'
import { type Samples, samples, timeCase } from './samples.js'

export interface RelayBenchOptions {
  readonly rows: number
  readonly rounds: number
  readonly keys: number
  /** The measured relay: rows per claim and batches in flight. */
  readonly batchSize: number
  readonly concurrency: number
  /** Confirms in flight on the bare side. */
  readonly window: number
}

/** Per case, one sample per round. */
export interface RelayBenchResult {
  readonly rows: number
  readonly keys: number
  readonly bare: Samples
  readonly relay: Samples
  readonly relaySerial: Samples
  /** Where a relay's batches spent their time, per round. */
  readonly split: { readonly relay: BatchSplit; readonly relaySerial: BatchSplit }
}

type Case = 'bare' | 'relay' | 'relaySerial'

/** Per round: where a batch spends its time, summed over workers. */
export interface BatchSplit {
  /** Time inside `publish` / (time inside `publish` + time inside the store's claim and mark). */
  readonly publishShare: number[]
  /** One `publish` call (a batch, confirms included). */
  readonly publishMs: number[]
  /** One batch's claim and mark. */
  readonly storeMs: number[]
}

const split = (): BatchSplit => ({ publishShare: [], publishMs: [], storeMs: [] })

const GROUP = 'relay'

/**
 * Adds up the time the store spends in `claim`, `markPublished` and `markAndClaim`, by shadowing them
 * on the instance (its private fields rule out a wrapper object); `restore` takes them off.
 */
function timeStore(store: BenchStore): { ms: () => number; restore: () => void } {
  let ms = 0
  const timed =
    <A extends unknown[], R>(f: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const start = performance.now()
      try {
        return await f(...args)
      } finally {
        ms += performance.now() - start
      }
    }
  const own = store as unknown as {
    claim: BenchStore['claim']
    markPublished: BenchStore['markPublished']
    markAndClaim: MarkAndClaim['markAndClaim']
  }
  own.claim = timed(store.claim.bind(store))
  own.markPublished = timed(store.markPublished.bind(store))
  own.markAndClaim = timed((store as BenchStore & MarkAndClaim).markAndClaim.bind(store))
  return {
    ms: () => ms,
    restore: () => {
      delete (own as Partial<typeof own>).claim
      delete (own as Partial<typeof own>).markPublished
      delete (own as Partial<typeof own>).markAndClaim
    },
  }
}

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
      relaySerial: samples(),
      split: { relay: split(), relaySerial: split() },
    }
    const cases: Case[] = ['bare', 'relay', 'relaySerial']
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
          await refillOutbox(db, store, records)
          const publisher = new TimedPublisher(transport)
          const timed = timeStore(store)
          const shape =
            c === 'relay'
              ? { batchSize: options.batchSize, concurrency: options.concurrency }
              : { batchSize: 100, concurrency: 1 }
          try {
            await timeCase(result[c], options.rows, () =>
              drain(store, publisher, shape, `bench-${c}`, options.rows),
            )
          } finally {
            timed.restore()
          }
          const where = result.split[c]
          where.publishShare.push(publisher.ms / (publisher.ms + timed.ms()))
          where.publishMs.push(publisher.ms / publisher.calls)
          where.storeMs.push(timed.ms() / publisher.calls)
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

/** Runs one relay of the given shape until `rows` rows were marked published (drainRelays). */
function drain(
  store: BenchStore,
  publisher: Publisher,
  shape: { readonly batchSize: number; readonly concurrency: number },
  owner: string,
  rows: number,
): Promise<void> {
  return drainRelays(
    (onPublished) => [
      new OutboxRelay({
        store,
        publisher,
        ...shape,
        owner,
        statusIntervalMs: 0,
        onMetrics: (m) => onPublished(m.published),
      }),
    ],
    rows,
  )
}
