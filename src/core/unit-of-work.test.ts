import { describe, expect, it, vi } from 'vitest'
import {
  ConcurrencyError,
  ErrorCode,
  InMemoryCollection,
  InMemoryUnitOfWork,
  cloneDeep,
} from '../index.js'
import { expectSwitchyardError } from '../testing/index.js'
import { Product, products } from './__fixtures__/allocation.js'

const typesOf = (events: readonly { type: string }[]): string[] => events.map((e) => e.type)

describe('aggregates and the in-memory repository', () => {
  it('records events in order and keeps them pending until collected', async () => {
    const uow = new InMemoryUnitOfWork({ products: products(new Product('LAMP', 10)) })
    const lamp = (await uow.repositories.products.get('LAMP'))!
    lamp.allocate('o1', 2)
    lamp.allocate('o2', 20)
    expect(typesOf(lamp.pendingEvents)).toEqual(['Allocated', 'OutOfStock'])
    expect(typesOf(uow.collectNewEvents())).toEqual(['Allocated', 'OutOfStock'])
    expect(lamp.pendingEvents).toEqual([])
  })

  it('tracks every aggregate loaded or added in seen, one instance per id', async () => {
    const uow = new InMemoryUnitOfWork({ products: products(new Product('LAMP', 10)) })
    const repo = uow.repositories.products
    const first = await repo.get('LAMP')
    expect(await repo.get('LAMP')).toBe(first)
    expect(await repo.get('NOPE')).toBeUndefined()
    const sofa = new Product('SOFA', 1)
    await repo.add(sofa)
    expect([...repo.seen]).toEqual([first, sofa])
    expect(await repo.get('SOFA')).toBe(sofa)
  })

  it('collects events across aggregates in recording order', async () => {
    const uow = new InMemoryUnitOfWork({
      products: products(new Product('A', 5), new Product('B', 5)),
    })
    const a = (await uow.repositories.products.get('A'))!
    const b = (await uow.repositories.products.get('B'))!
    b.allocate('o1', 1)
    a.allocate('o2', 1)
    b.allocate('o3', 1)
    expect(uow.collectNewEvents().map((e) => (e.payload as { orderId: string }).orderId)).toEqual([
      'o1',
      'o2',
      'o3',
    ])
  })

  it('works on copies: changes reach the collection only on commit', async () => {
    const collection = products(new Product('LAMP', 10))
    const uow = new InMemoryUnitOfWork({ products: collection })
    ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 3)
    expect(collection.find('LAMP')!.available).toBe(10)
    await uow.commit()
    const stored = collection.find('LAMP')!
    expect(stored.available).toBe(7)
    expect(stored).toBeInstanceOf(Product)
    expect(stored.version).toBe(2)
  })
})

describe('the unit of work', () => {
  it('commits explicitly and hands the committed events to its hooks', async () => {
    const uow = new InMemoryUnitOfWork({ products: products(new Product('LAMP', 10)) })
    const committed = vi.fn()
    uow.on('committed', committed)
    ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 1)
    await uow.commit()
    expect(uow.state).toBe('committed')
    expect(typesOf(committed.mock.calls[0]![0].events)).toEqual(['Allocated'])
  })

  it('discards changes and events on rollback', async () => {
    const collection = products(new Product('LAMP', 10))
    const uow = new InMemoryUnitOfWork({ products: collection })
    const rolledBack = vi.fn()
    uow.on('rolledBack', rolledBack)
    const lamp = (await uow.repositories.products.get('LAMP'))!
    lamp.allocate('o1', 1)
    await uow.rollback()
    expect(uow.state).toBe('rolled-back')
    expect(lamp.pendingEvents).toEqual([])
    expect(typesOf(rolledBack.mock.calls[0]![0].discarded)).toEqual(['Allocated'])
    expect(collection.find('LAMP')!.available).toBe(10)
  })

  it('rolls back what was not committed when disposed (await using)', async () => {
    const collection = products(new Product('LAMP', 10))
    const committed = vi.fn()
    {
      await using uow = new InMemoryUnitOfWork({ products: collection })
      uow.on('committed', committed)
      ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 1)
    }
    expect(committed).not.toHaveBeenCalled()
    expect(collection.find('LAMP')!.available).toBe(10)
  })

  it('transaction(fn) commits when fn resolves and rolls back when it throws', async () => {
    const collection = products(new Product('LAMP', 10))
    const ok = new InMemoryUnitOfWork({ products: collection })
    await expect(
      ok.transaction(async (uow) =>
        (await uow.repositories.products.get('LAMP'))!.allocate('o1', 4),
      ),
    ).resolves.toBe(6)
    expect(ok.state).toBe('committed')
    const failed = new InMemoryUnitOfWork({ products: collection })
    await expect(
      failed.transaction(async (uow) => {
        ;(await uow.repositories.products.get('LAMP'))!.allocate('o2', 1)
        throw new Error('payment declined')
      }),
    ).rejects.toThrow('payment declined')
    expect(failed.state).toBe('rolled-back')
    expect(collection.find('LAMP')!.available).toBe(6)
  })

  it('runs beforeCommit hooks inside the open transaction, and aborts the commit when one throws', async () => {
    const collection = products(new Product('LAMP', 10))
    const uow = new InMemoryUnitOfWork({ products: collection })
    const seen: string[] = []
    uow.on('beforeCommit', ({ events, unitOfWork }) => {
      seen.push(`${unitOfWork.state}:${typesOf(events).join()}`)
      throw new Error('outbox append failed')
    })
    ;(await uow.repositories.products.get('LAMP'))!.allocate('o1', 1)
    await expect(uow.commit()).rejects.toThrow('outbox append failed')
    expect(seen).toEqual(['open:Allocated'])
    expect(uow.state).toBe('rolled-back')
    expect(collection.find('LAMP')!.available).toBe(10)
  })

  it('tells added hooks about every tracked aggregate', async () => {
    const uow = new InMemoryUnitOfWork({ products: products(new Product('LAMP', 10)) })
    const added = vi.fn()
    uow.on('added', added)
    await uow.repositories.products.get('LAMP')
    await uow.repositories.products.add(new Product('SOFA', 1))
    expect(added.mock.calls.map(([info]) => (info.aggregate as Product).sku)).toEqual([
      'LAMP',
      'SOFA',
    ])
  })

  it('refuses to be used after it committed', async () => {
    const uow = new InMemoryUnitOfWork({ products: products() })
    await uow.commit()
    await expectSwitchyardError(uow.commit(), ErrorCode.UnitOfWorkClosed)
    await expectSwitchyardError(uow.rollback(), ErrorCode.UnitOfWorkClosed)
    await expectSwitchyardError(
      uow.transaction(() => 1),
      ErrorCode.UnitOfWorkClosed,
    )
  })

  it('raises a retryable ConcurrencyError when the aggregate changed since it was loaded', async () => {
    const collection = products(new Product('LAMP', 10))
    const first = new InMemoryUnitOfWork({ products: collection })
    const second = new InMemoryUnitOfWork({ products: collection })
    ;(await first.repositories.products.get('LAMP'))!.allocate('o1', 1)
    ;(await second.repositories.products.get('LAMP'))!.allocate('o2', 1)
    await first.commit()
    const error = await expectSwitchyardError(second.commit(), ErrorCode.Concurrency)
    expect(error).toBeInstanceOf(ConcurrencyError)
    expect(error.retryable).toBe(true)
    expect(second.state).toBe('rolled-back')
    expect(collection.find('LAMP')!.allocations).toEqual(['o1'])
  })

  it('refuses to add an aggregate whose id exists', async () => {
    const collection = products(new Product('LAMP', 10))
    const uow = new InMemoryUnitOfWork({ products: collection })
    await uow.repositories.products.add(new Product('LAMP', 1))
    await expectSwitchyardError(uow.commit(), ErrorCode.Concurrency)
  })
})

describe('cloneDeep', () => {
  it('copies deeply, keeps prototypes, Maps, Sets, Dates and cycles', () => {
    class Line {
      constructor(readonly qty: number) {}
      double(): number {
        return this.qty * 2
      }
    }
    const original = {
      lines: [new Line(2)],
      tags: new Set(['a']),
      meta: new Map([['k', { v: 1 }]]),
      at: new Date(5),
      self: null as unknown,
    }
    original.self = original
    const copy = cloneDeep(original)
    expect(copy.lines[0]).toBeInstanceOf(Line)
    expect(copy.lines[0]!.double()).toBe(4)
    expect(copy.lines[0]).not.toBe(original.lines[0])
    expect(copy.meta.get('k')).toEqual({ v: 1 })
    expect(copy.meta.get('k')).not.toBe(original.meta.get('k'))
    expect(copy.at.getTime()).toBe(5)
    expect(copy.self).toBe(copy)
  })

  it('uses a custom clone when given one', () => {
    const clone = vi.fn((p: Product) => new Product(p.sku, p.available))
    const collection = new InMemoryCollection<Product, string>({ id: (p) => p.sku, clone }).seed(
      new Product('X', 1),
    )
    collection.find('X')
    expect(clone).toHaveBeenCalled()
  })
})

describe('events never travel through storage', () => {
  it("does not hand a committed aggregate's events to the next unit of work that loads it", async () => {
    const collection = products(new Product('LAMP', 10))
    const first = new InMemoryUnitOfWork({ products: collection })
    ;(await first.repositories.products.get('LAMP'))!.allocate('o1', 1)
    await first.commit()
    const second = new InMemoryUnitOfWork({ products: collection })
    const lamp = (await second.repositories.products.get('LAMP'))!
    expect(lamp.pendingEvents).toEqual([])
    lamp.allocate('o2', 1)
    const committed = vi.fn()
    second.on('committed', committed)
    await second.commit()
    expect(
      committed.mock.calls[0]![0].events.map(
        (e: { payload: { orderId: string } }) => e.payload.orderId,
      ),
    ).toEqual(['o2'])
  })

  it('does not store events recorded before seeding', () => {
    const product = new Product('LAMP', 10)
    product.allocate('o0', 1)
    expect(products(product).find('LAMP')!.pendingEvents).toEqual([])
  })
})
