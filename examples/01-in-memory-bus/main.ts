/**
 * `npm start`: the in-memory bus on a small allocation domain, with no services needed.
 * Shows typed results, follow-up events drained FIFO with causation ids, an event handler
 * failure that is isolated, a transient failure retried, a query, and typed errors.
 */
import {
  defineCommand,
  defineEvent,
  defineQuery,
  isSwitchyardError,
  type Logger,
  MessageBus,
  retry,
} from 'switchyard-bus'
import { z } from 'zod'

const Allocate = defineCommand(
  'Allocate',
  z.object({ orderId: z.string(), sku: z.string(), qty: z.number().int().positive() }),
).returns<string>()
const Allocated = defineEvent(
  'Allocated',
  z.object({ orderId: z.string(), sku: z.string(), batchRef: z.string() }),
)
const OutOfStock = defineEvent('OutOfStock', z.object({ sku: z.string() }))
const GetAllocation = defineQuery('GetAllocation', z.object({ orderId: z.string() })).returns<
  string | undefined
>()

// A pino-compatible logger printing one line per entry; pass pino itself in a real service.
const consoleLogger: Logger = {
  debug: () => undefined,
  info: (fields, message) => console.log(`  [info] ${message ?? ''} ${JSON.stringify(fields)}`),
  warn: (fields, message) =>
    console.log(`  [warn] ${message ?? ''} ${(fields as { err?: Error }).err?.message ?? ''}`),
  error: (fields, message) =>
    console.log(`  [error] ${message ?? ''}: ${(fields as { err?: Error }).err?.message ?? ''}`),
}

const stock = new Map([['LAMP', { batchRef: 'batch-001', available: 10 }]])
const allocations = new Map<string, string>()
let flakyMailer = 1 // the mailer fails once, then works: retry() covers it

const bus = new MessageBus({
  logger: consoleLogger,
  middleware: [retry({ attempts: 3, backoff: { initialDelay: 10 } })],
  onHandlerError: (error, { handler, message }) =>
    console.log(`  hook: ${handler} failed on ${message.type}`),
})

bus.handle(Allocate, (cmd, ctx) => {
  const batch = stock.get(cmd.payload.sku)
  if (batch === undefined || batch.available < cmd.payload.qty) {
    ctx.publish(OutOfStock({ sku: cmd.payload.sku }))
    return 'none'
  }
  batch.available -= cmd.payload.qty
  ctx.publish(
    Allocated({ orderId: cmd.payload.orderId, sku: cmd.payload.sku, batchRef: batch.batchRef }),
  )
  return batch.batchRef
})
bus.handle(Allocated, function updateReadModel(event) {
  allocations.set(event.payload.orderId, event.payload.batchRef)
  console.log(
    `  read model: ${event.payload.orderId} → ${event.payload.batchRef} (causation ${event.causationId?.slice(0, 8)}…)`,
  )
})
bus.handle(Allocated, function sendConfirmation(event, ctx) {
  if (flakyMailer-- > 0) throw new Error('mail server timeout')
  console.log(`  email sent for ${event.payload.orderId} on attempt ${ctx.attempt}`)
})
bus.handle(OutOfStock, function alertBuyer() {
  throw new Error('the buyer pager is down')
})
bus.handle(GetAllocation, (query) => allocations.get(query.payload.orderId))

async function main(): Promise<void> {
  console.log('1. execute Allocate (typed result, follow-ups drained before it resolves):')
  const batchRef = await bus.execute(Allocate({ orderId: 'order-1', sku: 'LAMP', qty: 3 }))
  console.log(`  → execute resolved with ${batchRef}`)

  console.log('2. an event handler fails: it is logged and reported, the call still succeeds:')
  console.log(`  → ${await bus.execute(Allocate({ orderId: 'order-2', sku: 'SOFA', qty: 1 }))}`)

  console.log('3. query the read model:')
  console.log(`  → order-1 is in ${await bus.query(GetAllocation({ orderId: 'order-1' }))}`)

  console.log('4. invalid input gets a typed error:')
  try {
    await bus.execute(Allocate({ orderId: 'order-3', sku: 'LAMP', qty: -1 }))
  } catch (error) {
    if (isSwitchyardError(error)) console.log(`  → ${error.code}: ${error.message}`)
  }
  console.log('demo finished')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
