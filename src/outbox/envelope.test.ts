import { describe, expect, it } from 'vitest'
import { defineCommand, defineEvent, ErrorCode, isSwitchyardError } from '../index.js'
import { decodeEnvelope, encodeEnvelope } from './envelope.js'

const Allocated = defineEvent('Allocated').withPayload<{ orderId: string; note?: string }>()
const bytes = (value: unknown): Uint8Array =>
  new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value))
const valid = {
  specversion: '1.0',
  id: 'm-1',
  type: 'Allocated',
  source: '/orders',
  data: { orderId: 'o1' },
}

describe('the CloudEvents envelope', () => {
  it('round-trips a message: payload, metadata, key, headers and trace context intact', () => {
    const message = Allocated(
      { orderId: 'o1', note: 'ünïcödé ✓ 漢字 🚚' },
      {
        correlationId: 'c-1',
        causationId: 'x-1',
        headers: { tenant: 'acme', traceparent: '00-abc-def-01', tracestate: 'k=v' },
      },
    )
    const decoded = decodeEnvelope(encodeEnvelope(message, { source: '/orders', key: 'order-o1' }))
    expect(decoded.source).toBe('/orders')
    expect(decoded.key).toBe('order-o1')
    expect(decoded.message).toEqual({ ...message, headers: { ...message.headers } })
  })

  it('is readable as plain CloudEvents 1.0 JSON', () => {
    const command = defineCommand('Ship').withPayload<{ n: number }>()({ n: 1 })
    const json = JSON.parse(
      new TextDecoder().decode(encodeEnvelope(command, { source: '/s' })),
    ) as Record<string, unknown>
    expect(json).toMatchObject({
      specversion: '1.0',
      id: command.id,
      type: 'Ship',
      source: '/s',
      datacontenttype: 'application/json',
      sykind: 'command',
      data: { n: 1 },
    })
    expect(new Date(json.time as string).getTime()).toBe(command.timestamp)
  })

  it('refuses to encode what JSON cannot carry', () => {
    const message = Allocated({ orderId: 'o1', note: 10n as unknown as string })
    expect(() => encodeEnvelope(message, { source: '/s' })).toThrow(
      expect.objectContaining({ code: ErrorCode.Unencodable }),
    )
  })
})

describe('decoding hostile bytes', () => {
  const deep = '['.repeat(10_000) + ']'.repeat(10_000)
  const cases: [string, Uint8Array | string, string, number?][] = [
    ['invalid JSON', bytes('{"specversion": "1.0",'), ErrorCode.Undecodable],
    ['invalid UTF-8', new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), ErrorCode.Undecodable],
    ['a JSON array', bytes([1, 2]), ErrorCode.InvalidEnvelope],
    ['a JSON string', bytes('"hello"'), ErrorCode.InvalidEnvelope],
    ['no specversion', bytes({ ...valid, specversion: undefined }), ErrorCode.InvalidEnvelope],
    [
      'specversion 0.3',
      bytes({ ...valid, specversion: '0.3' }),
      ErrorCode.UnsupportedEnvelopeVersion,
    ],
    ['no id', bytes({ ...valid, id: undefined }), ErrorCode.InvalidEnvelope],
    ['a numeric type', bytes({ ...valid, type: 42 }), ErrorCode.InvalidEnvelope],
    [
      'a non-JSON content type',
      bytes({ ...valid, datacontenttype: 'text/xml' }),
      ErrorCode.InvalidEnvelope,
    ],
    ['a bad time', bytes({ ...valid, time: 'yesterday' }), ErrorCode.InvalidEnvelope],
    ['an unknown kind', bytes({ ...valid, sykind: 'query' }), ErrorCode.InvalidEnvelope],
    [
      '__proto__ in data',
      bytes(
        `{"specversion":"1.0","id":"m","type":"T","source":"/s","data":{"__proto__":{"polluted":true}}}`,
      ),
      ErrorCode.UnsafePayload,
    ],
    [
      'constructor.prototype in data',
      bytes({ ...valid, data: { constructor: { prototype: { polluted: true } } } }),
      ErrorCode.UnsafePayload,
    ],
    [
      '10,000-deep nesting',
      bytes(`{"specversion":"1.0","id":"m","type":"T","source":"/s","data":${deep}}`),
      ErrorCode.UnsafePayload,
    ],
    [
      'headers that are not a string map',
      bytes({ ...valid, syheaders: '{"a":1}' }),
      ErrorCode.InvalidEnvelope,
    ],
    [
      'a huge traceparent',
      bytes({ ...valid, traceparent: 'x'.repeat(10_000) }),
      ErrorCode.InvalidEnvelope,
    ],
    [
      '2 MiB over a 1 MiB limit',
      bytes({ ...valid, data: 'x'.repeat(2 * 1024 * 1024) }),
      ErrorCode.MessageTooLarge,
    ],
  ]

  it.each(cases)('rejects %s with a stable code, never another error', (_name, body, code) => {
    let failure: unknown
    try {
      decodeEnvelope(body)
    } catch (error) {
      failure = error
    }
    expect(isSwitchyardError(failure, code as ErrorCode)).toBe(true)
    expect((failure as { retryable: boolean }).retryable).toBe(false)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('accepts large integers and duplicate keys the way JSON.parse does (documented, not an error)', () => {
    const decoded = decodeEnvelope(
      `{"specversion":"1.0","id":"m","id":"m2","type":"T","source":"/s","data":{"n":9007199254740993}}`,
    )
    expect(decoded.message.id).toBe('m2')
    expect((decoded.message.payload as { n: number }).n).toBe(9007199254740992)
  })

  it('returns headers in an object without a prototype', () => {
    const decoded = decodeEnvelope(bytes({ ...valid, syheaders: '{"tenant":"a"}' }))
    expect(Object.getPrototypeOf(decoded.message.headers)).toBeNull()
    expect(decoded.message.headers.tenant).toBe('a')
  })
})
