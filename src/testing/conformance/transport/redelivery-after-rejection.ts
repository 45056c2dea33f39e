import assert from 'node:assert/strict'
import { assertIntact, ids, Recorder, sleep, type Scenario } from './support.js'

/** A rejected delivery comes back, the same message with `attempt` + 1 (Watermill's TestContinueAfterErrors). */
export const redeliveryAfterRejection: Scenario = {
  name: 'a rejected delivery is redelivered, the same message with attempt + 1, until it is acknowledged',
  needs: ['redeliversOnNack'],
  async run(s) {
    const topic = s.topic()
    const failing = Array.from({ length: 5 }, (_, i) =>
      s.message({ key: i % 2 === 0 ? s.key(String(i)) : undefined, headers: { 'x-n': String(i) } }),
    )
    const healthy = s.message()
    const failUntil = 3
    const recorder = new Recorder((d) => {
      if (d.id !== healthy.id && d.attempt < failUntil)
        throw new Error(`attempt ${d.attempt} of ${d.id} fails`)
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group: s.group(),
      concurrency: 3,
      retry: { maxAttempts: 5, delayMs: () => 10 },
    })
    await s.h.publisher.publish(topic, [...failing, healthy])
    await s.eventually('every message to be acknowledged', () =>
      recorder.hasHandled(ids([...failing, healthy])),
    )
    await sleep(100) // an acknowledged message must not come back
    for (const expected of failing) {
      const deliveries = recorder.of(expected.id)
      assert.deepEqual(
        deliveries.map((d) => d.attempt),
        [1, 2, 3],
        `the deliveries of ${expected.id} count their attempts and stop at the acknowledgement`,
      )
      for (const d of deliveries) assertIntact(d, expected)
    }
    assert.deepEqual(
      recorder.of(healthy.id).map((d) => d.attempt),
      [1],
      "other messages' failures do not touch a healthy one",
    )
  },
}

/** A redelivery waits `retry.delayMs(attempt)` after the failure. */
export const delayedRedelivery: Scenario = {
  name: 'a redelivery waits retry.delayMs(attempt) after the failed attempt',
  needs: ['redeliversOnNack', 'delayedRedelivery'],
  async run(s) {
    const topic = s.topic()
    const delays = [150, 300]
    const failedAt: number[] = []
    const deliveredAt: number[] = []
    const recorder = new Recorder((d) => {
      deliveredAt.push(Date.now())
      if (d.attempt <= delays.length) {
        failedAt.push(Date.now())
        throw new Error(`attempt ${d.attempt} fails`)
      }
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group: s.group(),
      retry: { maxAttempts: 5, delayMs: (attempt) => delays[attempt - 1] ?? 0 },
    })
    const message = s.message()
    await s.h.publisher.publish(topic, [message])
    await s.eventually('the third attempt to succeed', () => recorder.hasHandled([message.id]))
    assert.deepEqual(
      recorder.deliveries.map((d) => d.attempt),
      [1, 2, 3],
    )
    delays.forEach((delay, i) => {
      const waited = deliveredAt[i + 1]! - failedAt[i]!
      // A lower bound only (timers never fire early; 20 ms covers clock rounding): not a speed test.
      assert.ok(
        waited >= delay - 20,
        `attempt ${i + 2} came ${waited} ms after the failure, before its ${delay} ms delay`,
      )
    })
  },
}
