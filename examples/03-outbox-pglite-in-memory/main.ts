/** Run: npx tsx examples/03-outbox-pglite-in-memory/main.ts */
import { decodeEnvelope } from 'switchyard-bus'
import { createApp, waitForEmptyOutbox } from './app.js'
import { AddBatch, Allocate, GetAllocations } from './domain.js'

async function main(): Promise<void> {
  const app = await createApp({ notify: (text) => console.log(`  in process: ${text}`) })
  try {
    console.log(
      '1. two products, in PGlite in memory: LAMP (batch-1, 10 units), TABLE (batch-2, 5)',
    )
    await app.bus.execute(AddBatch({ ref: 'batch-1', sku: 'LAMP', qty: 10 }))
    await app.bus.execute(AddBatch({ ref: 'batch-2', sku: 'TABLE', qty: 5 }))

    console.log(
      '2. allocate order lines: each commits the product and its Allocated event together',
    )
    const lines = [
      { orderId: 'order-1', sku: 'LAMP', qty: 4 },
      { orderId: 'order-2', sku: 'TABLE', qty: 2 },
      { orderId: 'order-3', sku: 'LAMP', qty: 5 },
      { orderId: 'order-4', sku: 'LAMP', qty: 3 }, // only 1 LAMP left: out of stock
    ]
    for (const line of lines) {
      try {
        const batchRef = await app.bus.execute(Allocate(line))
        console.log(`  ${line.orderId}: ${line.qty} × ${line.sku} → ${batchRef}`)
      } catch (error) {
        console.log(`  ${line.orderId}: ${line.qty} × ${line.sku} → failed: ${String(error)}`)
      }
    }
    console.log(`  LAMP left in stock: ${await app.stock('LAMP')} (order-4 changed nothing)`)

    console.log('3. in-process handlers already ran; the integration events wait in the outbox')
    for (const orderId of ['order-1', 'order-2', 'order-3', 'order-4']) {
      const refs = await app.bus.query(GetAllocations({ orderId }))
      console.log(`  read model: ${orderId} → ${refs.length > 0 ? refs.join(', ') : 'nothing'}`)
    }
    for (const row of await app.outboxRows())
      console.log(`  outbox: ${row.type} key ${row.key} #${row.keySeq}, ${row.state}`)
    console.log(`  published so far: ${app.transport.published('allocations').length}`)

    console.log('4. the relay publishes them to the in-memory transport, in order per key')
    using _printing = app.transport.onPublish((topic, message) => {
      const { message: event } = decodeEnvelope(message.body)
      const { orderId } = event.payload as { orderId: string }
      console.log(`  published to ${topic}: key ${message.key}, ${event.type} ${orderId}`)
    })
    // Each claim takes only the oldest unpublished row of each key: order-3 waits for order-1.
    // The relay marks a batch published in the same statement that claims the next one.
    const relay = app.relay({
      onMetrics: ({ published }) => {
        if (published > 0) console.log(`  relay: ${published} marked published`)
      },
    })
    relay.start()
    const status = await waitForEmptyOutbox(app.store)
    await relay.stop() // graceful: lets the batch in hand finish
    console.log(`  outbox: ${status.pending} pending, ${status.published} published; relay stopped`)

    const first = app.transport.published('allocations')[0]
    const envelope = JSON.parse(new TextDecoder().decode(first?.body)) as Record<string, unknown>
    const { specversion, type, source, partitionkey, data } = envelope
    console.log('5. each message is a CloudEvents envelope, e.g. the first:')
    console.log(`  ${JSON.stringify({ specversion, type, source, partitionkey, data })}`)
  } finally {
    await app.close()
  }
  console.log('demo finished')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
