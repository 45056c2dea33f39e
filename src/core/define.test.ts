import { type } from 'arktype'
import * as v from 'valibot'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  defineCommand,
  defineEvent,
  defineQuery,
  ErrorCode,
  isMessage,
  MessageValidationError,
} from '../index.js'
import { expectSwitchyardError } from '../testing/index.js'

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

describe('message definitions', () => {
  it('creates plain-data messages with the explicit type, kind and payload', () => {
    const Allocate = defineCommand<{ orderId: string }>('Allocate')
    const cmd = Allocate({ orderId: 'o1' })
    expect(cmd).toMatchObject({ kind: 'command', type: 'Allocate', payload: { orderId: 'o1' } })
    expect(Allocate.type).toBe('Allocate')
    expect(Allocate.kind).toBe('command')
    expect(Allocate.schema).toBeUndefined()
    expect(JSON.parse(JSON.stringify(cmd))).toEqual({ ...cmd })
  })

  it('keeps the type string when the definition is renamed or minified', () => {
    class SomethingElse {}
    const Renamed = defineEvent('OrderPlaced')
    expect(Renamed({ ...new SomethingElse() } as never).type).toBe('OrderPlaced')
  })

  it('gives every message a UUIDv7 id, a timestamp, and correlation = its own id', () => {
    const Ping = defineEvent('Ping')
    const before = Date.now()
    const ping = Ping()
    expect(ping.id).toMatch(UUID_V7)
    expect(ping.timestamp).toBeGreaterThanOrEqual(before)
    expect(ping.timestamp).toBeLessThanOrEqual(Date.now())
    expect(ping.correlationId).toBe(ping.id)
    expect(ping.causationId).toBeUndefined()
    expect(ping.headers).toEqual({})
  })

  it('accepts explicit metadata', () => {
    const Ping = defineEvent('Ping')
    const ping = Ping(undefined, {
      id: 'id-1',
      correlationId: 'c-1',
      causationId: 'x-1',
      timestamp: 5,
      headers: { tenant: 'a' },
    })
    expect(ping).toMatchObject({
      id: 'id-1',
      correlationId: 'c-1',
      causationId: 'x-1',
      timestamp: 5,
      headers: { tenant: 'a' },
    })
  })

  it('recognises its own messages with is(), and no others', () => {
    const A = defineCommand('A')
    const B = defineEvent('B')
    expect(A.is(A())).toBe(true)
    expect(A.is(B())).toBe(false)
    expect(A.is({ type: 'A', kind: 'event', id: 'x' })).toBe(false)
    expect(A.is(null)).toBe(false)
    expect(isMessage(B())).toBe(true)
    expect(isMessage({ type: 'B' })).toBe(false)
  })

  it('records the topic of integration events', () => {
    expect(defineEvent('Allocated', { topic: 'allocation' }).topic).toBe('allocation')
    expect(
      defineEvent('Allocated', z.object({ a: z.string() }), { topic: 'allocation' }).topic,
    ).toBe('allocation')
    expect(defineEvent('Local').topic).toBeUndefined()
  })

  it('rejects a missing or malformed type string with a ConfigurationError', async () => {
    await expectSwitchyardError(() => defineCommand(''), ErrorCode.Configuration)
    await expectSwitchyardError(() => defineEvent('has space'), ErrorCode.Configuration)
    await expectSwitchyardError(() => defineQuery(42 as unknown as string), ErrorCode.Configuration)
  })
})

describe.each([
  ['zod', z.object({ sku: z.string().min(1), qty: z.number().int().positive() })],
  [
    'valibot',
    v.object({
      sku: v.pipe(v.string(), v.minLength(1)),
      qty: v.pipe(v.number(), v.integer(), v.minValue(1)),
    }),
  ],
  ['arktype', type({ sku: 'string > 0', qty: 'number.integer > 0' })],
])('Standard Schema validation with %s', (_name, schema) => {
  const Allocate = defineCommand('Allocate', schema)

  it('validates the payload on creation and keeps the schema output', () => {
    const cmd = Allocate({ sku: 'LAMP', qty: 2 })
    expect(cmd.payload).toEqual({ sku: 'LAMP', qty: 2 })
    expect(Allocate.schema).toBe(schema)
  })

  it('throws MessageValidationError with the schema issues for an invalid payload', async () => {
    const error = await expectSwitchyardError(
      () => Allocate({ sku: '', qty: -1 }),
      ErrorCode.ValidationFailed,
    )
    expect(error).toBeInstanceOf(MessageValidationError)
    const issues = (error as MessageValidationError).issues
    expect(issues.length).toBeGreaterThanOrEqual(2)
    expect(error.retryable).toBe(false)
    expect(error.details.messageType).toBe('Allocate')
    expect(error.message).toContain('Allocate')
    const paths = issues.map((i) =>
      i.path?.map((p) => (typeof p === 'object' ? p.key : p)).join('.'),
    )
    expect(paths).toEqual(expect.arrayContaining(['sku', 'qty']))
  })
})

describe('schemas that transform or validate asynchronously', () => {
  it('uses the schema output (coercion, defaults) as the payload', () => {
    const Create = defineCommand(
      'CreateBatch',
      z.object({ qty: z.coerce.number(), eta: z.string().default('none') }),
    )
    expect(Create({ qty: '3' }).payload).toEqual({ qty: 3, eta: 'none' })
  })

  it('refuses an async schema in the synchronous factory and accepts it in createAsync', async () => {
    const Async = defineEvent(
      'Checked',
      z
        .object({ n: z.number() })
        .refine(async (value) => Promise.resolve(value.n > 0), 'n must be positive'),
    )
    await expectSwitchyardError(() => Async({ n: 1 }), ErrorCode.AsyncSchema)
    expect((await Async.createAsync({ n: 1 })).payload).toEqual({ n: 1 })
    await expectSwitchyardError(Async.createAsync({ n: -1 }), ErrorCode.ValidationFailed)
  })
})
