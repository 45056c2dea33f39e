import assert from 'node:assert/strict'
import { gate, Recorder, sleep, type Scenario } from './support.js'

/**
 * The next message of a key is not handed out before the previous one settled, also while that
 * one waits for a retry; other keys go on meanwhile (Watermill's TestNoAck, per key).
 */
export const keyWaitsForSettlement: Scenario = {
  name: "ordered per key: a key's next message waits for the previous one's settlement (also across a retry); other keys go on",
  needs: ['orderedPerKey'],
  async run(s) {
    const topic = s.topic()
    const key = s.key('hot')
    const first = s.message({ key })
    const second = s.message({ key })
    const other = s.message({ key: s.key('other') })
    const attempt1 = gate()
    const attempt2 = gate()
    s.defer(() => {
      attempt1.open()
      attempt2.open()
    })
    const recorder = new Recorder(async (d) => {
      if (d.id === first.id) await (d.attempt === 1 ? attempt1.promise : attempt2.promise)
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group: s.group(),
      concurrency: 4,
      retry: { maxAttempts: 5, delayMs: () => 10 },
    })
    await s.h.publisher.publish(topic, [first, second, other])
    await s.eventually(
      'the first message of the key and the other key to be delivered',
      () => recorder.hasHandled([other.id]) && recorder.of(first.id).length === 1,
    )
    await sleep(150)
    assert.equal(recorder.of(second.id).length, 0, 'the next message waits while the first runs')

    if (s.features.redeliversOnNack) {
      attempt1.fail(new Error('first attempt fails'))
      await s.eventually('the retry of the first message', () => recorder.of(first.id).length === 2)
      await sleep(150)
      assert.equal(
        recorder.of(second.id).length,
        0,
        'the next message waits while the first one retries',
      )
      attempt2.open()
    } else attempt1.open()

    await s.eventually('the next message of the key', () => recorder.hasHandled([second.id]))
    const sequence = recorder.deliveries.filter((d) => d.key === key).map((d) => d.id)
    assert.deepEqual(sequence.slice(-1), [second.id])
    assert.ok(
      sequence.slice(0, -1).every((id) => id === first.id),
      'every delivery of the first message came before the next one',
    )
  },
}
