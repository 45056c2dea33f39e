import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { gate, ids, Recorder, sleep, type Scenario } from './support.js'

/** Aborting the `signal` closes the subscription: no delivery after it, and nothing is lost. */
export const subscriptionEndsOnAbort: Scenario = {
  name: 'the subscription ends when its signal aborts: no delivery after, the rest stays with the group',
  async run(s) {
    const retry = { maxAttempts: 5, delayMs: () => 10 }
    const topic = s.topic()
    const group = s.group()
    const early = Array.from({ length: 5 }, () => s.message())
    const [held, ...queued] = [s.message(), s.message(), s.message()]
    const late = Array.from({ length: 5 }, () => s.message())
    const release = gate()
    s.defer(() => release.open())
    const controller = new AbortController()
    let aborted = false
    const afterAbort: string[] = []
    const recorder = new Recorder(async (d) => {
      if (aborted) afterAbort.push(d.id)
      if (d.id === held.id) await release.promise
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group,
      concurrency: 1,
      retry,
      signal: controller.signal,
    })
    await s.h.publisher.publish(topic, early)
    await s.eventually('the first messages', () => recorder.hasHandled(ids(early)))
    await s.h.publisher.publish(topic, [held, ...queued])
    await s.eventually('the held message', () => recorder.of(held.id).length === 1)
    aborted = true
    controller.abort()
    release.open()
    await s.h.publisher.publish(topic, late)
    await sleep(150)
    assert.deepEqual(afterAbort, [], 'no delivery after the signal aborted')

    const next = new Recorder()
    await s.h.subscriber.subscribe(topic, next.handler, { group, concurrency: 2, retry })
    const rest = ids([...queued, ...late])
    await s.eventually('the rest to reach the next subscription of the group', () =>
      next.hasHandled(rest),
    )
    await sleep(100)
    assert.deepEqual(
      ids(next.deliveries).filter((id) => !rest.includes(id)),
      [],
      'what the aborted subscription finished was acknowledged',
    )

    // A signal already aborted: the subscription never takes anything.
    const neverTopic = s.topic('already-aborted')
    const never = new Recorder()
    await s.h.subscriber.subscribe(neverTopic, never.handler, {
      group: s.group('never'),
      signal: AbortSignal.abort(),
    })
    // Another group of the topic takes the messages: they were routable and delivered.
    const witness = new Recorder()
    await s.h.subscriber.subscribe(neverTopic, witness.handler, { group: s.group('witness') })
    const offered = [s.message(), s.message()]
    await s.h.publisher.publish(neverTopic, offered)
    await s.eventually('the witness group to take them', () => witness.hasHandled(ids(offered)))
    await sleep(150)
    assert.equal(never.deliveries.length, 0, 'a subscription with an aborted signal takes nothing')

    // A long-lived signal (a service's shutdown signal) shared by subscriptions closed one by one
    // keeps no listener of the closed ones.
    const shutdown = new AbortController()
    const churnTopic = s.topic('churn')
    for (let i = 0; i < 20; i++) {
      const subscription = await s.h.subscriber.subscribe(churnTopic, new Recorder().handler, {
        group: s.group('churn'),
        signal: shutdown.signal,
      })
      await subscription.close()
    }
    const listeners = getEventListeners(shutdown.signal, 'abort').length
    assert.ok(listeners <= 1, `20 closed subscriptions left ${listeners} abort listeners behind`)
  },
}
