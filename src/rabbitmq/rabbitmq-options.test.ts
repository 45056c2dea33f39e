import { describe, expect, it } from 'vitest'
import { isSwitchyardError } from '../index.js'
import { resolveOptions } from './rabbitmq-options.js'

const factory = () => Promise.reject(new Error('not used'))

describe('the RabbitMqTransport options', () => {
  it('applies the defaults in one place', () => {
    expect(resolveOptions({ connection: factory })).toMatchObject({
      namespace: 'switchyard',
      queueType: 'quorum',
      deliveryLimit: 20,
      unroutable: 'reject',
      publishTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
      contentType: 'application/cloudevents+json',
      reconnect: { initialDelayMs: 200, maxDelayMs: 10_000 },
    })
  })

  it('reports every problem at once', () => {
    let error: unknown
    try {
      resolveOptions({
        connection: {} as never,
        namespace: 'amq.x',
        queueType: 'lazy' as never,
        deliveryLimit: -1,
        unroutable: 'drop' as never,
        publishTimeoutMs: 0,
        connectTimeoutMs: Number.NaN,
        contentType: '',
        reconnect: { initialDelayMs: 100, maxDelayMs: 50 },
      })
    } catch (e) {
      error = e
    }
    expect(isSwitchyardError(error, 'SWITCHYARD_CONFIGURATION')).toBe(true)
    expect((error as { problems: string[] }).problems).toHaveLength(9)
  })
})
