import assert from 'node:assert/strict'
import { AggregateRoot, defineEvent, type Event } from 'switchyard-bus'
import { InMemoryCollection, InMemoryUnitOfWork } from 'switchyard-bus'
import { expectSwitchyardError } from 'switchyard-bus/testing'

const Allocated = defineEvent('Allocated').withPayload<{ orderId: string; qty: number }>()
class Product extends AggregateRoot<Event> {
  readonly sku = 'LAMP'
  available = 10
  allocate(orderId: string, qty: number): void {
    this.available -= qty
    this.record(Allocated({ orderId, qty })) // kept on the aggregate until the work commits
  }
}
const products = new InMemoryCollection<Product, string>({ id: (p) => p.sku })
products.seed(new Product()) // stored as committed, at version 1

async function main(): Promise<void> {
  {
    await using uow = new InMemoryUnitOfWork({ products })
    const lamp = await uow.repositories.products.get('LAMP') // a copy of the stored aggregate
    lamp?.allocate('o1', 3)
    assert.equal(lamp?.pendingEvents.length, 1)
  } // disposed without a commit: rolled back, its events discarded
  assert.equal(products.find('LAMP')?.available, 10)

  const uow = new InMemoryUnitOfWork({ products })
  const steps: string[] = []
  uow.on('beforeCommit', ({ unitOfWork }) => void steps.push(`beforeCommit (${unitOfWork.state})`))
  uow.on('committed', ({ events }) => void steps.push(`committed ${events[0]?.type}`))
  const left = await uow.transaction(async ({ repositories }) => {
    const lamp = await repositories.products.get('LAMP')
    lamp?.allocate('o2', 4)
    return lamp?.available // transaction() commits once this resolves
  })
  assert.deepEqual([left, steps], [6, ['beforeCommit (open)', 'committed Allocated']])
  const stored = products.find('LAMP')
  assert.ok(stored instanceof Product && stored.version === 2 && stored.pendingEvents.length === 0)
  await expectSwitchyardError(uow.commit(), 'SWITCHYARD_UNIT_OF_WORK_CLOSED')

  await new InMemoryUnitOfWork({ products }).transaction((w) => w.repositories.products.get('LAMP'))
  assert.equal(products.find('LAMP')?.version, 3) // saved although unchanged: see Design choices
}
void main()
