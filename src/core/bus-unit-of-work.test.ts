import { setImmediate as tick } from 'node:timers/promises'
import { describe, expect, it, vi } from 'vitest'
import { type Event, InMemoryUnitOfWork, MessageBus, retry, transient } from '../index.js'
import { RecordingLogger } from '../testing/index.js'
import { Allocate, Allocated, OutOfStock, Product, products } from './__fixtures__/allocation.js'

type Collections = { products: ReturnType<typeof products> }
interface Deps {
  uow: InMemoryUnitOfWork<Collections>
}

function setup(
  options: { commit?: boolean; failAfterCommit?: boolean; logger?: RecordingLogger } = {},
) {
  const collection = products(new Product('LAMP', 10))
  const released: Event[] = []
  const bus = new MessageBus<Deps>({
    dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  })
  bus.handle(
    Allocate,
    async (cmd, ctx) => {
      const product = (await ctx.deps.uow.repositories.products.get(cmd.payload.sku))!
      const left = product.allocate(cmd.payload.orderId, cmd.payload.qty)
      if (options.commit !== false) await ctx.deps.uow.commit()
      if (options.failAfterCommit === true) throw new Error('failed after commit')
      return left
    },
    { deps: ['uow'] },
  )
  bus.handle(Allocated, (e) => void released.push(e))
  bus.handle(OutOfStock, (e) => void released.push(e))
  return { bus, collection, released }
}

describe('the unit of work wired into the bus', () => {
  it('releases the events of committed work into the FIFO queue, in recording order, linked to the command', async () => {
    const { bus, released } = setup()
    const cmd = Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 })
    await expect(bus.execute(cmd)).resolves.toBe(8)
    expect(released.map((e) => e.type)).toEqual(['Allocated'])
    expect(released[0]!.causationId).toBe(cmd.id)
    expect(released[0]!.correlationId).toBe(cmd.correlationId)
  })

  it('releases nothing from work that was not committed, and says so at debug level', async () => {
    const logger = new RecordingLogger('debug')
    const { bus, collection, released } = setup({ commit: false, logger })
    await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }))
    expect(released).toEqual([])
    expect(collection.find('LAMP')!.available).toBe(10)
    expect(logger.entries.map((e) => e.message)).toContain(
      'handler finished without committing its unit of work; rolled back, no events released',
    )
  })

  it('releases nothing from a handler that threw, even after it committed', async () => {
    const { bus, released } = setup({ failAfterCommit: true })
    await expect(bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }))).rejects.toThrow(
      'failed after commit',
    )
    expect(released).toEqual([])
  })

  it('gives each handler invocation its own unit of work', async () => {
    const made: InMemoryUnitOfWork[] = []
    const collection = products(new Product('LAMP', 10))
    const bus = new MessageBus<Deps>({
      dependencies: {
        uow: transient(() => {
          const uow = new InMemoryUnitOfWork({ products: collection })
          made.push(uow)
          return uow
        }),
      },
    })
    bus.handle(
      Allocate,
      async (cmd, ctx) => {
        await ctx.deps.uow.repositories.products.get('LAMP')
        await ctx.deps.uow.commit()
        return 0
      },
      { deps: ['uow'] },
    )
    await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
    await bus.execute(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 1 }))
    expect(made).toHaveLength(2)
    expect(made[0]).not.toBe(made[1])
  })

  it('re-runs a command on fresh state after a ConcurrencyError, so two concurrent commands both succeed', async () => {
    const collection = products(new Product('LAMP', 10))
    const attempts: string[] = []
    const released: Event[] = []
    const bus = new MessageBus<Deps>({
      dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
      middleware: [retry({ attempts: 3, backoff: { initialDelay: 1, maxDelay: 5 } })],
    })
    bus.handle(
      Allocate,
      async (cmd, ctx) => {
        attempts.push(`${cmd.payload.orderId}#${ctx.attempt}`)
        const product = (await ctx.deps.uow.repositories.products.get('LAMP'))!
        await tick() // both commands have loaded version 1 before either commits
        const left = product.allocate(cmd.payload.orderId, cmd.payload.qty)
        await ctx.deps.uow.commit()
        return left
      },
      { deps: ['uow'] },
    )
    bus.handle(Allocated, (e) => void released.push(e))
    const results = await Promise.all([
      bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 })),
      bus.execute(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 3 })),
    ])
    expect(results.sort()).toEqual([5, 8])
    expect(attempts).toEqual(['o1#1', 'o2#1', 'o2#2'])
    const stored = collection.find('LAMP')!
    expect(stored.available).toBe(5)
    expect(stored.allocations).toEqual(['o1', 'o2'])
    expect(released.map((e) => (e.payload as { orderId: string }).orderId)).toEqual(['o1', 'o2'])
  })

  it('releases the events of a retried command once, from the attempt that committed', async () => {
    const collection = products(new Product('LAMP', 10))
    const released: Event[] = []
    const onAllocated = vi.fn((e: Event) => void released.push(e))
    let calls = 0
    const bus = new MessageBus<Deps>({
      dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
      middleware: [retry({ attempts: 2, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(
      Allocate,
      async (cmd, ctx) => {
        const product = (await ctx.deps.uow.repositories.products.get('LAMP'))!
        product.allocate(cmd.payload.orderId, 1)
        if (++calls === 1) throw new Error('transient, before commit')
        await ctx.deps.uow.commit()
        return product.available
      },
      { deps: ['uow'] },
    )
    bus.handle(Allocated, onAllocated)
    await expect(bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))).resolves.toBe(9)
    expect(onAllocated).toHaveBeenCalledTimes(1)
  })
})
