import assert from 'node:assert/strict'
import { defineCommand, defineEvent, MessageBus } from 'switchyard-bus'

const Allocate = defineCommand('Allocate')
const Allocated = defineEvent('Allocated')
const Notified = defineEvent('Notified').withPayload<{ by: string }>()

const log: string[] = []
const bus = new MessageBus()
bus.handle(Allocate, (_cmd, ctx) => {
  ctx.publish(Allocated())
  ctx.publish(Notified({ by: 'Allocate' }))
  log.push('Allocate')
})
bus.handle(Allocated, (_event, ctx) => {
  ctx.publish(Notified({ by: 'Allocated' }))
  log.push('Allocated #1')
})
bus.handle(Allocated, () => void log.push('Allocated #2'))
bus.handle(Notified, (event) => void log.push(`Notified by ${event.payload.by}`))

async function main(): Promise<void> {
  await bus.execute(Allocate()) // resolves once the queue is empty
  assert.deepEqual(log, [
    'Allocate',
    'Allocated #1',
    'Allocated #2',
    'Notified by Allocate',
    'Notified by Allocated',
  ])
}
void main()
