import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import {
  decodeEnvelope,
  defineEvent,
  encodeEnvelope,
  InMemoryTransport,
  OutboxRelay,
  type OutboxAppend,
  type Publisher,
} from '../../../src/index.js'
import { fromPg, PostgresOutboxStore } from '../../../src/postgres/index.js'
import { RecordingLogger } from '../../../src/testing/index.js'
import { createPool, inTransaction, uniqueSchema, withPool } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
})

const Allocated = defineEvent('Allocated', { topic: 'allocation' }).withPayload<{
  orderId: string
  n: number
}>()
const toRecord = (key: string, n: number): OutboxAppend => {
  const message = Allocated({ orderId: key, n })
  return {
    id: message.id,
    topic: 'allocation',
    key,
    type: message.type,
    body: encodeEnvelope(message, { source: '/test', key }),
  }
}
const payloadOf = (body: Uint8Array) =>
  decodeEnvelope(body).message.payload as { orderId: string; n: number }
const waitFor = async (check: () => boolean, ms = 10_000): Promise<void> => {
  const until = Date.now() + ms
  while (!check()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe.skipIf(pool === undefined)('OutboxRelay on PostgreSQL', () => {
  let schema: string
  let store: PostgresOutboxStore
  beforeEach(async () => {
    schema = uniqueSchema()
    store = new PostgresOutboxStore({ pool: pool!, schema })
    await store.ensureSchema()
  })
  afterEach(async () => {
    await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })

  it('publishes every committed row once, in commit order per key, and nothing rolled back', async () => {
    for (let n = 1; n <= 5; n++) {
      await inTransaction(pool!, (tx) => store.append(tx, [toRecord('a', n), toRecord('b', n)]))
    }
    await inTransaction(pool!, async (tx) => {
      await store.append(tx, [toRecord('a', 99)])
      throw new Error('rolled back')
    }).catch(() => undefined)
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport, batchSize: 3 })
    let total = 0
    for (let published = -1; published !== 0;) total += published = await relay.runOnce()
    expect(total).toBe(10)
    const seen = transport.published('allocation').map((m) => payloadOf(m.body))
    expect(seen.filter((p) => p.orderId === 'a').map((p) => p.n)).toEqual([1, 2, 3, 4, 5])
    expect(seen.filter((p) => p.orderId === 'b').map((p) => p.n)).toEqual([1, 2, 3, 4, 5])
    expect((await store.status()).published).toBe(10)
  })

  it('keeps rows whose publish failed, retries them with backoff, and never lets a key overtake', async () => {
    await inTransaction(pool!, (tx) => store.append(tx, [toRecord('k', 1), toRecord('k', 2)]))
    const transport = new InMemoryTransport()
    let failures = 2
    const flaky: Publisher = {
      publish: async (topic, messages) => {
        if (failures-- > 0) throw new Error('broker unavailable')
        await transport.publish(topic, messages)
      },
      close: async () => undefined,
    }
    const logger = new RecordingLogger('warn')
    const relay = new OutboxRelay({
      store,
      publisher: flaky,
      backoff: { initialDelay: 1, maxDelay: 5 },
      logger,
    })
    for (let i = 0; i < 50 && transport.published('allocation').length < 2; i++) {
      await relay.runOnce()
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    expect(transport.published('allocation').map((m) => payloadOf(m.body).n)).toEqual([1, 2])
    expect(
      logger.entries.filter((e) => e.message === 'outbox publish failed; rows will be retried'),
    ).toHaveLength(2)
  })

  it('dead-letters a row after maxAttempts, keeping the last error, and blocks its key', async () => {
    await inTransaction(pool!, (tx) => store.append(tx, [toRecord('k', 1), toRecord('k', 2)]))
    const failing: Publisher = {
      publish: () => Promise.reject(new Error('message rejected: too large')),
      close: async () => undefined,
    }
    const relay = new OutboxRelay({
      store,
      publisher: failing,
      maxAttempts: 2,
      backoff: { initialDelay: 1, maxDelay: 1 },
    })
    for (let i = 0; i < 10; i++) {
      await relay.runOnce()
      await new Promise((resolve) => setTimeout(resolve, 15))
    }
    const { rows } = await pool!.query<{ state: string; last_error: string; attempts: number }>(
      `SELECT state, last_error, attempts FROM "${schema}".outbox ORDER BY key_seq`,
    )
    expect(rows).toEqual([
      { state: 'dead', last_error: 'message rejected: too large', attempts: 2 },
      { state: 'pending', last_error: null, attempts: 0 },
    ])
  })

  it('with several batches in flight (concurrency 4), still publishes each key in commit order', async () => {
    const keys = ['a', 'b', 'c', 'd', 'e']
    for (let n = 1; n <= 40; n++)
      await inTransaction(pool!, (tx) =>
        store.append(
          tx,
          keys.map((k) => toRecord(k, n)),
        ),
      )
    let inFlight = 0
    let most = 0
    const transport = new InMemoryTransport()
    const slow: Publisher = {
      publish: async (topic, messages) => {
        most = Math.max(most, ++inFlight)
        await new Promise((resolve) => setTimeout(resolve, 5 + Math.random() * 10))
        inFlight--
        await transport.publish(topic, messages)
      },
      close: () => Promise.resolve(),
    }
    const relay = new OutboxRelay({ store, publisher: slow, batchSize: 2, concurrency: 4 })
    relay.start()
    await waitFor(() => transport.published('allocation').length === 200, 20_000)
    await relay.stop()
    expect(most).toBeGreaterThan(1)
    const seen = transport.published('allocation').map((m) => payloadOf(m.body))
    const inOrder = Array.from({ length: 40 }, (_, i) => i + 1)
    for (const k of keys)
      expect(seen.filter((p) => p.orderId === k).map((p) => p.n)).toEqual(inOrder)
    expect((await store.status()).published).toBe(200)
  })

  it('runs as a loop, wakes on NOTIFY long before its poll interval, and stops gracefully', async () => {
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport, pollIntervalMs: 60_000 })
    relay.start()
    await new Promise((resolve) => setTimeout(resolve, 200)) // LISTEN in place, loop idle
    const appended = Date.now()
    await inTransaction(pool!, (tx) => store.append(tx, [toRecord('k', 1)]))
    await waitFor(() => transport.published('allocation').length === 1, 10_000)
    expect(Date.now() - appended).toBeLessThan(60_000)
    await relay.stop()
    await inTransaction(pool!, (tx) => store.append(tx, [toRecord('k', 2)]))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(transport.published('allocation')).toHaveLength(1)
  })

  it('sends one NOTIFY per window, and the relay still publishes a coalesced row committed after its claim, long before its poll interval', async () => {
    let wakes = 0
    const stopListening = await store.listen(() => wakes++)
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport, pollIntervalMs: 60_000 })
    try {
      relay.start()
      await new Promise((resolve) => setTimeout(resolve, 200)) // LISTEN in place, loop idle
      // B appends right after A (inside A's window: no NOTIFY of its own) and commits only after
      // the relay, woken by A's NOTIFY, has published A and found nothing more.
      const clientB = await pool!.connect()
      try {
        await clientB.query('BEGIN')
        await inTransaction(pool!, (tx) => store.append(tx, [toRecord('a', 1)]))
        await store.append(fromPg(clientB), [toRecord('b', 1)])
        await waitFor(() => transport.published('allocation').length === 1, 10_000)
        await new Promise((resolve) => setTimeout(resolve, 30))
        await clientB.query('COMMIT')
      } finally {
        clientB.release()
      }
      const committed = Date.now()
      await waitFor(() => transport.published('allocation').length === 2, 10_000)
      expect(Date.now() - committed).toBeLessThan(1000) // the poll interval is 60 s
      expect(wakes).toBe(1)
    } finally {
      await relay.stop()
      await stopListening()
    }
  })

  it('runs its statements as named prepared statements, unless prepare is false', async () => {
    const prepared = async (prepare: boolean): Promise<string[]> => {
      const client = await pool!.connect()
      try {
        const quiet = new PostgresOutboxStore({ pool: pool!, schema, notify: false })
        await client.query('BEGIN')
        await quiet.append(fromPg(client, { prepare }), [toRecord(`k-${String(prepare)}`, 1)])
        await client.query('COMMIT')
        const { rows } = await client.query<{ name: string }>(
          `SELECT name FROM pg_prepared_statements WHERE statement LIKE $1`,
          [`%"${schema}"%`],
        )
        return rows.map((r) => r.name)
      } finally {
        client.release(true) // a fresh connection for the next case
      }
    }
    expect(await prepared(false)).toEqual([])
    const names = await prepared(true)
    expect(names).toHaveLength(1)
    expect(names[0]).toMatch(/^switchyard_[0-9a-f]{24}$/)
  })

  it('listens again after its LISTEN connection is killed, and wakes the relay once it is back', async () => {
    let wakes = 0
    const stopListening = await store.listen(() => wakes++)
    try {
      const channel = `${schema}_outbox`
      const listener = async () =>
        (
          await pool!.query<{ pid: number }>(
            `SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'idle'`,
            [`LISTEN "${channel}"`],
          )
        ).rows.map((r) => r.pid)
      const [first] = await listener()
      expect(first).toBeDefined()
      await pool!.query('SELECT pg_terminate_backend($1)', [first])
      await waitFor(() => wakes === 1, 10_000) // the wake-up after re-listening
      const [second] = await listener()
      expect(second).toBeDefined()
      expect(second).not.toBe(first)
      await inTransaction(pool!, (tx) => store.append(tx, [toRecord('k', 1)]))
      await waitFor(() => wakes === 2, 10_000) // a NOTIFY reaches the new connection
    } finally {
      await stopListening()
    }
  })

  it('takes its listeners off the pooled client when it stops listening, and a stopped listener is never woken', async () => {
    await withPool(url!, 1, async (one) => {
      const single = new PostgresOutboxStore({ pool: one, schema })
      const client = await one.connect()
      const baseline = {
        error: client.listenerCount('error'),
        notification: client.listenerCount('notification'),
      }
      client.release()
      const stopped: number[] = []
      for (let i = 0; i < 12; i++) {
        let wakes = 0
        const stop = await single.listen(() => wakes++)
        await stop()
        stopped.push(wakes)
      }
      let live = 0
      const stop = await single.listen(() => live++)
      try {
        await inTransaction(pool!, (tx) => single.append(tx, [toRecord('k', 1)]))
        await waitFor(() => live === 1)
      } finally {
        await stop()
      }
      expect(stopped.every((n) => n === 0)).toBe(true)
      const again = await one.connect() // the pool's only client, the one that listened
      try {
        expect(again).toBe(client)
        expect(again.listenerCount('error')).toBe(baseline.error)
        expect(again.listenerCount('notification')).toBe(baseline.notification)
      } finally {
        again.release()
      }
    })
  })
})
