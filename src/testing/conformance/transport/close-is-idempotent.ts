import assert from 'node:assert/strict'
import type { Subscription } from '../../../index.js'
import { gate, ids, Recorder, sleep, type Scenario } from './support.js'

/**
 * `close()` may be called several times, at once, and from inside a handler; it waits for the
 * handler running, acknowledges what that handler finished, and leaves the rest to the group.
 */
export const closeIsIdempotent: Scenario = {
  name: 'close() is idempotent and safe when called concurrently and from inside a handler',
  async run(s) {
    const retry = { maxAttempts: 5, delayMs: () => 10 }

    // Several close() calls at once while a handler runs.
    const topic = s.topic('concurrent')
    const group = s.group()
    const [m1, m2, m3] = [s.message(), s.message(), s.message()]
    const held = gate()
    s.defer(() => held.open())
    const first = new Recorder(async (d) => {
      if (d.id === m1.id) await held.promise
    })
    const subscription = await s.h.subscriber.subscribe(topic, first.handler, {
      group,
      concurrency: 1,
      retry,
    })
    await s.h.publisher.publish(topic, [m1, m2, m3])
    await s.eventually('the first message to be delivered', () => first.deliveries.length === 1)
    let closed = 0
    const closing = [subscription.close(), subscription.close(), subscription.close()].map((p) =>
      p.then(() => void closed++),
    )
    await sleep(100)
    assert.equal(closed, 0, 'close() waits for the handler that is running')
    held.open()
    await Promise.all(closing)
    await subscription.close()
    assert.deepEqual(ids(first.deliveries), [m1.id], 'nothing was taken after close()')
    const next = new Recorder()
    await s.h.subscriber.subscribe(topic, next.handler, { group, concurrency: 2, retry })
    await s.eventually('the rest to reach the next subscription', () =>
      next.hasHandled([m2.id, m3.id]),
    )
    await sleep(100)
    assert.equal(
      next.of(m1.id).length,
      0,
      'the message handled while closing was acknowledged, not redelivered',
    )

    // close() from inside a handler (not awaited there: it waits for the running handlers, this one included).
    const inner = s.topic('inside')
    const innerGroup = s.group()
    const messages = Array.from({ length: 5 }, () => s.message())
    const holder: { own?: Subscription } = {}
    let closedInside: Promise<void>[] = []
    const closer = new Recorder(() => {
      if (closedInside.length === 0) closedInside = [holder.own!.close(), holder.own!.close()]
    })
    const own = (holder.own = await s.h.subscriber.subscribe(inner, closer.handler, {
      group: innerGroup,
      concurrency: 1,
      retry,
    }))
    await s.h.publisher.publish(inner, messages)
    await s.eventually('a handler to close its own subscription', () => closedInside.length > 0)
    await Promise.all(closedInside)
    await own.close()
    const handledInside = [...closer.handled.keys()]
    assert.equal(closer.deliveries.length, 1, 'nothing was taken after close() from inside')
    const after = new Recorder()
    await s.h.subscriber.subscribe(inner, after.handler, { group: innerGroup, retry })
    const rest = ids(messages).filter((id) => !handledInside.includes(id))
    await s.eventually('the rest to reach the next subscription', () => after.hasHandled(rest))
    await sleep(100)
    assert.deepEqual(
      ids(after.deliveries).filter((id) => handledInside.includes(id)),
      [],
      'the message whose handler closed the subscription was acknowledged',
    )

    // The subscriber itself, closed several times at once with one of its subscriptions while a
    // handler runs: every call waits for that handler; then once more.
    const lingeringTopic = s.topic('lingering')
    const busy = gate()
    s.defer(() => busy.open())
    const lingeringRecorder = new Recorder(() => busy.promise)
    const lingering = await s.h.subscriber.subscribe(lingeringTopic, lingeringRecorder.handler, {
      group: s.group(),
      retry,
    })
    await s.h.publisher.publish(lingeringTopic, [s.message()])
    await s.eventually('a handler to run', () => lingeringRecorder.deliveries.length === 1)
    let done = 0
    const all = [
      s.h.subscriber.close(),
      lingering.close(),
      s.h.subscriber.close(),
      s.h.subscriber.close(),
    ].map((p) => p.then(() => void done++))
    await sleep(100)
    assert.equal(done, 0, 'subscriber.close() waits for the running handler')
    busy.open()
    await Promise.all(all)
    await s.h.subscriber.close()
    await lingering.close()
  },
}
