/** Run: npx tsx examples/02-unit-of-work-and-aggregates/main.ts */
import { isSwitchyardError, type Logger } from 'switchyard-bus'
import { AddBatch, Allocate, GetAllocations } from './domain.js'
import { createService } from './service.js'

async function main(): Promise<void> {
  // retry() logs each retried failure at warn: count the concurrency conflicts it resolved.
  let conflicts = 0
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: (fields) => {
      const err = (fields as { err?: unknown }).err
      if (isSwitchyardError(err, 'SWITCHYARD_CONCURRENCY')) conflicts++
    },
    error: (fields, message) => console.error(message, fields),
  }
  const notify = (text: string): void => console.log(`  notification: ${text}`)
  const { bus, products } = createService({ logger, notify })
  await bus.execute(AddBatch({ ref: 'batch-1', sku: 'LAMP', qty: 10 }))

  console.log('1. allocate: the command commits, then its Allocated event updates the read model')
  const first = await bus.execute(Allocate({ orderId: 'order-1', sku: 'LAMP', qty: 4 }))
  console.log(`  allocated to ${first}`)
  const refs = await bus.query(GetAllocations({ orderId: 'order-1' }))
  console.log(`  read model: order-1 → ${refs.join(', ')}`)

  console.log(
    '2. two concurrent allocations of one product: one conflicts, is retried, both succeed',
  )
  const [a, b] = await Promise.all([
    bus.execute(Allocate({ orderId: 'order-2', sku: 'LAMP', qty: 3 })),
    bus.execute(Allocate({ orderId: 'order-3', sku: 'LAMP', qty: 3 })),
  ])
  const left = products.find('LAMP')?.batches[0]?.available
  console.log(`  order-2 → ${a}, order-3 → ${b}; left in stock: ${left}`)
  console.log(`  concurrency conflicts retried: ${conflicts}`)

  console.log('3. nothing left: the aggregate records OutOfStock instead')
  const last = await bus.execute(Allocate({ orderId: 'order-4', sku: 'LAMP', qty: 5 }))
  console.log(`  allocated to ${last}`)
  console.log('demo finished')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
