import assert from 'node:assert/strict'
import { AggregateRoot, defineCommand, defineEvent, type Event, MessageBus } from 'switchyard-bus'
import { defineQuery } from 'switchyard-bus'
import { InMemoryCollection, InMemoryUnitOfWork, scoped, transient } from 'switchyard-bus'
import { expectSwitchyardError, RecordingLogger } from 'switchyard-bus/testing'

const Rename = defineCommand('Rename').withPayload<{ name: string; then?: 'throw' | 'forget' }>()
const Renamed = defineEvent('Renamed').withPayload<{ name: string }>()
class Customer extends AggregateRoot<Event> {
  name = 'Ada'
  rename(name: string): void {
    this.name = name
    this.record(Renamed({ name }))
  }
}
const customers = new InMemoryCollection<Customer, string>({ id: () => 'c1' }).seed(new Customer())
type Deps = { uow: InMemoryUnitOfWork<{ customers: typeof customers }> }
const makeUow = () => new InMemoryUnitOfWork({ customers })

const logger = new RecordingLogger('debug')
const bus = new MessageBus<Deps>({ logger, dependencies: { uow: transient(makeUow) } })
bus.handle(
  Rename,
  async ({ payload }, { deps }) => {
    ;(await deps.uow.repositories.customers.get('c1'))?.rename(payload.name)
    if (payload.then !== 'forget') await deps.uow.commit() // Renamed is released by this commit…
    if (payload.then === 'throw') throw new Error('failed after its commit') // …unless we then fail
  },
  { deps: ['uow'] },
)
const released: string[] = []
bus.handle(Renamed, (event) => void released.push(event.payload.name))

async function main(): Promise<void> {
  await bus.execute(Rename({ name: 'Ada L.' }))
  await bus.execute(Rename({ name: 'Ada K.', then: 'throw' })).catch(() => undefined)
  await bus.execute(Rename({ name: 'Lovelace', then: 'forget' }))
  assert.deepEqual(released, ['Ada L.'])
  assert.equal(customers.find('c1')?.name, 'Ada K.') // the failed handler's commit stands
  const notCommitted = /handler finished without committing its unit of work; rolled back/
  assert.ok(logger.at('debug').some((entry) => notCommitted.test(entry.message ?? '')))

  const wrong = new MessageBus<Deps>({ dependencies: { uow: scoped(makeUow) } }) // not transient
  wrong.handle(Rename, () => undefined, { deps: ['uow'] })
  await expectSwitchyardError(wrong.execute(Rename({ name: 'x' })), 'SWITCHYARD_CONFIGURATION')

  const Peek = defineQuery('Peek').returns<string>()
  const reads = new MessageBus<Deps>({ dependencies: { uow: transient(makeUow) } })
  reads.handle(
    Peek,
    async (_query, { deps }) => {
      const customer = (await deps.uow.repositories.customers.get('c1'))!
      customer.rename('Peeked') // a write hidden in a query…
      await deps.uow.commit() // …whose commit is refused, since it recorded Renamed
      return customer.name
    },
    { deps: ['uow'] },
  )
  await expectSwitchyardError(reads.query(Peek()), 'SWITCHYARD_QUERY_SIDE_EFFECT')
  assert.equal(customers.find('c1')?.name, 'Ada K.') // rolled back: nothing saved
}
void main()
