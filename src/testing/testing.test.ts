import { AssertionError } from 'node:assert'
import { describe, expect, it } from 'vitest'
import {
  Allocate,
  Allocated,
  OutOfStock,
  Product,
  products,
} from '../core/__fixtures__/allocation.js'
import { defineEvent, defineQuery, InMemoryUnitOfWork, MessageBus, transient } from '../index.js'
import { BusRecorder, BusSpecification, expectSwitchyardError } from './index.js'

const GetAvailable = defineQuery('GetAvailable').withPayload<{ sku: string }>().returns<number>()

function createBus() {
  const collection = products()
  const bus = new MessageBus<{ uow: InMemoryUnitOfWork<{ products: typeof collection }> }>({
    dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
  })
  bus.handle(
    Allocate,
    async (cmd, ctx) => {
      const product = await ctx.deps.uow.repositories.products.get(cmd.payload.sku)
      if (product === undefined) throw new Error(`unknown sku ${cmd.payload.sku}`)
      const left = product.allocate(cmd.payload.orderId, cmd.payload.qty)
      await ctx.deps.uow.commit()
      return left
    },
    { deps: ['uow'] },
  )
  bus.handle(GetAvailable, (q) => collection.find(q.payload.sku)?.available ?? 0)
  return { bus, collection }
}

const spec = BusSpecification.for(() => {
  const { bus, collection } = createBus()
  collection.seed(new Product('LAMP', 10))
  return bus
})

describe('BusSpecification', () => {
  it('runs given, when, then on a fresh bus', async () => {
    await spec.when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 })).thenReturns(8)
    // a fresh bus: the first scenario's allocation is gone
    await spec.when(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 2 })).thenReturns(8)
  })

  it('applies given messages before when, and reports only what when published', async () => {
    await spec
      .given(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 9 }))
      .when(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 2 }))
      .then(async ({ result, published, recorded, bus }) => {
        expect(result).toBe(1)
        expect(published.map((e) => e.type)).toEqual(['OutOfStock'])
        expect(recorded.map((e) => e.type)).toEqual(['OutOfStock'])
        await expect(bus.query(GetAvailable({ sku: 'LAMP' }))).resolves.toBe(1)
      })
  })

  it('checks published events by partial payload', async () => {
    await spec
      .when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }))
      .thenPublished(Allocated, { orderId: 'o1' })
    await expect(
      spec
        .when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }))
        .thenPublished(Allocated, { orderId: 'nope' }),
    ).rejects.toThrow(AssertionError)
    await expect(
      spec.when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 })).thenPublishedNothing(),
    ).rejects.toThrow(AssertionError)
  })

  it('asserts failures by code, and refuses to call a success a failure', async () => {
    await spec.when(GetAvailable({ sku: 'SOFA' })).thenReturns(0)
    const unknown = BusSpecification.for(() => new MessageBus())
    await unknown
      .when(Allocate({ orderId: 'o', sku: 'LAMP', qty: 1 }))
      .thenFails('SWITCHYARD_NO_HANDLER')
    await expect(
      spec.when(Allocate({ orderId: 'o', sku: 'LAMP', qty: 1 })).thenFails('SWITCHYARD_NO_HANDLER'),
    ).rejects.toThrow(AssertionError)
    await expect(
      spec.when(Allocate({ orderId: 'o', sku: 'NOPE', qty: 1 })).thenReturns(1),
    ).rejects.toThrow(/expected success, but the dispatch failed: Error: unknown sku NOPE/)
  })

  it('accepts set-up functions of the bus', async () => {
    await spec
      .given(async (bus) => bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 10 })))
      .when(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 1 }))
      .thenPublished(OutOfStock, { sku: 'LAMP' })
  })
})

describe('BusRecorder', () => {
  it('captures every message and the events units of work recorded, with expect helpers', async () => {
    const { bus, collection } = createBus()
    collection.seed(new Product('LAMP', 1))
    using recorder = BusRecorder.attach(bus)
    await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
    await bus.execute(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 1 }))
    expect(recorder.messages.map((m) => m.type)).toEqual([
      'Allocate',
      'Allocated',
      'Allocate',
      'OutOfStock',
    ])
    recorder.expectPublishedTypes(Allocated, OutOfStock)
    expect(recorder.expectPublished(Allocated, { orderId: 'o1', qty: 1 }).payload.sku).toBe('LAMP')
    recorder.expectNotPublished(defineEvent('Deallocated'))
    expect(() => recorder.expectPublished(Allocated, { orderId: 'o2' })).toThrow(AssertionError)
    expect(() => recorder.expectNotPublished(OutOfStock)).toThrow(AssertionError)
    expect(recorder.recorded.map((e) => e.type)).toEqual(['Allocated', 'OutOfStock'])
    recorder.clear()
    expect(recorder.messages).toEqual([])
  })

  it('stops recording once disposed', async () => {
    const { bus, collection } = createBus()
    collection.seed(new Product('LAMP', 5))
    const recorder = BusRecorder.attach(bus)
    recorder[Symbol.dispose]()
    await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
    expect(recorder.messages).toEqual([])
  })
})

describe('expectSwitchyardError', () => {
  it('fails when the action succeeds or fails with another code', async () => {
    await expect(
      expectSwitchyardError(Promise.resolve(1), 'SWITCHYARD_NO_HANDLER'),
    ).rejects.toThrow(/but it succeeded/)
    await expect(
      expectSwitchyardError(Promise.reject(new Error('plain')), 'SWITCHYARD_NO_HANDLER'),
    ).rejects.toThrow(/got Error: plain/)
  })
})
