import assert from 'node:assert/strict'
import {
  AggregateRoot,
  defineCommand,
  defineEvent,
  type Event,
  InMemoryCollection,
} from 'switchyard-bus'
import { InMemoryUnitOfWork, MessageBus, transient } from 'switchyard-bus'

const Rename = defineCommand('Rename').withPayload<{ id: string; name: string }>()
const Renamed = defineEvent('Renamed').withPayload<{ id: string; name: string }>()

class Customer extends AggregateRoot<Event> {
  constructor(
    readonly id: string,
    public name: string,
  ) {
    super()
  }
  rename(name: string): void {
    this.name = name
    this.record(Renamed({ id: this.id, name })) // released only if the work commits
  }
}

const customers = new InMemoryCollection<Customer, string>({ id: (c) => c.id })
customers.seed(new Customer('c1', 'Ada'))
const bus = new MessageBus<{ uow: InMemoryUnitOfWork<{ customers: typeof customers }> }>({
  dependencies: { uow: transient(() => new InMemoryUnitOfWork({ customers })) }, // one per handler call
})
bus.handle(
  Rename,
  async (cmd, ctx) => {
    const customer = await ctx.deps.uow.repositories.customers.get(cmd.payload.id)
    customer?.rename(cmd.payload.name)
    await ctx.deps.uow.commit()
  },
  { deps: ['uow'] },
)
const renamed: string[] = []
bus.handle(Renamed, (event) => void renamed.push(event.payload.name))

async function main(): Promise<void> {
  await bus.execute(Rename({ id: 'c1', name: 'Ada Lovelace' }))
  assert.deepEqual(renamed, ['Ada Lovelace'])
  assert.equal(customers.find('c1')?.name, 'Ada Lovelace')
}
void main()
