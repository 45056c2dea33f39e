// A small allocation domain (Cosmic Python's) shared by the unit-of-work, DI and bus tests.
import {
  AggregateRoot,
  defineCommand,
  defineEvent,
  type Event,
  InMemoryCollection,
} from '../../index.js'

export const Allocate = defineCommand('Allocate')
  .withPayload<{ orderId: string; sku: string; qty: number }>()
  .returns<number>()
export const Allocated = defineEvent('Allocated').withPayload<{
  orderId: string
  sku: string
  qty: number
}>()
export const OutOfStock = defineEvent('OutOfStock').withPayload<{ sku: string }>()

export class Product extends AggregateRoot<Event> {
  readonly allocations: string[] = []
  constructor(
    readonly sku: string,
    public available: number,
  ) {
    super()
  }

  allocate(orderId: string, qty: number): number {
    if (qty > this.available) {
      this.record(OutOfStock({ sku: this.sku }))
      return this.available
    }
    this.available -= qty
    this.allocations.push(orderId)
    this.record(Allocated({ orderId, sku: this.sku, qty }))
    return this.available
  }
}

export function products(...seed: Product[]): InMemoryCollection<Product, string> {
  return new InMemoryCollection<Product, string>({ id: (p) => p.sku }).seed(...seed)
}
