/**
 * The allocation domain of Cosmic Python, small: a Product aggregate owns its batches and records
 * what happens to it as events.
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
).returns<string | undefined>()
export const Allocated = defineEvent(
  'Allocated',
  z.object({ orderId: z.string(), sku: z.string(), qty: z.number(), batchRef: z.string() }),
)
export const OutOfStock = defineEvent('OutOfStock', z.object({ sku: z.string() }))
export const GetAllocations = defineQuery(
  'GetAllocations',
  z.object({ orderId: z.string() }),
).returns<readonly string[]>()

export interface Batch {
  readonly ref: string
  available: number
}

export class Product extends AggregateRoot<Event> {
  readonly batches: Batch[] = []
  constructor(readonly sku: string) {
    super()
  }

  addBatch(ref: string, qty: number): void {
    this.batches.push({ ref, available: qty })
  }

  /** Allocates from the first batch with room; records Allocated, or OutOfStock when none has. */
  allocate(orderId: string, qty: number): string | undefined {
    const batch = this.batches.find((b) => b.available >= qty)
    if (batch === undefined) {
      this.record(OutOfStock({ sku: this.sku }))
      return undefined
    }
    batch.available -= qty
    this.record(Allocated({ orderId, sku: this.sku, qty, batchRef: batch.ref }))
    return batch.ref
  }
}
