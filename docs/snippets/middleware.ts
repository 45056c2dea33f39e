import assert from 'node:assert/strict'
import { defineCommand, defineEvent, MessageBus, retry, timeout } from 'switchyard-bus'
import type { Middleware } from 'switchyard-bus'

const Charge = defineCommand('Charge').returns<string>()
const Charged = defineEvent('Charged').withPayload<{ attempt: number }>()

const log: string[] = []
const trace =
  (name: string): Middleware =>
  (ctx, next) => {
    log.push(`${name}: ${ctx.message.type} #${ctx.attempt}`)
    return next()
  }

const bus = new MessageBus({
  middleware: [trace('bus'), retry({ attempts: 3, backoff: { initialDelay: 5 } }), timeout(20)],
})
const charged: number[] = []
bus.handle(Charged, (event) => void charged.push(event.payload.attempt))
bus.handle(
  Charge,
  async (_cmd, ctx) => {
    ctx.publish(Charged({ attempt: ctx.attempt })) // dropped unless this attempt succeeds
    if (ctx.attempt === 1) {
      // Too slow: timeout() aborts ctx.signal after 20 ms, and a cooperative handler stops.
      await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve))
      ctx.signal.throwIfAborted()
    }
    if (ctx.attempt === 2) throw new Error('card network hiccup') // retryable by default
    return 'paid'
  },
  { middleware: [trace('own')] },
)

async function main(): Promise<void> {
  assert.equal(await bus.execute(Charge()), 'paid')
  assert.deepEqual(charged, [3])
  const wrapped = ['bus: Charge #1', 'own: Charge #1', 'own: Charge #2', 'own: Charge #3']
  assert.deepEqual(log, [...wrapped, 'bus: Charged #1']) // bus middleware wraps every handler
}
void main()
