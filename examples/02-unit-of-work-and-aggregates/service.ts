/**
 * The service: handlers wired to a bus with an in-memory unit of work per invocation, a read
 * model updated by an event handler, and retry on concurrency conflicts.
 */
import {
  InMemoryCollection,
  InMemoryUnitOfWork,
  type Logger,
  MessageBus,
  retry,
  singleton,
  transient,
} from 'switchyard-bus'
import { AddBatch, Allocate, Allocated, GetAllocations, OutOfStock, Product } from './domain.js'

export interface Deps {
  uow: InMemoryUnitOfWork<{ products: InMemoryCollection<Product, string> }>
  readModel: Map<string, string[]>
  notify: (text: string) => void
}

export function createService(options: { logger?: Logger; notify?: (text: string) => void } = {}) {
  const products = new InMemoryCollection<Product, string>({ id: (p) => p.sku })
  const bus = new MessageBus<Deps>({
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    dependencies: {
      uow: transient(() => new InMemoryUnitOfWork({ products })),
      readModel: singleton(() => new Map<string, string[]>()),
      notify: options.notify ?? (() => undefined),
    },
    // A ConcurrencyError (someone changed the product meanwhile) re-runs the handler on fresh state.
    middleware: [retry({ attempts: 3, backoff: { initialDelay: 5, maxDelay: 50 } })],
  })

  bus.handle(
    AddBatch,
    async (cmd, { deps: { uow } }) => {
      const product =
        (await uow.repositories.products.get(cmd.payload.sku)) ?? new Product(cmd.payload.sku)
      if (product.version === 0) await uow.repositories.products.add(product)
      product.addBatch(cmd.payload.ref, cmd.payload.qty)
      await uow.commit()
    },
    { deps: ['uow'] },
  )

  bus.handle(
    Allocate,
    async (cmd, { deps: { uow } }) => {
      const product = await uow.repositories.products.get(cmd.payload.sku)
      if (product === undefined) throw new Error(`Invalid sku ${cmd.payload.sku}`)
      const batchRef = product.allocate(cmd.payload.orderId, cmd.payload.qty)
      await uow.commit() // the events are released now, and only because this commit succeeded
      return batchRef
    },
    { deps: ['uow'] },
  )

  bus.handle(
    Allocated,
    (event, { deps: { readModel } }) => {
      const refs = readModel.get(event.payload.orderId) ?? []
      readModel.set(event.payload.orderId, [...refs, event.payload.batchRef])
    },
    { deps: ['readModel'] },
  )
  bus.handle(
    OutOfStock,
    (event, { deps: { notify } }) => notify(`out of stock: ${event.payload.sku}`),
    { deps: ['notify'] },
  )
  bus.handle(
    GetAllocations,
    (query, { deps: { readModel } }) => readModel.get(query.payload.orderId) ?? [],
    { deps: ['readModel'] },
  )

  return { bus, products }
}
