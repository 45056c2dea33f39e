import assert from 'node:assert/strict'
import { gate, Recorder, sleep, type Scenario } from './support.js'

/**
 * A handler that gives up because its subscription is closing (it rejects after the signal
 * aborted) gets its message given back: not counted as a failed attempt, never dead-lettered.
 */
export const rejectedWhileClosing: Scenario = {
  name: 'a handler that rejects while its subscription closes gets its message back, not counted as a failure',
  async run(s) {
    const retry = { maxAttempts: 1, delayMs: () => 10 } // any counted failure would dead-letter it
    const topic = s.topic()
    const group = s.group()
    const message = s.message()
    const entered = gate()
    const first = new Recorder(async (_delivery, signal) => {
      entered.open()
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()))
      throw new Error('stopping: the handler gave up')
    })
    const subscription = await s.h.subscriber.subscribe(topic, first.handler, {
      group,
      concurrency: 1,
      retry,
    })
    await s.h.publisher.publish(topic, [message])
    await entered.promise
    await subscription.close()

    const next = new Recorder()
    await s.h.subscriber.subscribe(topic, next.handler, { group, concurrency: 1, retry })
    await s.eventually('the message to reach the next subscription', () =>
      next.hasHandled([message.id]),
    )
    await sleep(50)
    if (s.h.deadLetters !== undefined)
      assert.deepEqual(await s.h.deadLetters(topic, group), [], 'nothing was dead-lettered')
  },
}
