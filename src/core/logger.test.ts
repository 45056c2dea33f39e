import { Writable } from 'node:stream'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { correlation, defineCommand, defineEvent, logging, MessageBus } from '../index.js'

const Ship = defineCommand('Ship').withPayload<{ orderId: string }>()
const Shipped = defineEvent('Shipped')

function pinoInto(lines: Record<string, unknown>[], level: string) {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  return pino({ level }, stream)
}

describe('a real pino logger', () => {
  it('plugs in as the bus logger: failures, middleware lines and child bindings arrive as JSON', async () => {
    const lines: Record<string, unknown>[] = []
    const bus = new MessageBus({
      logger: pinoInto(lines, 'debug'),
      middleware: [correlation(), logging()],
    })
    bus.handle(Ship, (cmd, ctx) => {
      ctx.logger.info({ orderId: cmd.payload.orderId }, 'shipping')
      ctx.publish(Shipped())
    })
    bus.handle(Shipped, () => {
      throw new Error('label printer jammed')
    })
    const cmd = Ship({ orderId: 'o1' }, { correlationId: 'req-1' })
    await bus.execute(cmd)
    await new Promise((resolve) => setImmediate(resolve))
    const shipping = lines.find((l) => l.msg === 'shipping')
    expect(shipping).toMatchObject({
      level: 30,
      orderId: 'o1',
      correlationId: 'req-1',
      messageId: cmd.id,
    })
    const handled = lines.find((l) => l.msg === 'message handled' && l.messageType === 'Ship')
    expect(handled).toMatchObject({ level: 20, handler: 'Ship handler', correlationId: 'req-1' })
    const failed = lines.find((l) => l.msg === 'event handler failed')
    expect(failed).toMatchObject({
      level: 50,
      messageType: 'Shipped',
      err: { message: 'label printer jammed' },
    })
  })

  it('costs nothing at disabled levels: no debug lines at level warn', async () => {
    const lines: Record<string, unknown>[] = []
    const bus = new MessageBus({ logger: pinoInto(lines, 'warn'), middleware: [logging()] })
    bus.handle(Ship, () => undefined)
    await bus.execute(Ship({ orderId: 'o1' }))
    await new Promise((resolve) => setImmediate(resolve))
    expect(lines).toEqual([])
  })
})
