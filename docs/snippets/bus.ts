import assert from 'node:assert/strict'
import { defineCommand, defineEvent, HandlerRegistry, MessageBus } from 'switchyard-bus'
import { expectSwitchyardError } from 'switchyard-bus/testing'

const Allocate = defineCommand('Allocate').withPayload<{ sku: string }>().returns<string>()
const Allocated = defineEvent('Allocated')

class AllocateHandler {
  constructor(private readonly batches: ReadonlyMap<string, string>) {}
  handle(cmd: ReturnType<typeof Allocate>): string {
    return this.batches.get(cmd.payload.sku) ?? 'none'
  }
}

const log: string[] = []
const note = (text: string) => (): void => {
  log.push(text)
}
const orders = new HandlerRegistry() // a module of handlers
  .handle(Allocate, new AllocateHandler(new Map([['LAMP', 'batch-1']])))
  .handle(Allocated, note('orders #1'))
  .handle(Allocated, note('orders #2'))
const bus = new MessageBus({ handlers: [orders] })
bus.handle(Allocated, note('bus'))

async function main(): Promise<void> {
  await bus.start() // optional: the first dispatch starts the bus too
  const batchRef: string = await bus.execute(Allocate({ sku: 'LAMP' }))
  assert.equal(batchRef, 'batch-1')
  await bus.dispatch(Allocated()) // dispatch() routes any kind
  assert.deepEqual(log, ['bus', 'orders #1', 'orders #2']) // the bus's own handlers first
  const late = () => bus.handle(Allocated, note('late'))
  await expectSwitchyardError(late, 'SWITCHYARD_REGISTRATION_FROZEN')
}
void main()
