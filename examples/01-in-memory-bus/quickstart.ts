import { defineCommand, defineEvent, MessageBus } from 'switchyard-bus'
import { z } from 'zod'

const AllocatePayload = z.object({ orderId: z.string(), sku: z.string() })
const Allocate = defineCommand('Allocate', AllocatePayload).returns<string>()
const Allocated = defineEvent('Allocated', z.object({ orderId: z.string(), batchRef: z.string() }))

const bus = new MessageBus()
bus.handle(Allocate, (cmd, ctx) => {
  const batchRef = `batch-${cmd.payload.sku.toLowerCase()}`
  ctx.publish(Allocated({ orderId: cmd.payload.orderId, batchRef })) // queued until we succeed
  return batchRef
})
bus.handle(Allocated, (event) => {
  console.log(`allocated ${event.payload.orderId} to ${event.payload.batchRef}`)
})

async function main(): Promise<void> {
  const batchRef: string = await bus.execute(Allocate({ orderId: 'order-1', sku: 'LAMP' }))
  console.log(`execute resolved with ${batchRef}, after every follow-up ran`)
}
main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
