import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isSwitchyardError } from '../../../src/index.js'
import { RabbitMqTransport } from '../../../src/rabbitmq/index.js'
import { amqpUrl, bytes, TestBroker, text } from './support.js'

describe.skipIf(amqpUrl === null)('RabbitMqTransport publishing', () => {
  let broker: TestBroker
  beforeEach(() => {
    broker = new TestBroker(amqpUrl!)
  })
  afterEach(async () => {
    await broker.cleanup()
  })

  it('resolves once RabbitMQ confirmed every message, mapped to persistent AMQP messages', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    const topology = broker.track(await transport.declareTopology(topic, 'billing'))
    await transport.publish(topic, [
      {
        id: 'm1',
        key: 'order-1',
        headers: { 'sy-correlation-id': 'c-1', note: 'ünïcode' },
        body: bytes('one'),
      },
      { id: 'm2', headers: {}, body: new Uint8Array([0, 255, 1]) },
    ])
    // The confirms came back, so both are in the group queue already.
    const channel = await (await broker.raw()).createChannel()
    const first = await channel.get(topology.queue, { noAck: true })
    const second = await channel.get(topology.queue, { noAck: true })
    expect(first).not.toBe(false)
    expect(second).not.toBe(false)
    if (first === false || second === false) return
    expect(first.properties.messageId).toBe('m1')
    expect(first.properties.deliveryMode).toBe(2)
    expect(first.properties.contentType).toBe('application/cloudevents+json')
    expect(first.properties.headers).toMatchObject({
      'sy-correlation-id': 'c-1',
      note: 'ünïcode',
      'x-switchyard-key': 'order-1',
    })
    expect(first.fields.exchange).toBe(broker.id)
    expect(first.fields.routingKey).toBe(topic)
    expect(text(first.content)).toBe('one')
    expect(second.properties.messageId).toBe('m2')
    expect(second.properties.headers?.['x-switchyard-key']).toBeUndefined()
    expect([...second.content]).toEqual([0, 255, 1])
  })

  it('refuses a message no group receives with SWITCHYARD_UNROUTABLE by default, and accepts it when told to', async () => {
    const topic = broker.topic('nobody-listens')
    const message = { id: 'm1', headers: {}, body: bytes('x') }
    const lenient = broker.transport({ unroutable: 'accept' })
    await expect(lenient.publish(topic, [message])).resolves.toBeUndefined()
    const strict = broker.transport()
    const error: unknown = await strict.publish(topic, [message]).catch((e: unknown) => e)
    expect(isSwitchyardError(error, 'SWITCHYARD_UNROUTABLE')).toBe(true)
    expect((error as { retryable: boolean }).retryable).toBe(true)
    broker.track(await strict.declareTopology(topic, 'late'))
    await expect(strict.publish(topic, [message])).resolves.toBeUndefined()
  })

  it('rejects the publishes of a channel that RabbitMQ closed, and publishes on a new one after', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    await transport.publish(topic, [{ id: 'm1', headers: {}, body: bytes('1') }])
    // Delete the exchange under the transport: the next publish makes RabbitMQ close the channel (404).
    const admin = await (await broker.raw()).createChannel()
    await admin.deleteExchange(broker.id)
    const error: unknown = await transport
      .publish(topic, [{ id: 'm2', headers: {}, body: bytes('2') }])
      .catch((e: unknown) => e)
    expect(isSwitchyardError(error, 'SWITCHYARD_TRANSPORT')).toBe(true)
    expect((error as { retryable: boolean }).retryable).toBe(true)
    // A new channel declares the exchange again, but the group's binding went with the old one:
    // the next publish reaches no queue, and is refused rather than dropped.
    const unroutable: unknown = await transport
      .publish(topic, [{ id: 'm3', headers: {}, body: bytes('3') }])
      .catch((e: unknown) => e)
    expect(isSwitchyardError(unroutable, 'SWITCHYARD_UNROUTABLE')).toBe(true)
    await transport.declareTopology(topic, 'g') // binds the group queue again
    await transport.publish(topic, [{ id: 'm3', headers: {}, body: bytes('3') }])
  })

  it('refuses to publish after close, and never closes a connection it was given', async () => {
    const connection = await broker.raw()
    const transport = new RabbitMqTransport({ connection, namespace: broker.id })
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    await transport.publish(topic, [{ id: 'm1', headers: {}, body: bytes('1') }])
    await Promise.all([transport.close(), transport.close()])
    await transport.close()
    const error: unknown = await transport.publish(topic, []).catch((e: unknown) => e)
    expect(isSwitchyardError(error, 'SWITCHYARD_TRANSPORT_CLOSED')).toBe(true)
    const channel = await connection.createChannel() // still open
    await channel.deleteExchange(broker.id)
    await channel.close()
  })

  it('fails with a typed error at once when the broker cannot be reached at all', async () => {
    const transport = broker.transport({}, 'amqp://guest:guest@127.0.0.1:1')
    const started = Date.now()
    const error: unknown = await transport
      .publish(broker.topic(), [{ id: 'm1', headers: {}, body: bytes('1') }])
      .catch((e: unknown) => e)
    expect(isSwitchyardError(error, 'SWITCHYARD_TRANSPORT')).toBe(true)
    expect(transport.status).toBe('down')
    // While down, later publishes fail at once too (no waiting for the broker).
    const again: unknown = await transport
      .publish(broker.topic(), [{ id: 'm2', headers: {}, body: bytes('2') }])
      .catch((e: unknown) => e)
    expect(isSwitchyardError(again, 'SWITCHYARD_TRANSPORT')).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
  })
})
