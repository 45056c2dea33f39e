import assert from 'node:assert/strict'
import { type Dependencies, defineQuery, HandlerRegistry, MessageBus } from 'switchyard-bus'
import { scoped, singleton } from 'switchyard-bus'
import { expectSwitchyardError } from 'switchyard-bus/testing'

interface Deps {
  config: { greeting: string }
  db: { lookup: (id: string) => string }
  greeter: { greet: (id: string) => string }
}
let connects = 0
const dependencies: Dependencies<Deps> = {
  config: { greeting: 'Hello' },
  db: singleton(async () => {
    if (++connects === 1) throw new Error('database not ready') // not cached: tried again
    return Promise.resolve({ lookup: (id: string) => id.toUpperCase() })
  }),
  greeter: scoped<Deps['greeter'], Deps>(async ({ get }) => {
    const [config, db] = await Promise.all([get('config'), get('db')]) // each with its lifetime
    return { greet: (id) => `${config.greeting}, ${db.lookup(id)}` }
  }),
}
const Greet = defineQuery('Greet').withPayload<{ id: string }>().returns<string>()
const greetings = new HandlerRegistry<Deps>().handle(
  Greet,
  (query, ctx) => {
    // @ts-expect-error ctx.deps holds only the declared names
    void ctx.deps.db
    return ctx.deps.greeter.greet(query.payload.id)
  },
  { deps: ['greeter'] },
)

async function main(): Promise<void> {
  const bus = new MessageBus<Deps>({ dependencies, handlers: [greetings] })
  await assert.rejects(bus.query(Greet({ id: 'ada' })), /database not ready/)
  assert.equal(await bus.query(Greet({ id: 'ada' })), 'Hello, ADA')

  const partial = { config: dependencies.config } as Dependencies<Deps> // assembled at run time
  const incomplete = new MessageBus<Deps>({ dependencies: partial, handlers: [greetings] })
  const missing = await expectSwitchyardError(incomplete.start(), 'SWITCHYARD_MISSING_DEPENDENCY')
  assert.match(missing.message, /"Greet handler" of "Greet" needs the dependency "greeter"/)

  const loop = new MessageBus<{ a: number; b: number }>({
    dependencies: { a: scoped(({ get }) => get('b')), b: scoped(({ get }) => get('a')) },
  }).handle(Greet, (_query, ctx) => String(ctx.deps.a), { deps: ['a'] })
  await expectSwitchyardError(loop.query(Greet({ id: 'x' })), 'SWITCHYARD_DEPENDENCY_CYCLE')

  const captive = new MessageBus<{ cache: number; request: number }>({
    dependencies: { cache: singleton(({ get }) => get('request')), request: scoped(() => 1) },
  }).handle(Greet, (_query, ctx) => String(ctx.deps.cache), { deps: ['cache'] })
  const held = await expectSwitchyardError(
    captive.query(Greet({ id: 'x' })),
    'SWITCHYARD_CAPTIVE_DEPENDENCY',
  )
  assert.match(held.message, /singleton dependency "cache" asks for the scoped "request"/)
}
void main()
