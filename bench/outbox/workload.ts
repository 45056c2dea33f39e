/**
 * The data every outbox measurement uses: the business table, outbox records, and the plain
 * queue table of the relay baseline. The body is built once (the benchmark measures the outbox,
 * not serialisation); ids are fresh UUIDv7s, as the library makes them.
 */
import { type OutboxAppend, type SqlExecutor, uuidv7 } from 'switchyard-bus'
import type { Database } from './backends.js'

export const TOPIC = 'orders'
export const TYPE = 'OrderPlaced'
/** Ordering keys are spread over this many values (the brief: "e.g. 1000"). */
export const KEYS = 1000

/** A CloudEvents-like JSON body of exactly BODY_BYTES bytes. */
export const BODY_BYTES = 200
export const BODY: Uint8Array = makeBody(BODY_BYTES)

function makeBody(size: number): Uint8Array {
  const head = JSON.stringify({
    specversion: '1.0',
    type: TYPE,
    source: '/bench/orders',
    datacontenttype: 'application/json',
    data: { sku: 'LAMP-0042', qty: 1, pad: '' },
  })
  // Pad inside the last string so the body stays valid JSON of the exact size.
  const padded = head.replace('"pad":""', `"pad":"${'x'.repeat(size - head.length)}"`)
  return new TextEncoder().encode(padded)
}

/** One outbox record: the ~200-byte body, a key drawn at random out of `keys` values. */
export function outboxRecord(keys = KEYS): OutboxAppend {
  const key = `customer-${Math.floor(Math.random() * keys)}`
  return { id: uuidv7(), topic: TOPIC, key, type: TYPE, body: BODY }
}

export function outboxRecords(n: number, keys = KEYS): OutboxAppend[] {
  return Array.from({ length: n }, () => outboxRecord(keys))
}

/** The business table of the append measurement: what the transaction exists for. */
export async function createOrders(db: Database): Promise<void> {
  await db.sql.query(`CREATE TABLE "${db.schema}".orders (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sku        text NOT NULL,
    qty        integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
  )`)
}

/** The business write, the same statement on both sides of the append measurement. */
export async function insertOrder(db: Database, tx: SqlExecutor): Promise<void> {
  await tx.query(`INSERT INTO "${db.schema}".orders (sku, qty) VALUES ($1, $2)`, ['LAMP-0042', 1])
}

/**
 * The relay baseline's queue: the outbox's columns that a relay reads, a `published` flag, and the
 * indexes a hand-written queue would have (the primary key, the unique message id, and a partial
 * index on the unpublished rows in order). No per-key order, leases or fencing: that is what the
 * ratio prices.
 */
export async function createPlainQueue(db: Database): Promise<void> {
  const t = `"${db.schema}".plain`
  await db.sql.query(`CREATE TABLE ${t} (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id           text NOT NULL UNIQUE,
    topic        text NOT NULL,
    key          text,
    type         text NOT NULL,
    body         bytea NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    published    boolean NOT NULL DEFAULT false,
    published_at timestamptz
  )`)
  await db.sql.query(`CREATE INDEX plain_due ON ${t} (seq) WHERE NOT published`)
}

/** Inserts records into the plain queue in one statement (the shape `append` uses, unnest). */
export async function insertPlain(
  db: Database,
  tx: SqlExecutor,
  records: readonly OutboxAppend[],
): Promise<void> {
  await tx.query(
    `INSERT INTO "${db.schema}".plain (id, topic, key, type, body)
     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])`,
    [
      records.map((r) => r.id),
      records.map((r) => r.topic),
      records.map((r) => r.key ?? null),
      records.map((r) => r.type),
      records.map((r) => Buffer.from(r.body.buffer, r.body.byteOffset, r.body.byteLength)),
    ],
  )
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms))

/** Percentile by nearest rank, of values sorted ascending. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}
