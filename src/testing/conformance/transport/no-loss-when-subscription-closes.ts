import assert from 'node:assert/strict'
import type { Subscription } from '../../../index.js'
import { ids, random, Recorder, sleep, waitUntil, type Scenario } from './support.js'

/**
 * Subscriptions of one group are closed and replaced again and again while 500 messages flow:
 * every message is still handled at least once, and a closed subscription takes nothing more
 * (Watermill's TestContinueAfterSubscribeClose; duplicates are allowed).
 */
export const noLossWhenSubscriptionCloses: Scenario = {
  name: 'no loss when a subscription closes mid-stream: closing and resubscribing while 500 messages flow, every message arrives',
  async run(s) {
    const topic = s.topic()
    const group = s.group()
    const messages = Array.from({ length: 500 }, (_, i) =>
      s.message({ key: i % 3 === 0 ? s.key(String(i % 13)) : undefined }),
    )
    const lateDeliveries: string[] = []
    const handled = new Set<string>()
    const open = async (n: number): Promise<{ subscription: Subscription; recorder: Recorder }> => {
      let closed = false
      const recorder = new Recorder(async (d) => {
        if (closed) lateDeliveries.push(`${d.id} reached subscription ${n} after it closed`)
        await sleep(random(4))
        handled.add(d.id)
      })
      const subscription = await s.h.subscriber.subscribe(topic, recorder.handler, {
        group,
        concurrency: 4,
        retry: { maxAttempts: 5, delayMs: () => 10 },
      })
      return {
        recorder,
        subscription: {
          close: async () => {
            await subscription.close()
            closed = true
          },
        },
      }
    }
    let current = await open(0)
    let generations = 1
    let stop = false
    const publishing = (async () => {
      for (let batch = 0; batch * 10 < messages.length && !stop; batch++) {
        await s.h.publisher.publish(topic, messages.slice(batch * 10, batch * 10 + 10))
        await sleep(random(3))
        // Every 10 batches, wait for a subscription to close: the stream outlives several of them.
        const generation = generations
        if (batch % 10 === 9) await waitUntil(() => stop || generations > generation, s.deadlineMs)
      }
    })()
    const deadline = Date.now() + s.deadlineMs
    try {
      while (!ids(messages).every((id) => handled.has(id)) && Date.now() < deadline) {
        const before = current.recorder.deliveries.length
        const take = 5 + random(30)
        await s.eventually('the subscription to take messages, or a pause', async () => {
          if (current.recorder.deliveries.length - before >= take) return true
          await sleep(20)
          return ids(messages).every((id) => handled.has(id)) || Math.random() < 0.2
        })
        await current.subscription.close()
        generations++
        if (Math.random() < 0.5) await sleep(random(10)) // a moment with no subscription at all
        current = await open(generations)
      }
    } finally {
      stop = true
      await publishing
      await current.subscription.close()
    }
    const missing = ids(messages).filter((id) => !handled.has(id))
    assert.deepEqual(missing, [], `messages never handled across ${generations} subscriptions`)
    assert.deepEqual(lateDeliveries, [])
    assert.ok(generations >= 5, 'the subscription was replaced several times mid-stream')
  },
}
