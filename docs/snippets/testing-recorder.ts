import assert from 'node:assert/strict'
import { BusRecorder, expectSwitchyardError, RecordingLogger } from 'switchyard-bus/testing'
import { Allocate, Allocated, createBus, GetStock, OutOfStock } from './testing-app.js'

async function main(): Promise<void> {
  const logger = new RecordingLogger('debug') // keeps entries at debug and above
  const bus = createBus(logger)
  {
    using recorder = BusRecorder.attach(bus) // records until disposed
    using _clock = bus.override('clock', () => () => new Date(0)) // only inside this block
    await bus.execute(Allocate({ sku: 'LAMP', qty: 4 }))
    await bus.execute(Allocate({ sku: 'LAMP', qty: 9 }))
    recorder.expectPublishedTypes(Allocated, OutOfStock) // exactly these, in this order
    const allocated = recorder.expectPublished(Allocated, { qty: 4 }) // a partial, deep match
    assert.equal(allocated.payload.at, '1970-01-01T00:00:00.000Z')
    const types = recorder.messages.map((message) => message.type) // commands and queries too
    assert.deepEqual(types, ['Allocate', 'Allocated', 'Allocate', 'OutOfStock'])
    assert.equal(recorder.recorded.length, 2) // the events units of work committed
    assert.deepEqual(recorder.recorded, recorder.published) // the linked copies the bus released
    recorder.clear()
    assert.equal(await bus.query(GetStock({ sku: 'LAMP' })), 6)
    recorder.expectNotPublished(Allocated)
  }
  await assert.rejects(bus.execute(Allocate({ sku: 'SOFA', qty: 1 })), /unknown sku SOFA/)
  const failure = logger.entries.find((entry) => entry.message === 'command handler failed')
  assert.equal(failure?.level, 'debug') // the bus's activity level
  assert.equal(failure?.fields.messageType, 'Allocate')

  await bus.close()
  const closed = await expectSwitchyardError(
    bus.query(GetStock({ sku: 'LAMP' })),
    'SWITCHYARD_BUS_CLOSED',
  )
  assert.equal(closed.retryable, false) // the error is returned for further checks
}
void main()
