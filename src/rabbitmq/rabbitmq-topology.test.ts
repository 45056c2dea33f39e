import { describe, expect, it } from 'vitest'
import { isSwitchyardError } from '../index.js'
import {
  delayQueueDeclaration,
  formatRabbitMqTopology,
  nameProblems,
  rabbitMqGroupNames,
  rabbitMqTopology,
  roundDelay,
} from './rabbitmq-topology.js'

describe('the RabbitMQ topology', () => {
  it('names a queue per topic and group under the namespace exchange', () => {
    expect(rabbitMqGroupNames('switchyard', 'orders.created', 'billing')).toEqual({
      exchange: 'switchyard',
      queue: 'switchyard:orders.created:billing',
      deadLetterExchange: 'switchyard:orders.created:billing:dlx',
      deadLetterQueue: 'switchyard:orders.created:billing:dlq',
    })
  })

  it('refuses names that would collide, act as wildcards or are reserved, all problems at once', () => {
    expect(nameProblems('topic', 'a:b')).toHaveLength(1)
    expect(nameProblems('topic', 'orders.#')).toHaveLength(1)
    expect(nameProblems('group', 'g*')).toEqual([]) // groups are never binding keys
    expect(nameProblems('namespace', 'amq.sy')).toHaveLength(1)
    expect(nameProblems('group', '')).toHaveLength(1)
    expect(nameProblems('topic', 'tab\there')).toHaveLength(1)
    let error: unknown
    try {
      rabbitMqGroupNames('amq.x', 'a*', 'b:c')
    } catch (e) {
      error = e
    }
    expect(isSwitchyardError(error, 'SWITCHYARD_CONFIGURATION')).toBe(true)
    expect((error as { problems: string[] }).problems).toHaveLength(3)
    expect(() => rabbitMqGroupNames('ns', 't'.repeat(200), 'g'.repeat(40))).toThrow(/too long/)
  })

  it('rounds delays up to two significant digits, never shorter than asked', () => {
    const cases: [number, number][] = [
      [0, 0],
      [-5, 0],
      [Number.NaN, 0],
      [7, 7],
      [10, 10],
      [99.2, 100],
      [123, 130],
      [1000, 1000],
      [1001, 1100],
      [1234, 1300],
      [30_000, 30_000],
      [45_678, 46_000],
    ]
    for (const [asked, rounded] of cases) expect(roundDelay(asked)).toBe(rounded)
    for (let ms = 1; ms < 100_000; ms = Math.ceil(ms * 1.37)) {
      expect(roundDelay(ms)).toBeGreaterThanOrEqual(ms)
      expect(roundDelay(ms)).toBeLessThanOrEqual(ms * 1.1 + 1)
    }
  })

  it('sends an expired retry back to its own group queue only', () => {
    const names = rabbitMqGroupNames('sy', 'orders', 'billing')
    expect(delayQueueDeclaration(names, 1234)).toEqual({
      kind: 'queue',
      role: 'delay',
      name: 'sy:orders:billing:delay:1300',
      durable: true,
      arguments: {
        'x-queue-type': 'classic',
        'x-message-ttl': 1300,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'sy:orders:billing',
        'x-expires': 61_300,
      },
      onDemand: true,
    })
  })

  it('declares quorum queues with a delivery limit and at-least-once dead-lettering by default', () => {
    const topology = rabbitMqTopology('orders', 'billing')
    const group = topology.declarations.find((d) => d.kind === 'queue' && d.role === 'group')
    expect(group).toMatchObject({
      name: 'switchyard:orders:billing',
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': 'switchyard:orders:billing:dlx',
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-delivery-limit': 20,
      },
    })
    const classic = rabbitMqTopology('orders', 'billing', { queueType: 'classic' })
    expect(
      classic.declarations.find((d) => d.kind === 'queue' && d.role === 'group'),
    ).toMatchObject({
      arguments: {
        'x-queue-type': 'classic',
        'x-dead-letter-exchange': 'switchyard:orders:billing:dlx',
      },
    })
    const unlimited = rabbitMqTopology('orders', 'billing', { deliveryLimit: 0 })
    const args = unlimited.declarations.find((d) => d.kind === 'queue' && d.role === 'group')
    expect(args).not.toHaveProperty(['arguments', 'x-delivery-limit'])
  })

  it('lists the delay queues of a retry policy and prints everything, one line each', () => {
    const topology = rabbitMqTopology('orders', 'billing', {
      namespace: 'shop',
      retry: { maxAttempts: 5, delayMs: (n) => Math.min(2000, 500 * 2 ** (n - 1)) },
    })
    const delays = topology.declarations.filter((d) => d.kind === 'queue' && d.role === 'delay')
    expect(delays.map((d) => d.kind === 'queue' && d.name)).toEqual([
      'shop:orders:billing:delay:500',
      'shop:orders:billing:delay:1000',
      'shop:orders:billing:delay:2000',
    ])
    const text = formatRabbitMqTopology(topology)
    expect(text.split('\n')).toHaveLength(1 + topology.declarations.length)
    expect(text).toContain('exchange shop (topic, durable)')
    expect(text).toContain('bind shop -> shop:orders:billing key "orders"')
    expect(text).toContain('bind shop:orders:billing:dlx -> shop:orders:billing:dlq')
    expect(text).toContain('[declared on first use]')
  })
})
