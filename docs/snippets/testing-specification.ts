import assert from 'node:assert/strict'
import { defineCommand } from 'switchyard-bus'
import { BusSpecification } from 'switchyard-bus/testing'
import { Allocate, Allocated, createBus, GetStock, OutOfStock } from './testing-app.js'

const spec = BusSpecification.for(() => createBus()) // a fresh bus for every scenario
const Restock = defineCommand('Restock') // not handled yet

async function main(): Promise<void> {
  await spec.when(Allocate({ sku: 'LAMP', qty: 4 })).thenReturns(6)
  await spec.when(Allocate({ sku: 'LAMP', qty: 4 })).thenReturns(6) // no trace of the first run
  await spec
    .given(Allocate({ sku: 'LAMP', qty: 8 })) // what happened before
    .when(Allocate({ sku: 'LAMP', qty: 4 }))
    .thenPublished(OutOfStock, { sku: 'LAMP' })
  await spec
    .given((bus) => bus.override('clock', () => () => new Date(0))) // set-up with the bus
    .when(Allocate({ sku: 'LAMP', qty: 1 }))
    .thenPublished(Allocated, { at: '1970-01-01T00:00:00.000Z' })
  await spec
    .given(Allocate({ sku: 'LAMP', qty: 3 }))
    .when(GetStock({ sku: 'LAMP' }))
    .thenReturns(7)
  await spec.when(Restock()).thenFails('SWITCHYARD_NO_HANDLER')

  const allocate = Allocate({ sku: 'LAMP', qty: 2 })
  await spec.when(allocate).then(async (outcome) => {
    const types = (events: readonly { type: string }[]) => events.map((event) => event.type)
    assert.deepEqual(types(outcome.published), ['Allocated']) // the events handled during when
    assert.deepEqual(types(outcome.recorded), ['Allocated']) // what its units of work committed
    assert.equal(outcome.recorded[0]?.causationId, allocate.id) // linked to the handled command
    assert.equal(await outcome.bus.query(GetStock({ sku: 'LAMP' })), 8)
  })
  await spec.when(Allocate({ sku: 'SOFA', qty: 1 })).then(({ failed, error, published }) => {
    assert.ok(failed && error instanceof Error && error.message === 'unknown sku SOFA')
    assert.deepEqual(published, [])
  })
  const wrong = spec.when(Allocate({ sku: 'LAMP', qty: 1 })).thenPublishedNothing()
  await assert.rejects(wrong, assert.AssertionError) // a failed then… is an AssertionError
}
void main()
