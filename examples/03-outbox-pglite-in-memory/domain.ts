/**
 * The allocation domain of Cosmic Python, as in example 02, with one difference: `Allocated` is an
 * integration event (it has a `topic` and a `key`), so besides its in-process handlers it is sent
 * to other services through the outbox. Running out of stock is a failure here (Cosmic Python's
 * `OutOfStock` exception): the command rolls back, and nothing of it is stored or published.
 */
import { AggregateRoot, defineCommand, defineEvent, defineQuery, type Event } from 'switchyard-bus'
import { z } from 'zod'

export const AddBatch = defineCommand(
  'AddBatch',
  z.object({ ref: z.string(), sku: z.string(), qty: z.number().int().positive() }),
)
export const Allocate = defineCommand(
  'Allocate',
  z.object({ orderId: z.string(), sku: z.string(), qty: z.number().int().positive() }),
).returns<string>()
/** Integration event: published to the `allocations` topic, in commit order per product. */
export const Allocated = defineEvent(
  'Allocated',
  z.object({ orderId: z.string(), sku: z.string(), qty: z.number(), batchRef: z.string() }),
  { topic: 'allocations', key: (p) => p.sku },
)
/** In-process only (no topic): never written to the outbox. */
export const LowStock = defineEvent('LowStock', z.object({ sku: z.string(), left: z.number() }))
export const GetAllocations = defineQuery(
  'GetAllocations',
  z.object({ orderId: z.string() }),
).returns<readonly string[]>()

/** Below this many units left in all its batches, a product records LowStock. */
export const LOW_STOCK = 3

/** Cosmic Python's exception: no batch of the product can take the order line. */
export class OutOfStock extends Error {
  override readonly name = 'OutOfStock'
  constructor(readonly sku: string) {
    super(`Out of stock for sku ${sku}`)
  }
}

export interface Batch {
  readonly ref: string
  available: number
}

export class Product extends AggregateRoot<Event> {
  constructor(
    readonly sku: string,
    readonly batches: Batch[] = [],
  ) {
    super()
  }

  /** Units left in all batches. */
  get available(): number {
    return this.batches.reduce((sum, b) => sum + b.available, 0)
  }

  addBatch(ref: string, qty: number): void {
    this.batches.push({ ref, available: qty })
  }

  /** Allocates from the first batch with room and records Allocated; throws OutOfStock if none has. */
  allocate(orderId: string, qty: number): string {
    const batch = this.batches.find((b) => b.available >= qty)
    if (batch === undefined) throw new OutOfStock(this.sku)
    batch.available -= qty
    this.record(Allocated({ orderId, sku: this.sku, qty, batchRef: batch.ref }))
    if (this.available < LOW_STOCK) this.record(LowStock({ sku: this.sku, left: this.available }))
    return batch.ref
  }
}
