import assert from 'node:assert/strict'
import { ids, random, Recorder, sleep, type Scenario } from './support.js'

/** N subscriptions of one group share its messages: each message goes to exactly one of them. */
export const competingConsumers: Scenario = {
  name: 'consumer group: N subscriptions in one group together receive every message, each exactly once absent failures',
  needs: ['consumerGroups'],
  async run(s) {
    const topic = s.topic()
    const group = s.group()
    const recorders = Array.from({ length: 3 }, () => new Recorder(() => sleep(random(4))))
    for (const recorder of recorders)
      await s.h.subscriber.subscribe(topic, recorder.handler, { group, concurrency: 2 })
    const messages = Array.from({ length: 60 }, () => s.message())
    for (let i = 0; i < messages.length; i += 20)
      await s.h.publisher.publish(topic, messages.slice(i, i + 20))
    const all = (): string[] => recorders.flatMap((r) => r.deliveries.map((d) => d.id))
    await s.eventually('every message to reach the group', () => {
      const seen = new Set(all())
      return ids(messages).every((id) => seen.has(id))
    })
    await sleep(100) // room for a duplicate to show up
    const seen = all()
    assert.equal(seen.length, messages.length, 'no message reached two subscriptions, or one twice')
    assert.deepEqual([...seen].sort(), ids(messages).sort())
    for (const recorder of recorders)
      assert.ok(
        recorder.maxRunning <= 2,
        `${recorder.maxRunning} handlers ran at once, over concurrency 2`,
      )
  },
}

/** Two instances (two processes' connections) in one group share its messages the same way. */
export const competingInstances: Scenario = {
  name: 'consumer group across instances: subscriptions on separate connections share the group, each message once',
  needs: ['consumerGroups'],
  needsSharedBroker: true,
  async run(s) {
    const topic = s.topic()
    const group = s.group()
    const other = await s.another()
    const recorders = [new Recorder(() => sleep(random(4))), new Recorder(() => sleep(random(4)))]
    await s.h.subscriber.subscribe(topic, recorders[0]!.handler, { group, concurrency: 2 })
    await other.subscriber.subscribe(topic, recorders[1]!.handler, { group, concurrency: 2 })
    const messages = Array.from({ length: 40 }, () => s.message())
    await s.h.publisher.publish(topic, messages.slice(0, 20))
    await other.publisher.publish(topic, messages.slice(20))
    const all = (): string[] => recorders.flatMap((r) => r.deliveries.map((d) => d.id))
    await s.eventually('every message to reach the group', () => {
      const seen = new Set(all())
      return ids(messages).every((id) => seen.has(id))
    })
    await sleep(100)
    assert.deepEqual(
      [...all()].sort(),
      ids(messages).sort(),
      'each message reached one instance, once',
    )
  },
}
