import assert from 'node:assert/strict'
import { defineCommand, defineEvent, MessageValidationError } from 'switchyard-bus'
import { z } from 'zod'

const Allocate = defineCommand(
  'Allocate',
  z.object({ orderId: z.string(), sku: z.string(), qty: z.number().int().positive() }),
).returns<string>()
const Allocated = defineEvent('Allocated', z.object({ orderId: z.string() }), { topic: 'orders' })
const Shipped = defineEvent('Shipped').withPayload<{ orderId: string }>() // no schema

const cmd = Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }, { headers: { tenant: 'acme' } })
assert.equal(cmd.type, 'Allocate')
assert.match(cmd.id, /^[0-9a-f]{8}-[0-9a-f]{4}-7/) // a UUIDv7
assert.ok(cmd.timestamp <= Date.now()) // milliseconds since the epoch
assert.equal(cmd.correlationId, cmd.id) // an original message correlates with itself
assert.equal(cmd.causationId, undefined)
assert.ok(Allocate.is(cmd) && !Shipped.is(cmd))
assert.equal(Allocated.topic, 'orders')
assert.throws(
  () => Allocate({ orderId: 'o1', sku: 'LAMP', qty: -1 }),
  (error) => error instanceof MessageValidationError && error.issues[0]?.path?.[0] === 'qty',
)
