import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { Delivery } from '../../../src/index.js'
import { formatRabbitMqTopology } from '../../../src/rabbitmq/index.js'
import { amqpUrl, bytes, sleep, TestBroker, until } from './support.js'

const messages = (n: number, key?: (i: number) => string | undefined) =>
  Array.from({ length: n }, (_, i) => ({
    id: `m${i}`,
    key: key?.(i),
    headers: { i: String(i) },
    body: bytes(String(i)),
  }))

describe.skipIf(amqpUrl === null)('RabbitMqTransport consumer groups', () => {
  let broker: TestBroker
  beforeEach(() => {
    broker = new TestBroker(amqpUrl!)
  })
  afterEach(async () => {
    await broker.cleanup()
  })

  it('gives every group its own durable queue bound to the topic, and every group every message', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    const seen: Record<string, string[]> = { billing: [], shipping: [] }
    for (const group of ['billing', 'shipping']) {
      broker.track(transport.topology(topic, group))
      await transport.subscribe(topic, async (d) => void seen[group]!.push(d.id), { group })
    }
    await transport.publish(topic, messages(20))
    await until('both groups to get everything', () =>
      Object.values(seen).every((ids) => ids.length >= 20),
    )
    await sleep(100)
    for (const ids of Object.values(seen))
      expect(ids.sort()).toEqual(
        messages(20)
          .map((m) => m.id)
          .sort(),
      )
    const channel = await (await broker.raw()).createChannel()
    for (const group of ['billing', 'shipping']) {
      const { queue, deadLetterQueue } = transport.topology(topic, group)
      expect(queue).toBe(`${broker.id}:${topic}:${group}`)
      await expect(channel.checkQueue(queue)).resolves.toMatchObject({ queue })
      await expect(channel.checkQueue(deadLetterQueue)).resolves.toMatchObject({ messageCount: 0 })
    }
  })

  it("shares a group's messages between its subscriptions, each message to one of them", async () => {
    const topic = broker.topic()
    broker.track(broker.transport().topology(topic, 'workers'))
    const got: string[][] = [[], []]
    for (const list of got) {
      const transport = broker.transport()
      await transport.subscribe(
        topic,
        async (d) => {
          list.push(d.id)
          await sleep(2)
        },
        { group: 'workers', concurrency: 2 },
      )
    }
    await broker.transport().publish(topic, messages(60))
    await until('all 60', () => got[0]!.length + got[1]!.length >= 60)
    await sleep(100)
    expect([...got[0]!, ...got[1]!].sort()).toEqual(
      messages(60)
        .map((m) => m.id)
        .sort(),
    )
    expect(got[0]!.length).toBeGreaterThan(0)
    expect(got[1]!.length).toBeGreaterThan(0)
  })

  it('keeps the prefetch at concurrency and runs one key at a time within a subscription', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    broker.track(transport.topology(topic, 'g'))
    const running = new Map<string, number>()
    let now = 0
    let most = 0
    let overlaps = 0
    const order = new Map<string, string[]>()
    await transport.subscribe(
      topic,
      async (d: Delivery) => {
        now++
        most = Math.max(most, now)
        const key = d.key!
        running.set(key, (running.get(key) ?? 0) + 1)
        if (running.get(key)! > 1) overlaps++
        order.set(key, [...(order.get(key) ?? []), d.id])
        await sleep(5)
        running.set(key, running.get(key)! - 1)
        now--
      },
      { group: 'g', concurrency: 4 },
    )
    const sent = messages(60, (i) => `k${i % 3}`)
    await transport.publish(topic, sent)
    await until('all 60', () => [...order.values()].flat().length >= 60)
    expect(overlaps).toBe(0)
    expect(most).toBeLessThanOrEqual(4)
    expect(most).toBeGreaterThan(1) // different keys did run in parallel
    for (const [key, ids] of order)
      expect(ids).toEqual(sent.filter((m) => m.key === key).map((m) => m.id))
  })

  it('declares the topology idempotently and prints it', async () => {
    const transport = broker.transport({ queueType: 'classic' })
    const topic = broker.topic()
    const retry = { maxAttempts: 4, delayMs: (n: number) => 1000 * n }
    const topology = broker.track(transport.topology(topic, 'g', retry))
    await transport.declareTopology(topic, 'g')
    await transport.declareTopology(topic, 'g')
    const text = formatRabbitMqTopology(topology)
    expect(text).toContain(`exchange ${broker.id} (topic, durable)`)
    expect(text).toContain(`queue ${topology.queue} (group, durable) x-queue-type="classic"`)
    expect(text).toContain(`bind ${broker.id} -> ${topology.queue} key "${topic}"`)
    for (const ms of [1000, 2000, 3000]) expect(text).toContain(`${topology.queue}:delay:${ms} `)
    // The same names under other arguments are refused, with a hint, not retried.
    const quorum = broker.transport({ queueType: 'quorum' })
    const error: unknown = await quorum.declareTopology(topic, 'g').catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'SWITCHYARD_TRANSPORT', retryable: false })
    expect((error as Error).message).toMatch(/PRECONDITION_FAILED|other arguments/)
  })
})
