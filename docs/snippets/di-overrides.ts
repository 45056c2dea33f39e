import assert from 'node:assert/strict'
import { defineCommand, defineEvent, MessageBus, scoped, transient } from 'switchyard-bus'

type Deps = { clock: () => string; session: { id: string } }
let made = 0
const bus = new MessageBus<Deps>({
  dependencies: { clock: () => 'now', session: scoped(() => ({ id: `s${++made}` })) },
})
const Tick = defineCommand('Tick')
const Ticked = defineEvent('Ticked')
const seen: string[] = []
bus.handle(
  Tick,
  (_cmd, ctx) => {
    seen.push(`${ctx.deps.clock()} ${ctx.deps.session.id}`)
    ctx.publish(Ticked())
  },
  { deps: ['clock', 'session'] },
)
bus.handle(Ticked, (_event, ctx) => void seen.push(ctx.deps.session.id), { deps: ['session'] })
const tick = async (): Promise<string> => {
  await bus.execute(Tick())
  return seen.splice(0).join(', ')
}

async function main(): Promise<void> {
  assert.equal(await tick(), 'now s1, s1')
  {
    using _clock = bus.override('clock', () => () => 'noon') // a factory of the value
    using _session = bus.override('session', () => ({ id: `fake${++made}` })) // still scoped
    assert.equal(await tick(), 'noon fake2, fake2')
    {
      using _inner = bus.override(
        'session',
        transient(() => ({ id: `t${++made}` })),
      ) // transient
      assert.equal(await tick(), 'noon t3, t4')
    }
    assert.equal(await tick(), 'noon fake5, fake5') // the outer override again
  }
  assert.equal(await tick(), 'now s6, s6') // every override disposed

  const outer = bus.override('clock', () => () => 'outer')
  const inner = bus.override('clock', () => () => 'inner')
  outer[Symbol.dispose]() // out of order: the inner one stays in force
  assert.equal(await tick(), 'inner s7, s7')
  inner[Symbol.dispose]()
  assert.equal(await tick(), 'now s8, s8') // all disposed: the original is back
}
void main()
