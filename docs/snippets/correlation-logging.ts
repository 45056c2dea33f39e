import assert from 'node:assert/strict'
import { correlation, defineCommand, defineEvent, logging, MessageBus } from 'switchyard-bus'
import { RecordingLogger } from 'switchyard-bus/testing'

const PlaceOrder = defineCommand('PlaceOrder').withPayload<{ orderId: string }>()
const OrderPlaced = defineEvent('OrderPlaced').withPayload<{ orderId: string }>()

// Domain code with no ctx in sight: under correlation() the messages it creates are linked.
const placeOrder = (orderId: string) => OrderPlaced({ orderId })

const logger = new RecordingLogger('info') // any pino-compatible logger, pino() itself included
const bus = new MessageBus({ logger, middleware: [correlation(), logging({ level: 'info' })] })
let placed: ReturnType<typeof OrderPlaced> | undefined
bus.handle(PlaceOrder, (cmd, ctx) => {
  ctx.logger.info({ orderId: cmd.payload.orderId }, 'placing order')
  placed = placeOrder(cmd.payload.orderId)
})

async function main(): Promise<void> {
  const cmd = PlaceOrder({ orderId: 'o1' }, { correlationId: 'request-7' })
  await bus.execute(cmd)
  assert.equal(placed?.correlationId, 'request-7')
  assert.equal(placed?.causationId, cmd.id)

  const [placing, handled] = logger.entries
  assert.deepEqual(placing?.fields, {
    correlationId: 'request-7',
    messageId: cmd.id,
    orderId: 'o1',
  })
  assert.equal(handled?.message, 'message handled') // logging(): type, id, handler, durationMs…
  assert.equal(handled?.fields.handler, 'PlaceOrder handler')
}
void main()
