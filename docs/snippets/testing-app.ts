// The application under test on this page: an allocation service with a clock dependency.
import { AggregateRoot, defineCommand, defineEvent, defineQuery, type Event } from 'switchyard-bus'
import { InMemoryCollection, InMemoryUnitOfWork, type Logger, MessageBus } from 'switchyard-bus'
import { silentLogger, transient } from 'switchyard-bus'

type Lines = { sku: string; qty: number }
export const Allocate = defineCommand('Allocate').withPayload<Lines>().returns<number>()
export const Allocated = defineEvent('Allocated').withPayload<Lines & { at: string }>()
export const OutOfStock = defineEvent('OutOfStock').withPayload<{ sku: string }>()
export const GetStock = defineQuery('GetStock').withPayload<{ sku: string }>().returns<number>()

class Product extends AggregateRoot<Event> {
  available = 10
  constructor(readonly sku: string) {
    super()
  }
  allocate(qty: number, at: Date): void {
    if (qty > this.available) return this.record(OutOfStock({ sku: this.sku }))
    this.available -= qty
    this.record(Allocated({ sku: this.sku, qty, at: at.toISOString() }))
  }
}
export type Deps = {
  uow: InMemoryUnitOfWork<{ products: InMemoryCollection<Product, string> }>
  clock: () => Date
}

/** A fresh service: 10 lamps in stock. */
export function createBus(logger: Logger = silentLogger): MessageBus<Deps> {
  const products = new InMemoryCollection<Product, string>({ id: (p) => p.sku })
  products.seed(new Product('LAMP'))
  const bus = new MessageBus<Deps>({
    logger,
    dependencies: {
      uow: transient(() => new InMemoryUnitOfWork({ products })),
      clock: () => new Date(),
    },
  })
  bus.handle(
    Allocate,
    async ({ payload }, { deps: { uow, clock } }) => {
      const product = await uow.repositories.products.get(payload.sku)
      if (product === undefined) throw new Error(`unknown sku ${payload.sku}`)
      product.allocate(payload.qty, clock())
      await uow.commit()
      return product.available
    },
    { deps: ['uow', 'clock'] },
  )
  bus.handle(GetStock, ({ payload }) => products.find(payload.sku)?.available ?? 0)
  return bus
}
