import assert from 'node:assert/strict'
import { setImmediate } from 'node:timers/promises'
import { AggregateRoot, defineCommand, type Event, InMemoryCollection } from 'switchyard-bus'
import { InMemoryUnitOfWork, isSwitchyardError, MessageBus, retry, transient } from 'switchyard-bus'

class Account extends AggregateRoot<Event> {
  readonly id = 'acc-1'
  #balance: number // no generic copy can reach a #private field: the collection needs `clone`
  constructor(balance: number) {
    super()
    this.#balance = balance
  }
  get balance(): number {
    return this.#balance
  }
  withdraw(amount: number): void {
    this.#balance -= amount
  }
}
const accounts = new InMemoryCollection<Account, string>({
  id: (a) => a.id,
  clone: (a) => new Account(a.balance), // the collection keeps `version` itself
}).seed(new Account(100))
const newUow = () => new InMemoryUnitOfWork({ accounts })
const conflict = (error: unknown) => isSwitchyardError(error, 'SWITCHYARD_CONCURRENCY')
const Withdraw = defineCommand('Withdraw').withPayload<{ amount: number }>().returns<string>()

async function main(): Promise<void> {
  const bus = new MessageBus<{ uow: ReturnType<typeof newUow> }>({
    dependencies: { uow: transient(newUow) }, // each retry attempt gets a fresh one
    middleware: [retry({ attempts: 3, backoff: { initialDelay: 1 }, retryOn: conflict })],
  })
  bus.handle(
    Withdraw,
    async ({ payload }, { deps, attempt }) => {
      const account = (await deps.uow.repositories.accounts.get('acc-1'))! // both load version 1
      await setImmediate() // let the other command load it too
      account.withdraw(payload.amount)
      await deps.uow.commit()
      return `${account.balance} after attempt ${attempt}`
    },
    { deps: ['uow'] },
  )
  const results = await Promise.all([5, 7].map((amount) => bus.execute(Withdraw({ amount }))))
  assert.deepEqual(results, ['95 after attempt 1', '88 after attempt 2']) // re-ran on fresh state
}
void main()
