import { describe, expect, it } from 'vitest'
import { DEAD_LETTER_HEADERS } from '../index.js'
import type { AmqpMessage, AmqpPublishOptions } from './rabbitmq-client.js'
import {
  attemptOf,
  deadLetterOptions,
  FAILED_ATTEMPTS_HEADER,
  fromDeadLetterMessage,
  KEY_HEADER,
  publishOptions,
  retryOptions,
  toDelivery,
  userHeaders,
} from './rabbitmq-messages.js'

/** What a consumer would receive for a publish with these options. */
const received = (
  options: AmqpPublishOptions,
  content = Buffer.from('body'),
  fields: Partial<AmqpMessage['fields']> = {},
): AmqpMessage => ({
  content,
  fields: { deliveryTag: 1, exchange: 'sy', routingKey: 'orders', ...fields },
  properties: options,
})

describe('the AMQP message mapping', () => {
  const message = {
    id: 'm-1',
    key: 'order-7',
    headers: { 'sy-correlation-id': 'c-1', note: 'ü' },
    body: new Uint8Array([1, 2, 3]),
  }

  it('maps id, key and headers to AMQP properties, persistent and mandatory', () => {
    const options = publishOptions(message, 'application/cloudevents+json')
    expect(options).toMatchObject({
      messageId: 'm-1',
      headers: { 'sy-correlation-id': 'c-1', note: 'ü', [KEY_HEADER]: 'order-7' },
      contentType: 'application/cloudevents+json',
      persistent: true,
      mandatory: true,
    })
    expect(publishOptions({ ...message, key: undefined }, 'x').headers).not.toHaveProperty(
      KEY_HEADER,
    )
  })

  it('hands the handler the original id, key and headers and its own copy of the body', () => {
    const content = Buffer.from([1, 2, 3])
    const delivery = toDelivery(received(publishOptions(message, 'x'), content), 'orders', 1)
    expect(delivery).toMatchObject({
      id: 'm-1',
      key: 'order-7',
      headers: message.headers,
      topic: 'orders',
      attempt: 1,
    })
    expect(Object.getPrototypeOf(delivery!.body)).toBe(Uint8Array.prototype)
    delivery!.body.fill(0)
    expect([...content]).toEqual([1, 2, 3])
    expect(toDelivery(received({ headers: {} }), 'orders', 1)).toBeUndefined()
  })

  it('keeps broker and internal headers away from handlers, and non-string values', () => {
    expect(
      userHeaders({
        a: 'kept',
        [KEY_HEADER]: 'k',
        [FAILED_ATTEMPTS_HEADER]: 2,
        [DEAD_LETTER_HEADERS.firstFailure]: '2026-01-01T00:00:00.000Z',
        'x-death': [{ count: 1 }],
        'x-first-death-reason': 'expired',
        'x-last-death-queue': 'q',
        'x-delivery-count': 3,
        number: 5,
      }),
    ).toEqual({ a: 'kept' })
  })

  it('counts attempts from the retry copy, the quorum delivery count or the redelivered flag', () => {
    expect(attemptOf(received({ headers: {} }))).toBe(1)
    expect(attemptOf(received({ headers: {} }, undefined, { redelivered: true }))).toBe(2)
    expect(
      attemptOf(received({ headers: { 'x-delivery-count': 3 } }, undefined, { redelivered: true })),
    ).toBe(4)
    expect(attemptOf(received({ headers: { [FAILED_ATTEMPTS_HEADER]: 2 } }))).toBe(3)
    expect(
      attemptOf(received({ headers: { [FAILED_ATTEMPTS_HEADER]: 2, 'x-delivery-count': 1 } })),
    ).toBe(4)
  })

  it('carries the failed attempts and first failure on a retry copy, without broker headers', () => {
    const original = received({
      ...publishOptions(message, 'x'),
      headers: {
        ...publishOptions(message, 'x').headers,
        'x-death': [{}],
        'x-first-death-reason': 'expired',
      },
    })
    const copy = retryOptions(original, 2, '2026-01-01T00:00:00.000Z')
    expect(copy).toMatchObject({
      messageId: 'm-1',
      contentType: 'x',
      persistent: true,
      mandatory: true,
    })
    expect(copy.headers).toEqual({
      ...message.headers,
      [KEY_HEADER]: 'order-7',
      [FAILED_ATTEMPTS_HEADER]: 2,
      [DEAD_LETTER_HEADERS.firstFailure]: '2026-01-01T00:00:00.000Z',
    })
  })

  it('reads a dead letter back as it was written', () => {
    const original = received(publishOptions(message, 'x'), Buffer.from([1, 2, 3]))
    const facts = {
      reason: 'boom',
      attempts: 5,
      firstFailureAt: '2026-01-01T00:00:00.000Z',
      lastFailureAt: '2026-01-01T00:01:00.000Z',
      topic: 'orders',
      group: 'billing',
    }
    const letter = fromDeadLetterMessage(
      received(deadLetterOptions(original, facts), Buffer.from([1, 2, 3])),
      'ignored',
      'ignored',
    )
    expect(letter).toEqual({ ...facts, message: { ...message, body: new Uint8Array([1, 2, 3]) } })
  })

  it("reads a dead letter RabbitMQ made itself (a quorum queue's delivery limit)", () => {
    const letter = fromDeadLetterMessage(
      received({
        messageId: 'm-1',
        headers: {
          a: 'b',
          // The dead-letter queue's own count (it grows with every deadLetters() read): ignored.
          'x-delivery-count': 3,
          'x-first-death-reason': 'delivery_limit',
          'x-death': [{ time: { '!': 'timestamp', value: 1_700_000_000 } }],
        },
      }),
      'orders',
      'billing',
      20,
    )
    expect(letter).toMatchObject({
      topic: 'orders',
      group: 'billing',
      reason: 'RabbitMQ dead-lettered it (delivery_limit)',
      attempts: 21,
      lastFailureAt: new Date(1_700_000_000_000).toISOString(),
      message: { id: 'm-1', headers: { a: 'b' } },
    })
  })

  it('adds the failed attempts of a retry copy to the deliveries the limit allowed', () => {
    const letter = fromDeadLetterMessage(
      received({
        messageId: 'm-2',
        headers: { [FAILED_ATTEMPTS_HEADER]: 2, 'x-first-death-reason': 'delivery_limit' },
      }),
      'orders',
      'billing',
      3,
    )
    expect(letter.attempts).toBe(6)
  })
})
