/**
 * The unit-of-work cases: one business transaction per dispatch, with the bus and by hand.
 *
 * Both sides do the same steps with the same library classes: a new `InMemoryUnitOfWork` over an
 * `InMemoryCollection<Product, string>`, `repositories.products.get(sku)` (a deep copy of the
 * stored aggregate), `product.allocate(qty)` (records one `Allocated` event), `commit()` (version
 * check, store a deep copy, release the event), then the one event handler, `onAllocated`, awaited.
 *
 * - `uow: bus.execute(cmd)`: the command handler declares `deps: ['uow']`, provided as
 *   `transient(() => new InMemoryUnitOfWork({ products }))`; the bus resolves it, subscribes to its
 *   `committed` hook, runs the handler, disposes the unit of work, and drains the released event to
 *   `onAllocated`, registered on the bus for `Allocated`.
 * - `uow: hand-written`: the same handler body inline in the loop. The events are taken from the
 *   unit of work's `committed` hook (`uow.on('committed', …)`): the documented way to receive what
 *   a commit released (it also orders the events of several aggregates), and the hook the bus
 *   itself uses. `collectNewEvents()` is no option after a commit (the commit drained them), and
 *   `product.pendingEvents` would be read before the commit succeeded. The hand-written side does
 *   not dispose the unit of work (`await using`): after a commit that would be a no-op, so the row
 *   leaves it out and the bus pays for its disposal alone.
 *
 * Each side has its own collection, seeded alike with one product whose stock never runs out in
 * any run (STOCK units, one per dispatch), so no reset is needed. The stored state is bounded: two
 * numbers and a string (the aggregate keeps no history), and the version only counts up.
 */
import {
  AggregateRoot,
  type Command,
  defineCommand,
  defineEvent,
  type Event,
  InMemoryCollection,
  InMemoryUnitOfWork,
  MessageBus,
  transient,
} from 'switchyard-bus'
import type { BenchCase } from './harness.js'
import { Latch, sink } from './latch.js'

const Allocate = defineCommand('Bench.Allocate')
  .withPayload<{ sku: string; qty: number }>()
  .returns<number>()
const Allocated = defineEvent('Bench.Allocated').withPayload<{ sku: string; qty: number }>()

type AllocateCommand = Command<string, { sku: string; qty: number }, number>
type AllocatedEvent = Event<string, { sku: string; qty: number }>

const SKU = 'LAMP'
/** Far more than every run together dispatches (~10M in a full run). */
const STOCK = 1e12

/** The aggregate: a stock level; each allocation takes from it and records one event. */
class Product extends AggregateRoot<AllocatedEvent> {
  constructor(
    readonly sku: string,
    public available: number,
  ) {
    super()
  }

  allocate(qty: number): void {
    if (qty > this.available) throw new Error(`${this.sku} is out of stock`)
    this.available -= qty
    this.record(Allocated({ sku: this.sku, qty }))
  }
}

type Products = InMemoryCollection<Product, string>

interface Deps {
  uow: InMemoryUnitOfWork<{ products: Products }>
}

const newProducts = (): Products =>
  new InMemoryCollection<Product, string>({ id: (p) => p.sku }).seed(new Product(SKU, STOCK))

/** Counts the event handler calls on both sides (one shared latch, one call per dispatch). */
const latch = new Latch(1)

/** The one event handler, the same function on both sides. */
const onAllocated = async (event: AllocatedEvent): Promise<void> => {
  latch.hit(event.payload.qty)
}

const NO_EVENTS: readonly Event[] = []

export interface UowCases {
  readonly execute: BenchCase
  readonly handWritten: BenchCase
  /** Runs each case once and checks it did the work (stock, version, handler call). */
  verify(): Promise<void>
}

export async function uowCases(): Promise<UowCases> {
  const command: AllocateCommand = Allocate({ sku: SKU, qty: 1 })

  const busProducts = newProducts()
  const bus = new MessageBus<Deps>({
    dependencies: { uow: transient(() => new InMemoryUnitOfWork({ products: busProducts })) },
  })
  bus.handle(
    Allocate,
    async (cmd, { deps: { uow } }) => {
      const product = await uow.repositories.products.get(cmd.payload.sku)
      if (product === undefined) throw new Error(`unknown sku ${cmd.payload.sku}`)
      product.allocate(cmd.payload.qty)
      await uow.commit()
      return product.available
    },
    { deps: ['uow'] },
  )
  bus.handle(Allocated, onAllocated, { name: 'onAllocated' })
  await bus.start()

  const handProducts = newProducts()

  const execute: BenchCase = {
    id: 'uowExecute',
    label: 'uow: bus.execute(cmd)',
    heap: true,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += await bus.execute(command)
      sink.value += acc
    },
  }

  const handWritten: BenchCase = {
    id: 'uowHand',
    label: 'uow: hand-written',
    heap: false,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) {
        const uow = new InMemoryUnitOfWork({ products: handProducts })
        let events = NO_EVENTS
        uow.on('committed', (committed) => {
          events = committed.events
        })
        const product = await uow.repositories.products.get(command.payload.sku)
        if (product === undefined) throw new Error(`unknown sku ${command.payload.sku}`)
        product.allocate(command.payload.qty)
        await uow.commit()
        for (const event of events) if (Allocated.is(event)) await onAllocated(event)
        acc += product.available
      }
      sink.value += acc
    },
  }

  const verify = async (): Promise<void> => {
    for (const [c, products] of [
      [execute, busProducts],
      [handWritten, handProducts],
    ] as const) {
      const before = products.find(SKU)!
      const calls = latch.calls
      await c.run(1)
      const after = products.find(SKU)!
      if (after.available !== before.available - 1 || after.version !== before.version + 1)
        throw new Error(`${c.id}: the product did not commit one allocation`)
      if (after.pendingEvents.length !== 0) throw new Error(`${c.id}: stored events`)
      if (latch.calls - calls !== 1)
        throw new Error(`${c.id} ran the event handler ${latch.calls - calls} times, not once`)
    }
  }

  return { execute, handWritten, verify }
}
