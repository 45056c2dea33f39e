import assert from 'node:assert/strict'
import { defineCommand, defineEvent, MessageBus } from 'switchyard-bus'
import { scoped, singleton, transient } from 'switchyard-bus'

const log: string[] = []
let made = 0
function resource(kind: string): Disposable {
  const name = `${kind}${++made}`
  log.push(`+${name}`) // made
  return { [Symbol.dispose]: () => void log.push(`-${name}`) } // disposed
}
const config = { disposed: false, [Symbol.dispose]: () => void (config.disposed = true) }
interface Deps {
  clock: () => number // a plain value, shared; a function value is the value, not a factory
  config: typeof config // a plain value you made: yours to dispose, never the bus's
  pool: Disposable
  request: Disposable
  scratch: Disposable
}
const bus = new MessageBus<Deps>({
  dependencies: {
    clock: () => 42,
    config,
    pool: singleton(() => resource('pool')), // once per bus, disposed by bus.close()
    request: scoped(() => resource('req')), // once per top-level dispatch
    scratch: transient(() => resource('tmp')), // once per handler invocation
  },
})
const Place = defineCommand('Place').withPayload<{ fail?: boolean }>()
const Placed = defineEvent('Placed')
bus.handle(
  Place,
  (cmd, ctx) => {
    log.push(`Place@${ctx.deps.clock()}`)
    ctx.publish(Placed())
    if (cmd.payload.fail === true) throw new Error('declined')
  },
  { deps: ['clock', 'config', 'pool', 'request', 'scratch'] },
)
bus.handle(Placed, () => void log.push('Placed'), { deps: ['request', 'scratch'] })
const take = (): string => log.splice(0).join(' ')

async function main(): Promise<void> {
  await bus.execute(Place({}))
  assert.equal(take(), '+pool1 +req2 +tmp3 Place@42 -tmp3 +tmp4 Placed -tmp4 -req2')
  await bus.execute(Place({ fail: true })).catch(() => undefined) // disposed even on failure
  assert.equal(take(), '+req5 +tmp6 Place@42 -tmp6 -req5')
  await bus.close()
  assert.equal(take(), '-pool1') // only what its factories made
  assert.equal(config.disposed, false) // dispose it yourself, after bus.close()
}
void main()
