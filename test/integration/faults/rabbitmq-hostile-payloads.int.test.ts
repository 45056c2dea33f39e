/**
 * Hostile payload matrix (RELIABILITY.md T20) through RabbitMQ: raw bodies published straight to
 * the namespace's exchange with amqplib (no Switchyard encoding on the way), consumed by a
 * `Consumer` with the PostgreSQL inbox. Each must be dead-lettered at once (attempts 1) with its
 * stable error code at the head of the reason, without a handler call, an effect or a crash of the
 * consumer, and without touching `Object.prototype`; a valid message published after them must
 * still be handled. The test reports the slowest rejection (publish → dead letter written).
 */
import { performance } from 'node:perf_hooks'
import { describe, expect, inject, it } from 'vitest'
import { type Consumer, encodeEnvelope, ErrorCode } from '../../../src/index.js'
import { report, waitFor } from '../../helpers/crash-harness.js'
import {
  effectCounts,
  inboxConsumer,
  placedEvent,
  prepareConsumerSchema,
  tapped,
  wire,
} from '../../helpers/inbox-consumer.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'
import { amqpUrl, TestBroker } from '../rabbitmq/support.js'

const pgUrl = inject('services').postgres ?? null
const GROUP = 'billing'
const MAX_BYTES = 64 * 1024

/** An envelope as the outbox writes it, with `patch` applied to its JSON object. */
function envelope(id: string, patch: (e: Record<string, unknown>) => void = () => undefined) {
  const e: Record<string, unknown> = {
    specversion: '1.0',
    id,
    type: 'faults.Placed',
    source: '/hostile',
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    sykind: 'event',
    correlationid: id,
    data: { orderId: 'o-1', n: 1 },
  }
  patch(e)
  return JSON.stringify(e)
}

const deep = (levels: number): string => `${'['.repeat(levels)}${']'.repeat(levels)}`

/** Each case: a message id, its raw body and the code its dead letter must carry. */
const cases: { id: string; body: Buffer; code: string }[] = [
  { id: 'not-json', body: Buffer.from('{not json'), code: ErrorCode.Undecodable },
  {
    id: 'truncated-envelope',
    body: Buffer.from(envelope('truncated-envelope').slice(0, 60)),
    code: ErrorCode.Undecodable,
  },
  {
    id: 'invalid-utf8',
    body: Buffer.concat([Buffer.from('{"specversion":"1.0","id":"'), Buffer.from([0xc3, 0x28])]),
    code: ErrorCode.Undecodable,
  },
  { id: 'json-array', body: Buffer.from('[1,2,3]'), code: ErrorCode.InvalidEnvelope },
  {
    id: 'not-an-envelope',
    body: Buffer.from('{"hello":"world"}'),
    code: ErrorCode.InvalidEnvelope,
  },
  {
    id: 'envelope-without-id',
    body: Buffer.from(envelope('x', (e) => delete e.id)),
    code: ErrorCode.InvalidEnvelope,
  },
  {
    id: 'unknown-specversion',
    body: Buffer.from(envelope('unknown-specversion', (e) => (e.specversion = '0.3'))),
    code: ErrorCode.UnsupportedEnvelopeVersion,
  },
  {
    id: 'unknown-type',
    body: Buffer.from(envelope('unknown-type', (e) => (e.type = 'faults.Cancelled'))),
    code: ErrorCode.UnknownMessageType,
  },
  {
    id: 'a-command',
    body: Buffer.from(envelope('a-command', (e) => (e.sykind = 'command'))),
    code: ErrorCode.UnknownMessageType,
  },
  {
    id: 'invalid-payload',
    body: Buffer.from(envelope('invalid-payload', (e) => (e.data = { orderId: 5, n: 'x' }))),
    code: ErrorCode.ValidationFailed,
  },
  {
    id: 'unsafe-integer',
    body: Buffer.from(
      envelope('unsafe-integer', (e) => (e.data = { orderId: 'o-1', n: 2 ** 53 + 2 })),
    ),
    code: ErrorCode.ValidationFailed,
  },
  {
    id: 'proto-pollution',
    body: Buffer.from(
      '{"specversion":"1.0","id":"proto-pollution","type":"faults.Placed","source":"/x","data":{"orderId":"o-1","n":1,"__proto__":{"polluted":true}}}',
    ),
    code: ErrorCode.UnsafePayload,
  },
  {
    id: 'proto-pollution-top',
    body: Buffer.from(
      '{"__proto__":{"polluted":true},"specversion":"1.0","id":"proto-pollution-top","type":"faults.Placed","source":"/x","data":{"orderId":"o-1","n":1}}',
    ),
    code: ErrorCode.UnsafePayload,
  },
  {
    id: 'constructor-prototype',
    body: Buffer.from(
      envelope(
        'constructor-prototype',
        (e) => (e.data = { orderId: 'o-1', n: 1, constructor: { prototype: { polluted: true } } }),
      ),
    ),
    code: ErrorCode.UnsafePayload,
  },
  {
    id: 'proto-in-headers',
    body: Buffer.from(envelope('proto-in-headers', (e) => (e.syheaders = '{"__proto__":"x"}'))),
    code: ErrorCode.InvalidEnvelope,
  },
  {
    id: 'too-deep',
    body: Buffer.from(
      envelope('too-deep', (e) => (e.data = { orderId: 'o-1', n: 1, nested: 'DEEP' })).replace(
        '"DEEP"',
        deep(10_000),
      ),
    ),
    code: ErrorCode.UnsafePayload,
  },
  {
    id: 'too-large',
    body: Buffer.from(
      envelope('too-large', (e) => (e.data = { orderId: 'o-1', n: 1, pad: 'x'.repeat(MAX_BYTES) })),
    ),
    code: ErrorCode.MessageTooLarge,
  },
  {
    id: 'huge-traceparent',
    body: Buffer.from(envelope('huge-traceparent', (e) => (e.traceparent = 'f'.repeat(10_000)))),
    code: ErrorCode.InvalidEnvelope,
  },
]

describe.skipIf(amqpUrl === null || pgUrl === null)(
  'hostile payloads published raw through RabbitMQ (T20)',
  () => {
    it(`dead-letters each of ${cases.length} hostile bodies at once with its code, calling no handler`, async () => {
      const broker = new TestBroker(amqpUrl!)
      const pool = createPool(pgUrl!)
      const schema = uniqueSchema('syr')
      const topic = broker.topic('orders')
      const Placed = placedEvent(topic)
      const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort().join()
      let consumer: Consumer | undefined
      try {
        await prepareConsumerSchema(pool, schema)
        const transport = broker.transport()
        broker.track(transport.topology(topic, GROUP))
        const handled: string[] = []
        const delivered: string[] = []
        const unhandled: unknown[] = []
        const onUnhandled = (error: unknown): number => unhandled.push(error)
        process.on('unhandledRejection', onUnhandled)
        process.on('uncaughtException', onUnhandled)
        consumer = inboxConsumer({
          pool,
          schema,
          subscriber: tapped(transport, (d) => delivered.push(d.id)),
          event: Placed,
          name: GROUP,
          concurrency: 4,
          limits: { maxBytes: MAX_BYTES },
          onHandle: (e) => handled.push(e.id),
        })
        await consumer.start()

        // Raw publishes: what any client on the broker could send.
        const channel = await (await broker.raw()).createConfirmChannel()
        const publishedAt = new Map<string, number>()
        for (const c of cases) {
          publishedAt.set(c.id, Date.now())
          channel.publish(broker.id, topic, c.body, {
            messageId: c.id,
            persistent: true,
            contentType: 'application/cloudevents+json',
          })
        }
        await channel.waitForConfirms()
        const started = performance.now()
        const letters = await (async () => {
          let read = await transport.deadLetters(topic, GROUP)
          await waitFor(
            'every hostile message in the dead-letter queue',
            async () => (read = await transport.deadLetters(topic, GROUP)).length >= cases.length,
            30_000,
          )
          return read
        })()
        const elapsedMs = Math.round(performance.now() - started)

        // The consumer still works: a valid message is handled after them.
        const valid = Placed({ orderId: 'o-valid', n: 1 })
        await transport.publish(topic, [wire(valid)])
        await waitFor('the valid message', () => handled.includes(valid.id), 15_000)
        process.off('unhandledRejection', onUnhandled)
        process.off('uncaughtException', onUnhandled)

        const byId = new Map(letters.map((l) => [l.message.id, l]))
        const rows = cases.map((c) => {
          const letter = byId.get(c.id)
          return {
            id: c.id,
            code: letter?.reason.split(':')[0],
            attempts: letter?.attempts,
            rejectMs:
              letter === undefined
                ? undefined
                : Date.parse(letter.lastFailureAt) - publishedAt.get(c.id)!,
          }
        })
        const effects = await effectCounts(pool, schema)
        report('rabbitmq-hostile-payloads', 'postgres', {
          cases: cases.length,
          deadLettered: rows.filter((r) => r.code !== undefined).length,
          withExpectedCode: rows.filter((r, i) => r.code === cases[i]!.code).length,
          handlerCalls: handled.filter((id) => id !== valid.id).length,
          effects: effects.size - 1,
          crashes: unhandled.length,
          prototypeTouched:
            Object.getOwnPropertyNames(Object.prototype).sort().join() !== prototypeBefore ||
            ({} as { polluted?: unknown }).polluted !== undefined,
          maxRejectMs: Math.max(...rows.map((r) => r.rejectMs ?? 0)),
          codes: Object.fromEntries(rows.map((r) => [r.id, r.code])),
          elapsedMs,
        })
        expect(rows.map((r) => [r.id, r.code, r.attempts])).toEqual(
          cases.map((c) => [c.id, c.code, 1]),
        )
        expect(letters).toHaveLength(cases.length)
        for (const c of cases)
          expect(Buffer.from(byId.get(c.id)!.message.body).equals(c.body)).toBe(true)
        expect(delivered.filter((id) => id !== valid.id).sort()).toEqual(
          cases.map((c) => c.id).sort(),
        )
        expect(handled).toEqual([valid.id])
        expect([...effects.keys()]).toEqual([valid.id])
        expect(unhandled).toEqual([])
        expect(Object.getOwnPropertyNames(Object.prototype).sort().join()).toBe(prototypeBefore)
        expect(({} as { polluted?: unknown }).polluted).toBeUndefined()
        expect(encodeEnvelope).toBeTypeOf('function') // the codec module is intact
      } finally {
        await consumer?.stop()
        await broker.cleanup()
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
        await pool.end()
      }
    }, 60_000)
  },
)
