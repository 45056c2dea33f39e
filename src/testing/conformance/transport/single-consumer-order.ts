import assert from 'node:assert/strict'
import { gate, ids, random, Recorder, sleep, type Scenario } from './support.js'

/** One subscription at concurrency 1: publish order, and the next message waits for the ack (Watermill's TestNoAck). */
export const singleConsumerOrder: Scenario = {
  name: 'ordered with a single consumer: at concurrency 1 messages arrive in publish order, each after the previous one settled',
  needs: ['orderedWithSingleConsumer'],
  async run(s) {
    const topic = s.topic()
    const held = gate()
    s.defer(() => held.open())
    const messages = Array.from({ length: 40 }, () => s.message())
    const recorder = new Recorder(async (d) => {
      if (d.id === messages[0]!.id) await held.promise
      else await sleep(random(3))
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, { group: s.group(), concurrency: 1 })
    await s.h.publisher.publish(topic, messages.slice(0, 20))
    await s.h.publisher.publish(topic, messages.slice(20))
    await s.eventually('the first message', () => recorder.deliveries.length >= 1)
    await sleep(150)
    assert.equal(
      recorder.deliveries.length,
      1,
      'nothing else arrives before the first is acknowledged',
    )
    held.open()
    await s.eventually('every message', () => recorder.hasHandled(ids(messages)))
    assert.deepEqual(
      recorder.deliveries.map((d) => d.id),
      ids(messages),
    )
    assert.equal(recorder.maxRunning, 1)
  },
}
