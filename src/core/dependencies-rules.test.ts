import { asValue, createContainer } from 'awilix'
import { describe, expect, it, vi } from 'vitest'
import {
  defineCommand,
  defineQuery,
  ErrorCode,
  fromContainer,
  InMemoryCollection,
  InMemoryUnitOfWork,
  MessageBus,
  scoped,
  singleton,
  transient,
} from '../index.js'
import { BusRecorder, expectSwitchyardError } from '../testing/index.js'
import { Allocate, Allocated, Product, products } from './__fixtures__/allocation.js'

const Go = defineCommand('Go').returns<string>()

class Resource {
  disposed = false;
  [Symbol.dispose](): void {
    this.disposed = true
  }
}

describe('dependency rules', () => {
  it('undoes overrides in any order: disposing the outer one first keeps the inner one, then restores the original', async () => {
    const bus = new MessageBus<{ name: string }>({ dependencies: { name: 'original' } })
    bus.handle(Go, (_c, ctx) => ctx.deps.name, { deps: ['name'] })
    const outer = bus.override('name', () => 'outer')
    const inner = bus.override('name', () => 'inner')
    outer[Symbol.dispose]()
    await expect(bus.execute(Go())).resolves.toBe('inner')
    inner[Symbol.dispose]()
    await expect(bus.execute(Go())).resolves.toBe('original')
  })

  it('keeps two container adapters in one map apart', async () => {
    const a = createContainer().register({ x: asValue('from a') })
    const b = createContainer().register({ y: asValue('from b') })
    const bus = new MessageBus<{ x: string; y: string }>({
      dependencies: {
        ...fromContainer<{ x: string }, typeof a>({
          names: ['x'],
          createScope: () => a.createScope(),
          resolve: (s, n) => s.resolve(n),
        }),
        ...fromContainer<{ y: string }, typeof b>({
          names: ['y'],
          createScope: () => b.createScope(),
          resolve: (s, n) => s.resolve(n),
        }),
      },
    })
    bus.handle(Go, (_c, ctx) => `${ctx.deps.x} / ${ctx.deps.y}`, { deps: ['x', 'y'] })
    await expect(bus.execute(Go())).resolves.toBe('from a / from b')
  })

  it('refuses a captive dependency: a singleton factory asking for a scoped value', async () => {
    interface D {
      request: Resource
      cache: { request: Resource }
    }
    const bus = new MessageBus<D>({
      dependencies: {
        request: scoped(() => new Resource()),
        cache: singleton<{ request: Resource }, D>(async ({ get }) => ({
          request: await get('request'),
        })),
      },
    })
    bus.handle(Go, () => 'x', { deps: ['cache'] })
    const error = await expectSwitchyardError(bus.execute(Go()), ErrorCode.CaptiveDependency)
    expect(error.message).toContain('"cache"')
  })

  it('never disposes values it did not make, but disposes its own singletons on close', async () => {
    const given = new Resource()
    const bus = new MessageBus<{ given: Resource; made: Resource }>({
      dependencies: { given, made: singleton(() => new Resource()) },
    })
    let made: Resource | undefined
    bus.handle(
      Go,
      (_c, ctx) => {
        made = ctx.deps.made
        return 'x'
      },
      { deps: ['given', 'made'] },
    )
    await bus.execute(Go())
    await bus.close()
    expect(given.disposed).toBe(false)
    expect(made?.disposed).toBe(true)
  })
})

describe('units of work from dependencies', () => {
  it('links a unit of work reached through another factory, so its events are released', async () => {
    const collection = products(new Product('LAMP', 5))
    interface D {
      uow: InMemoryUnitOfWork<{ products: typeof collection }>
      service: { uow: InMemoryUnitOfWork<{ products: typeof collection }> }
    }
    const bus = new MessageBus<D>({
      dependencies: {
        uow: transient(() => new InMemoryUnitOfWork({ products: collection })),
        service: transient<D['service'], D>(async ({ get }) => ({ uow: await get('uow') })),
      },
    })
    bus.handle(
      Allocate,
      async (cmd, ctx) => {
        const product = (await ctx.deps.service.uow.repositories.products.get('LAMP'))!
        const left = product.allocate(cmd.payload.orderId, cmd.payload.qty)
        await ctx.deps.service.uow.commit()
        return left
      },
      { deps: ['service'] },
    )
    const released = vi.fn()
    bus.handle(Allocated, released)
    await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
    expect(released).toHaveBeenCalledTimes(1)
  })

  it('refuses a unit of work from a scoped or singleton provider', async () => {
    const collection = products(new Product('LAMP', 5))
    const bus = new MessageBus<{ uow: InMemoryUnitOfWork }>({
      dependencies: { uow: scoped(() => new InMemoryUnitOfWork({ products: collection })) },
    })
    bus.handle(Go, () => 'x', { deps: ['uow'] })
    const error = await expectSwitchyardError(bus.execute(Go()), ErrorCode.Configuration)
    expect(error.message).toContain('transient()')
  })

  it("refuses a query handler's commit that recorded events, and rolls it back", async () => {
    const collection = products(new Product('LAMP', 5))
    const Peek = defineQuery('Peek').returns<number>()
    const bus = new MessageBus<{ uow: InMemoryUnitOfWork<{ products: typeof collection }> }>({
      dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
    })
    bus.handle(
      Peek,
      async (_q, ctx) => {
        const product = (await ctx.deps.uow.repositories.products.get('LAMP'))!
        product.allocate('sneaky', 1)
        await ctx.deps.uow.commit()
        return product.available
      },
      { deps: ['uow'] },
    )
    await expectSwitchyardError(bus.query(Peek()), ErrorCode.QuerySideEffect)
    expect(collection.find('LAMP')!.available).toBe(5)
  })

  it('reports committed events to observers linked to the command', async () => {
    const collection = products(new Product('LAMP', 5))
    const bus = new MessageBus<{ uow: InMemoryUnitOfWork<{ products: typeof collection }> }>({
      dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: collection })) },
    })
    bus.handle(
      Allocate,
      async (cmd, ctx) => {
        ;(await ctx.deps.uow.repositories.products.get('LAMP'))!.allocate(cmd.payload.orderId, 1)
        await ctx.deps.uow.commit()
        return 0
      },
      { deps: ['uow'] },
    )
    using recorder = BusRecorder.attach(bus)
    const cmd = Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 })
    await bus.execute(cmd)
    expect(recorder.recorded[0]?.causationId).toBe(cmd.id)
  })
})

describe('in-memory details', () => {
  it('awaits added hooks, so a failing one fails the load', async () => {
    const uow = new InMemoryUnitOfWork({ products: products(new Product('LAMP', 5)) })
    uow.on('added', async () => Promise.reject(new Error('audit store down')))
    await expect(uow.repositories.products.get('LAMP')).rejects.toThrow('audit store down')
  })

  it('keeps versions when a custom clone does not copy them', async () => {
    const collection = new InMemoryCollection<Product, string>({
      id: (p) => p.sku,
      clone: (p) => new Product(p.sku, p.available),
    })
    collection.seed(new Product('LAMP', 5))
    const uow = new InMemoryUnitOfWork({ products: collection })
    ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 1)
    await uow.commit()
    expect(collection.find('LAMP')!.available).toBe(4)
  })
})
