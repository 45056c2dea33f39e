import assert from 'node:assert/strict'
import { defineCommand, defineEvent, isSwitchyardError, MessageBus } from 'switchyard-bus'

const Allocate = defineCommand('Allocate')
const Allocated = defineEvent('Allocated')

const log: string[] = []
function makeBus(eventHandlerErrors: 'isolate' | 'reject'): MessageBus {
  const bus = new MessageBus({
    eventHandlerErrors,
    onHandlerError: (_error, info) => void log.push(`hook: ${info.handler}`),
  })
  bus.handle(Allocate, (_cmd, ctx) => ctx.publish(Allocated()))
  bus.handle(Allocated, function sendEmail() {
    throw new Error('mailer down')
  })
  bus.handle(Allocated, () => void log.push('second handler ran'))
  return bus
}

async function main(): Promise<void> {
  await makeBus('isolate').execute(Allocate()) // resolves: the failure was isolated
  assert.deepEqual(log, ['hook: sendEmail', 'second handler ran'])

  const rejecting = makeBus('reject')
  const failure: unknown = await rejecting.execute(Allocate()).catch((e: unknown) => e)
  assert.ok(failure instanceof AggregateError) // rejected once the queue was drained
  const [first] = failure.errors as unknown[]
  assert.ok(isSwitchyardError(first, 'SWITCHYARD_EVENT_HANDLER_FAILED'))
  assert.equal(first.message, 'Event handler "sendEmail" failed on "Allocated": mailer down')
  assert.deepEqual(first.cause, new Error('mailer down'))
}
void main()
