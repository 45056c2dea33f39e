import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { decodeEnvelope } from 'switchyard-bus'
import { BusRecorder } from 'switchyard-bus/testing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type App, createApp, waitForEmptyOutbox } from './app.js'
import { AddBatch, Allocate, Allocated, GetAllocations, OutOfStock } from './domain.js'

// One database for the file: PGlite takes seconds to start. Each test uses its own products.
let app: App
const notes: string[] = []
beforeAll(async () => {
  app = await createApp({ notify: (text) => void notes.push(text) })
}, 120_000)
afterAll(async () => {
  await app?.close()
})

/** Starts a relay, waits until the outbox is empty, stops it. */
async function relayAll(): Promise<void> {
  const relay = app.relay()
  relay.start()
  try {
    await waitForEmptyOutbox(app.store)
  } finally {
    await relay.stop()
  }
}

const orderIdOf = (body: Uint8Array): string =>
  (decodeEnvelope(body).message.payload as { orderId: string }).orderId

describe('the allocation service on PGlite with the outbox', { timeout: 30_000 }, () => {
  it('runs in-process handlers at once, holds Allocated in the outbox, and the relay publishes it once with its key as a CloudEvent', async () => {
    await app.bus.execute(AddBatch({ ref: 'lamps', sku: 'LAMP', qty: 10 }))
    using recorder = BusRecorder.attach(app.bus)
    const command = Allocate({ orderId: 'o1', sku: 'LAMP', qty: 8 }, { correlationId: 'req-1' })
    await expect(app.bus.execute(command)).resolves.toBe('lamps')
    expect(await app.stock('LAMP')).toBe(2)

    // In process, before execute resolved: the read model, and LowStock (which has no topic).
    const event = recorder.expectPublished(Allocated, { orderId: 'o1', batchRef: 'lamps' })
    expect(event).toMatchObject({ correlationId: 'req-1', causationId: command.id })
    expect(await app.bus.query(GetAllocations({ orderId: 'o1' }))).toEqual(['lamps'])
    expect(notes).toContain('low stock: LAMP, 2 left')

    // Only the integration event is in the outbox, and nothing is published until the relay runs.
    expect(
      (await app.outboxRows()).filter((r) => r.key === 'LAMP').map((r) => [r.type, r.state]),
    ).toEqual([['Allocated', 'pending']])
    expect(app.transport.published('allocations')).toEqual([])

    await relayAll()
    const published = app.transport
      .published('allocations')
      .filter((m) => orderIdOf(m.body) === 'o1')
    expect(published).toHaveLength(1)
    const [sent] = published
    expect(sent!.id).toBe(event.id)
    expect(sent!.key).toBe('LAMP')
    const decoded = decodeEnvelope(sent!.body)
    expect(decoded.source).toBe('/allocation')
    expect(decoded.key).toBe('LAMP')
    expect(decoded.message).toMatchObject({
      kind: 'event',
      type: 'Allocated',
      id: event.id,
      correlationId: 'req-1', // the same links as the in-process copy
      causationId: command.id,
      payload: { orderId: 'o1', sku: 'LAMP', qty: 8, batchRef: 'lamps' },
    })
    expect(JSON.parse(new TextDecoder().decode(sent!.body))).toMatchObject({
      specversion: '1.0',
      datacontenttype: 'application/json',
      partitionkey: 'LAMP',
    })

    // Exactly once: the row is marked published, and another relay finds nothing to send.
    expect((await app.outboxRows()).find((r) => r.key === 'LAMP')?.state).toBe('published')
    expect(await app.relay().runOnce()).toBe(0)
    expect(
      app.transport.published('allocations').filter((m) => orderIdOf(m.body) === 'o1'),
    ).toHaveLength(1)
  })

  it('rejects an allocation out of stock, and stores and publishes nothing of it', async () => {
    await app.bus.execute(AddBatch({ ref: 'sofas', sku: 'SOFA', qty: 2 }))
    const rowsBefore = await app.outboxRows()
    using recorder = BusRecorder.attach(app.bus)

    await expect(
      app.bus.execute(Allocate({ orderId: 'too-big', sku: 'SOFA', qty: 3 })),
    ).rejects.toThrow(OutOfStock)

    expect(await app.stock('SOFA')).toBe(2)
    expect(await app.outboxRows()).toEqual(rowsBefore)
    expect((await app.store.status()).pending).toBe(0)
    expect(await app.bus.query(GetAllocations({ orderId: 'too-big' }))).toEqual([])
    recorder.expectNotPublished(Allocated)
    expect(await app.relay().runOnce()).toBe(0)
    expect(
      app.transport.published('allocations').filter((m) => orderIdOf(m.body) === 'too-big'),
    ).toEqual([])
  })

  it('publishes the allocations of each product in commit order, each once', async () => {
    await app.bus.execute(AddBatch({ ref: 'chairs', sku: 'CHAIR', qty: 100 }))
    await app.bus.execute(AddBatch({ ref: 'desks', sku: 'DESK', qty: 100 }))
    const committed = [
      ['c1', 'CHAIR'],
      ['d1', 'DESK'],
      ['c2', 'CHAIR'],
      ['c3', 'CHAIR'],
      ['d2', 'DESK'],
      ['c4', 'CHAIR'],
    ] as const
    for (const [orderId, sku] of committed)
      await app.bus.execute(Allocate({ orderId, sku, qty: 1 }))

    await relayAll()
    for (const sku of ['CHAIR', 'DESK']) {
      const sent = app.transport
        .published('allocations')
        .filter((m) => m.key === sku)
        .map((m) => orderIdOf(m.body))
      expect(sent).toEqual(committed.filter(([, s]) => s === sku).map(([orderId]) => orderId))
    }
    const rows = (await app.outboxRows()).filter((r) => r.key === 'CHAIR')
    expect(rows.map((r) => [r.keySeq, r.state])).toEqual([
      [1, 'published'],
      [2, 'published'],
      [3, 'published'],
      [4, 'published'],
    ])
  })

  it('runs main.ts, which prints the expected narrative and exits 0', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    // execFileSync throws if the process exits with anything but 0.
    const output = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'examples/03-outbox-pglite-in-memory/main.ts'],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    )
    let from = 0
    for (const pattern of readFileSync(new URL('./expected-output.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean)) {
      const match = new RegExp(pattern).exec(output.slice(from))
      expect(match, `expected /${pattern}/ in:\n${output}`).not.toBeNull()
      from += match!.index + match![0].length
    }
  }, 120_000)
})
