import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { DEAD_LETTER_HEADERS } from '../../../src/index.js'
import type { RabbitMqQueueType } from '../../../src/rabbitmq/index.js'
import { amqpUrl, bytes, deadLettersEventually, sleep, TestBroker, text, until } from './support.js'

describe.skipIf(amqpUrl === null)('RabbitMqTransport retries and dead letters', () => {
  let broker: TestBroker
  beforeEach(() => {
    broker = new TestBroker(amqpUrl!)
  })
  afterEach(async () => {
    await broker.cleanup()
  })

  it.each<RabbitMqQueueType>(['quorum', 'classic'])(
    'retries a failing message after its delay through a delay queue, then dead-letters it with reason and attempts (%s)',
    async (queueType) => {
      const transport = broker.transport({ queueType })
      const topic = broker.topic()
      const retry = { maxAttempts: 3, delayMs: (attempt: number) => 200 * attempt }
      const topology = broker.track(transport.topology(topic, 'g', retry))
      const attempts: { attempt: number; at: number; headers: Record<string, string> }[] = []
      let healthy = 0
      await transport.subscribe(
        topic,
        async (d) => {
          if (d.id === 'ok') {
            healthy++
            return
          }
          attempts.push({ attempt: d.attempt, at: Date.now(), headers: { ...d.headers } })
          throw new Error(`handler failed on attempt ${d.attempt}`)
        },
        { group: 'g', retry },
      )
      await transport.publish(topic, [
        { id: 'poison', key: 'k1', headers: { origin: 'test' }, body: bytes('poison') },
        { id: 'ok', headers: {}, body: bytes('fine') },
      ])
      await until('the dead letter', () => attempts.length >= 3)
      const letters = await deadLettersEventually(transport, topic, 'g')
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3])
      // Each retry waited at least its delay (TTL queues never release early).
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(200 - 20)
      expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(400 - 20)
      // Retries hand the handler the original headers only.
      for (const a of attempts) expect(a.headers).toEqual({ origin: 'test' })
      expect(healthy).toBe(1)
      expect(letters).toHaveLength(1)
      const letter = letters[0]!
      expect(letter).toMatchObject({
        topic,
        group: 'g',
        reason: 'handler failed on attempt 3',
        attempts: 3,
        message: { id: 'poison', key: 'k1', headers: { origin: 'test' } },
      })
      expect(text(letter.message.body)).toBe('poison')
      expect(Date.parse(letter.firstFailureAt)).toBeLessThan(Date.parse(letter.lastFailureAt))
      // The group queue is empty (the original was acked after the dead letter was confirmed).
      await sleep(100)
      const channel = await (await broker.raw()).createChannel()
      expect((await channel.checkQueue(topology.queue)).messageCount).toBe(0)
      // The dead letter on the wire: the original message plus DEAD_LETTER_HEADERS.
      const raw = await channel.get(topology.deadLetterQueue, { noAck: false })
      expect(raw).not.toBe(false)
      if (raw === false) return
      expect(raw.properties.messageId).toBe('poison')
      expect(raw.properties.deliveryMode).toBe(2)
      expect(raw.properties.headers).toMatchObject({
        origin: 'test',
        'x-switchyard-key': 'k1',
        [DEAD_LETTER_HEADERS.reason]: 'handler failed on attempt 3',
        [DEAD_LETTER_HEADERS.attempts]: '3',
        [DEAD_LETTER_HEADERS.topic]: topic,
        [DEAD_LETTER_HEADERS.group]: 'g',
      })
      channel.nack(raw, false, true)
    },
  )

  it('dead-letters at once when the handler says { deadLetter }', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    broker.track(transport.topology(topic, 'g'))
    let calls = 0
    await transport.subscribe(
      topic,
      async () => {
        calls++
        return { deadLetter: 'unknown message type "Foo"' }
      },
      { group: 'g' },
    )
    await transport.publish(topic, [{ id: 'm1', headers: {}, body: bytes('x') }])
    const letters = await deadLettersEventually(transport, topic, 'g')
    expect(letters).toMatchObject([{ reason: 'unknown message type "Foo"', attempts: 1 }])
    await sleep(100)
    expect(calls).toBe(1)
    // Reading dead letters does not remove them.
    expect(await transport.deadLetters(topic, 'g')).toHaveLength(1)
  })

  it('dead-letters a message without a messageId instead of dropping it', async () => {
    const transport = broker.transport()
    const topic = broker.topic()
    broker.track(await transport.declareTopology(topic, 'g'))
    let calls = 0
    await transport.subscribe(topic, async () => void calls++, { group: 'g' })
    const channel = await (await broker.raw()).createConfirmChannel()
    channel.publish(broker.id, topic, Buffer.from('foreign'), { persistent: true })
    await channel.waitForConfirms()
    const letters = await deadLettersEventually(transport, topic, 'g')
    expect(letters).toMatchObject([{ reason: 'the message has no messageId property' }])
    expect(calls).toBe(0)
  })
})
