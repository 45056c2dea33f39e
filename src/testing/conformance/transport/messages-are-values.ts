import assert from 'node:assert/strict'
import type { TransportMessage } from '../../../index.js'
import { assertIntact, ids, Recorder, type Scenario } from './support.js'

/** A copy of `message` that shares nothing with it. */
const copy = (message: TransportMessage): TransportMessage => ({
  ...message,
  headers: { ...message.headers },
  body: message.body.slice(),
})

/** Overwrites a message's bytes and headers in place (as a pooled buffer's next use would). */
function scribble(message: TransportMessage): void {
  message.body.fill(0x58)
  try {
    ;(message.headers as Record<string, string>)['x-seq'] = 'scribbled'
  } catch {
    // frozen headers: nothing to scribble
  }
}

/**
 * Once `publish` resolved the broker holds the message: the caller reusing its buffers changes
 * nothing, and a handler changing its delivery changes neither another group's copy nor a
 * redelivery.
 */
export const messagesAreValues: Scenario = {
  name: 'messages are values: changing the published buffers after publish, or a delivery, changes no other copy',
  async run(s) {
    const topic = s.topic()
    const messages = Array.from({ length: 6 }, (_, i) =>
      s.message({ key: s.key(String(i % 2)), headers: { 'x-seq': String(i), 'x-tenant': 'acme' } }),
    )
    const pristine = new Map(messages.map((m) => [m.id, copy(m)]))
    const problems: string[] = []
    const check = (d: TransportMessage, where: string): void => {
      try {
        assertIntact(d, pristine.get(d.id)!)
      } catch (error) {
        problems.push(`${where}: ${(error as Error).message.split('\n')[0]}`)
      }
    }
    const redelivers = s.features.redeliversOnNack
    const vandal = new Recorder((d) => {
      if (d.attempt > 1) check(d, `redelivery ${d.attempt} of ${d.id}`)
      scribble(d)
      if (redelivers && d.attempt === 1) throw new Error('fails after changing its delivery')
    })
    const retry = { maxAttempts: 5, delayMs: () => 10 }
    await s.h.subscriber.subscribe(topic, vandal.handler, { group: s.group('vandal'), retry })
    const witness = new Recorder((d) => check(d, `the other group's copy of ${d.id}`))
    if (s.features.consumerGroups)
      await s.h.subscriber.subscribe(topic, witness.handler, { group: s.group('witness'), retry })
    await s.h.publisher.publish(topic, messages)
    for (const m of messages) scribble(m)
    await s.eventually('every message to be handled', () => vandal.hasHandled(ids(messages)))
    if (s.features.consumerGroups)
      await s.eventually('every message in the other group', () =>
        witness.hasHandled(ids(messages)),
      )
    assert.deepEqual(problems, [])
  },
}
