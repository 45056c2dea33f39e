/**
 * The allocation domain of examples 02 and 03, shared by both services: the commands and the
 * `Product` aggregate belong to the allocation service (producer.ts); `Allocated` is the integration
 * event between the two (it has a `topic` and a `key`), the contract the reporting service
 * (consumer.ts) reads. Running out of stock is a failure (`OutOfStock`): the command rolls back, so
 * nothing of it is stored, and nothing is published.
 */
import { AggregateRoot, defineCommand, defineEvent, type Event } from 'switchyard-bus'
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

  addBatch(ref: string, qty: number): void {
    this.batches.push({ ref, available: qty })
  }

  /** Allocates from the first batch with room and records Allocated; throws OutOfStock if none has. */
  allocate(orderId: string, qty: number): string {
    const batch = this.batches.find((b) => b.available >= qty)
    if (batch === undefined) throw new OutOfStock(this.sku)
    batch.available -= qty
    this.record(Allocated({ orderId, sku: this.sku, qty, batchRef: batch.ref }))
    return batch.ref
  }
}
