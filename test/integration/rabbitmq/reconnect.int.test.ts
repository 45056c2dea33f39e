/**
 * Connection loss, through a TCP proxy between the transport and the shared broker (the broker is
 * never touched): the proxy resets the connection (`cut`) and refuses new ones (`down`) until `up`.
 */
import { connect } from 'amqplib'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isSwitchyardError } from '../../../src/index.js'
import { RabbitMqTransport } from '../../../src/rabbitmq/index.js'
import { TcpProxy } from '../../helpers/tcp-proxy.js'
import { amqpUrl, bytes, sleep, TestBroker, until } from './support.js'

const message = (id: string) => ({ id, headers: {}, body: bytes(id) })

describe.skipIf(amqpUrl === null)('RabbitMqTransport after a lost connection', () => {
  let broker: TestBroker
  let proxy: TcpProxy
  let viaProxy: string
  beforeEach(async () => {
    broker = new TestBroker(amqpUrl!)
    proxy = await TcpProxy.start({ upstream: amqpUrl! })
    viaProxy = proxy.url(amqpUrl!)
  })
  afterEach(async () => {
    await broker.cleanup()
    await proxy.close()
  })

  it('fails publishes at once with a retryable TransportError while down, and publishes again once reconnected', async () => {
    const transport = broker.transport({}, viaProxy)
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    await transport.publish(topic, [message('before')])
    proxy.down()
    proxy.cut()
    await until('the loss to be noticed', () => transport.status !== 'up')
    for (let i = 0; i < 5; i++) {
      const started = Date.now()
      const error: unknown = await transport
        .publish(topic, [message(`while-down-${i}`)])
        .catch((e: unknown) => e)
      expect(Date.now() - started).toBeLessThan(500) // fails fast, never hangs
      expect(isSwitchyardError(error, 'SWITCHYARD_TRANSPORT')).toBe(true)
      expect((error as { retryable: boolean }).retryable).toBe(true)
      await sleep(100)
    }
    await proxy.up()
    await until('the reconnect', () => transport.status === 'up')
    await transport.publish(topic, [message('after')])
    const channel = await (await broker.raw()).createChannel()
    const ids: string[] = []
    for (;;) {
      const got = await channel.get(transport.topology(topic, 'g').queue, { noAck: true })
      if (got === false) break
      ids.push(got.properties.messageId as string)
    }
    expect(ids).toEqual(['before', 'after'])
  })

  it('rejects the publishes waiting for their confirms when the connection is cut', async () => {
    const transport = broker.transport({}, viaProxy)
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    proxy.latency(300)
    const pending = transport
      .publish(topic, [message('m1'), message('m2')])
      .then(() => 'confirmed')
      .catch((e: unknown) => e)
    await sleep(100)
    proxy.cut()
    const outcome = await pending
    expect(isSwitchyardError(outcome, 'SWITCHYARD_TRANSPORT')).toBe(true)
  })

  it('times a publish out when confirms never come (half-open connection), and recovers through heartbeats', async () => {
    const transport = broker.transport({ publishTimeoutMs: 400 }, `${viaProxy}?heartbeat=1`)
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    proxy.blackhole()
    const started = Date.now()
    const error: unknown = await transport.publish(topic, [message('m1')]).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'SWITCHYARD_PUBLISH_TIMEOUT' })
    expect(Date.now() - started).toBeLessThan(2000)
    proxy.heal()
    // amqplib notices the silent connection after two missed heartbeats; the transport reconnects.
    await until(
      'the reconnect',
      () => transport.status === 'up' && proxy.stats().silent === 0,
      20_000,
    )
    await transport.publish(topic, [message('m2')])
  })

  it('resumes a subscription after the connection is cut, and redelivers what was not settled', async () => {
    const transport = broker.transport({}, viaProxy)
    const publisher = broker.transport() // direct, so publishing does not depend on the proxy
    const topic = broker.topic()
    broker.track(transport.topology(topic, 'g'))
    const deliveries: { id: string; attempt: number }[] = []
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    await transport.subscribe(
      topic,
      async (d) => {
        deliveries.push({ id: d.id, attempt: d.attempt })
        if (d.id === 'held' && d.attempt === 1) await held
      },
      { group: 'g', concurrency: 2 },
    )
    await publisher.publish(topic, [message('held')])
    await until('the held delivery', () => deliveries.length === 1)
    proxy.cut()
    await until('the loss to be noticed', () => transport.status !== 'up')
    release() // the handler finishes after the loss: its ack cannot reach RabbitMQ
    await until('the reconnect', () => transport.status === 'up')
    await publisher.publish(topic, [message('after')])
    await until(
      'the redelivery and the new message',
      () =>
        ['held', 'after'].every((id) => deliveries.some((d) => d.id === id && d.attempt >= 1)) &&
        deliveries.filter((d) => d.id === 'held').length >= 2,
    )
    expect(deliveries.filter((d) => d.id === 'held').map((d) => d.attempt)).toEqual([1, 2])
    expect(deliveries.filter((d) => d.id === 'after')).toHaveLength(1)
  })

  it('survives several cuts in a row while subscribed', async () => {
    const transport = broker.transport({}, viaProxy)
    const publisher = broker.transport()
    const topic = broker.topic()
    broker.track(transport.topology(topic, 'g'))
    const seen = new Set<string>()
    await transport.subscribe(topic, async (d) => void seen.add(d.id), {
      group: 'g',
      concurrency: 4,
    })
    const all: string[] = []
    for (let round = 0; round < 3; round++) {
      const batch = Array.from({ length: 10 }, (_, i) => `r${round}-${i}`)
      all.push(...batch)
      await publisher.publish(topic, batch.map(message))
      proxy.cut()
      await sleep(50)
    }
    await until('every message after three cuts', () => all.every((id) => seen.has(id)))
  })

  it('cannot reopen a connection it was given: publishes then fail with a non-retryable error', async () => {
    const connection = await connect(viaProxy)
    connection.on('error', () => undefined)
    const transport = new RabbitMqTransport({ connection, namespace: broker.id })
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'unused'))
    await transport.publish(topic, [message('m1')])
    proxy.cut()
    await until('the loss to be noticed', () => transport.status === 'down')
    const error: unknown = await transport.publish(topic, [message('m2')]).catch((e: unknown) => e)
    expect(isSwitchyardError(error, 'SWITCHYARD_TRANSPORT')).toBe(true)
    expect((error as { retryable: boolean }).retryable).toBe(false)
    expect((error as Error).message).toMatch(/pass a function that opens a connection/)
    await transport.close()
  })
})
