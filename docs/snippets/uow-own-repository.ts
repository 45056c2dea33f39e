import assert from 'node:assert/strict'
import { AggregateRoot, ConcurrencyError, defineEvent, type Event } from 'switchyard-bus'
import { TrackingRepository, UnitOfWork } from 'switchyard-bus'

const Deposited = defineEvent('Deposited').withPayload<{ amount: number }>()
class Account extends AggregateRoot<Event> {
  balance = 0
  constructor(readonly id: string) {
    super()
  }
  deposit(amount: number): void {
    this.balance += amount
    this.record(Deposited({ amount }))
  }
}
const table = new Map([['acc-1', { balance: 0, version: 1 }]]) // stands in for a database table
class Accounts extends TrackingRepository<Account, string> {
  protected idOf(account: Account): string {
    return account.id
  }
  protected async load(id: string): Promise<Account | undefined> {
    const row = await Promise.resolve(table.get(id)) // SELECT … WHERE id = $1
    return row && Object.assign(new Account(id), row) // with the stored version
  }
  protected async insert(): Promise<void> {} // nothing to do before the commit writes it
}
class TableUnitOfWork extends UnitOfWork {
  readonly accounts = new Accounts()
  constructor() {
    super()
    this.accounts.onTrack = (account) => this.tracked(account) // runs the `added` hooks, awaited
  }
  protected participants(): Iterable<Accounts> {
    return [this.accounts]
  }
  // A database would check with UPDATE … WHERE version = $loaded, inside its transaction.
  protected commitTransaction(): Promise<void> {
    const seen = [...this.accounts.seen]
    const moved = seen.find((a) => (table.get(a.id)?.version ?? 0) !== a.version)
    if (moved) return Promise.reject(new ConcurrencyError(`Account ${moved.id} changed meanwhile`))
    for (const a of seen) table.set(a.id, { balance: a.balance, version: ++a.version })
    return Promise.resolve()
  }
  protected async rollbackTransaction(): Promise<void> {}
}

async function main(): Promise<void> {
  const uow = new TableUnitOfWork()
  const added: unknown[] = []
  uow.on('added', async ({ aggregate }) => void added.push(await Promise.resolve(aggregate)))
  const account = await uow.accounts.get('acc-1')
  assert.ok(account && (await uow.accounts.get('acc-1')) === account) // one instance per id
  assert.deepEqual(added, [account]) // the hook ran, once, before get() resolved
  account.deposit(10)
  uow.on('committed', ({ events }) => assert.equal(events[0]?.type, 'Deposited'))
  await uow.commit()
  assert.deepEqual(table.get('acc-1'), { balance: 10, version: 2 })
}
void main()
