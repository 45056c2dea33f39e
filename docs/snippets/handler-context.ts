import assert from 'node:assert/strict'
import { defineCommand, defineEvent, defineQuery, type Event, MessageBus } from 'switchyard-bus'
import { expectSwitchyardError } from 'switchyard-bus/testing'

const Allocate = defineCommand('Allocate').returns<string>()
const Reserve = defineCommand('Reserve').returns<number>()
const Reserved = defineEvent('Reserved')
const Allocated = defineEvent('Allocated').withPayload<{ batchRef: string }>()
const GetBatch = defineQuery('GetBatch').returns<string>()

const seen: Event[] = []
let publishLate = (): void => undefined
const bus = new MessageBus()
bus.handle(GetBatch, () => 'batch-1')
bus.handle(Reserve, (_cmd, ctx) => {
  ctx.publish(Reserved()) // staged until this handler succeeds
  return 3
})
bus.handle(Allocate, async (_cmd, ctx) => {
  const qty = await ctx.execute(Reserve()) // runs now, returns its result
  const batchRef = await ctx.query(GetBatch())
  ctx.publish(Allocated({ batchRef: `${batchRef} (${qty})` }))
  assert.deepEqual(seen, []) // no follow-up has run yet
  publishLate = () => ctx.publish(Allocated({ batchRef: 'late' }))
  return batchRef
})
bus.handle(Reserved, (event) => void seen.push(event))
bus.handle(Allocated, (event) => void seen.push(event))

async function main(): Promise<void> {
  const cmd = Allocate(undefined, { correlationId: 'request-42' })
  assert.equal(await bus.execute(cmd), 'batch-1')
  assert.deepEqual(
    seen.map((event) => event.type),
    ['Reserved', 'Allocated'],
  )
  assert.ok(seen.every((event) => event.correlationId === 'request-42'))
  assert.equal(seen[1]?.causationId, cmd.id) // Allocated was caused by the Allocate command
  await expectSwitchyardError(publishLate, 'SWITCHYARD_CONTEXT_CLOSED')
}
void main()
