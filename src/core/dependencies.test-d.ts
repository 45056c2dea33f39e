import { describe, expectTypeOf, it } from 'vitest'
import {
  defineCommand,
  HandlerRegistry,
  InMemoryCollection,
  InMemoryUnitOfWork,
  MessageBus,
  scoped,
  singleton,
  transient,
} from '../index.js'
import type { Product } from './__fixtures__/allocation.js'

const Go = defineCommand('Go').returns<string>()
const products = new InMemoryCollection<Product, string>({ id: (p) => p.sku })

interface AppDeps {
  clock: () => Date
  uow: InMemoryUnitOfWork<{ products: typeof products }>
  tenant: string
}

const bus = new MessageBus<AppDeps>({
  dependencies: {
    clock: () => new Date(),
    uow: transient(() => new InMemoryUnitOfWork({ products })),
    tenant: scoped(async ({ get }) => `${(await get('clock'))().getFullYear()}`),
  },
})

describe('typed dependencies', () => {
  it('types ctx.deps with exactly the declared names', () => {
    bus.handle(
      Go,
      (_cmd, ctx) => {
        expectTypeOf(ctx.deps.uow).toEqualTypeOf<AppDeps['uow']>()
        expectTypeOf(ctx.deps.clock).toEqualTypeOf<() => Date>()
        // @ts-expect-error tenant was not declared
        void ctx.deps.tenant
        return 'ok'
      },
      { deps: ['uow', 'clock'] },
    )
  })

  it('gives an empty deps object to handlers that declare none', () => {
    bus.handle(Go, (_cmd, ctx) => {
      // @ts-expect-error nothing declared
      void ctx.deps.uow
      return 'ok'
    })
  })

  it('refuses to declare a name the dependency type does not have', () => {
    // @ts-expect-error 'nope' is not a dependency
    bus.handle(Go, () => 'x', { deps: ['nope'] })
  })

  it('types repositories from the collections of an in-memory unit of work', () => {
    bus.handle(
      Go,
      async (_cmd, ctx) => {
        const product = await ctx.deps.uow.repositories.products.get('LAMP')
        expectTypeOf(product).toEqualTypeOf<Product | undefined>()
        return product?.sku ?? 'none'
      },
      { deps: ['uow'] },
    )
  })

  it('checks the dependency map against the dependency type', () => {
    new MessageBus<AppDeps>({
      dependencies: {
        clock: () => new Date(),
        uow: transient(() => new InMemoryUnitOfWork({ products })),
        // @ts-expect-error tenant must be a string or a provider of one
        tenant: 42,
      },
    })
    new MessageBus<{ n: number }>({
      // @ts-expect-error the factory must make a number
      dependencies: { n: singleton(() => 'text') },
    })
  })

  it('types overrides by name', () => {
    using _ok = bus.override('clock', () => () => new Date(0))
    // @ts-expect-error the override must make a clock
    using _bad = bus.override('clock', () => 42)
  })

  it('lets modules declare handlers against the same dependency type', () => {
    const orders = new HandlerRegistry<AppDeps>().handle(Go, (_c, ctx) => ctx.deps.tenant, {
      deps: ['tenant'],
    })
    expectTypeOf(new MessageBus<AppDeps>({ handlers: [orders] })).toExtend<MessageBus<AppDeps>>()
  })
})
