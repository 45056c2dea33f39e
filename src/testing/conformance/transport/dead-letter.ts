import assert from 'node:assert/strict'
import { DEAD_LETTER_HEADERS, type DeadLetter, type TransportMessage } from '../../../index.js'
import { assertIntact, Recorder, sleep, type Scenario } from './support.js'

const extraHeaders = Object.values(DEAD_LETTER_HEADERS)

function assertDeadLetter(
  letter: DeadLetter | undefined,
  expected: {
    message: TransportMessage
    topic: string
    group: string
    reason: string
    attempts: number
    since: number
  },
): void {
  assert.ok(letter, `${expected.message.id} is in the dead-letter place`)
  assertIntact(letter.message, expected.message, extraHeaders)
  assert.equal(letter.topic, expected.topic)
  assert.equal(letter.group, expected.group)
  assert.equal(letter.reason, expected.reason)
  assert.equal(letter.attempts, expected.attempts)
  const first = Date.parse(letter.firstFailureAt)
  const last = Date.parse(letter.lastFailureAt)
  assert.ok(!Number.isNaN(first), `firstFailureAt is an ISO time: ${letter.firstFailureAt}`)
  assert.ok(!Number.isNaN(last), `lastFailureAt is an ISO time: ${letter.lastFailureAt}`)
  assert.ok(first <= last, 'the first failure is not after the last')
  // Generous bounds (a broker's clock may differ a little): the failures happened during the test.
  assert.ok(first >= expected.since - 60_000 && last <= Date.now() + 60_000)
}

const poisonBody = Uint8Array.from([0xff, 0xfe, 0x00, 0x7b, 0x22, 0xe2, 0x82, 0xac]) // not UTF-8

/** After `retry.maxAttempts` failed deliveries the message is dead-lettered with the error's message. */
export const deadLetterAfterMaxAttempts: Scenario = {
  name: 'dead letter after max attempts: the original message with the reason, the attempts and the failure times',
  needs: ['deadLetter', 'redeliversOnNack'],
  async run(s) {
    const since = Date.now()
    const topic = s.topic()
    const group = s.group()
    const key = s.key('poisoned')
    const poison = s.message({
      key,
      body: poisonBody,
      headers: {
        'x-tenant': 'ünï',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
    })
    const after = s.message({ key })
    const reason = `cannot handle ${poison.id}: stock "☃" is negative`
    const recorder = new Recorder((d) => {
      if (d.id === poison.id) throw new Error(reason)
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group,
      concurrency: 2,
      retry: { maxAttempts: 3, delayMs: () => 10 },
    })
    await s.h.publisher.publish(topic, [poison, after])
    let letters: readonly DeadLetter[] = []
    await s.eventually('the dead letter', async () => {
      letters = await s.deadLetters(topic, group)
      return letters.length > 0
    })
    await s.eventually('the next message of the key', () => recorder.hasHandled([after.id]))
    await sleep(100) // a dead-lettered message must not come back
    assert.equal(letters.length, 1)
    assertDeadLetter(letters[0], { message: poison, topic, group, reason, attempts: 3, since })
    assert.deepEqual(
      recorder.of(poison.id).map((d) => d.attempt),
      [1, 2, 3],
      'delivered maxAttempts times, then no more',
    )
    assert.equal((await s.deadLetters(topic, group)).length, 1)
  },
}

/** A handler's `{ deadLetter: reason }` sends the message to the dead-letter place at once. */
export const deadLetterOutcome: Scenario = {
  name: 'an explicit { deadLetter: reason } outcome dead-letters at once with attempts 1, the message intact',
  needs: ['deadLetter'],
  async run(s) {
    const since = Date.now()
    const topic = s.topic()
    const group = s.group()
    const refused = s.message({ key: s.key('k'), headers: { 'x-schema': 'v0', 'x-note': '🚫' } })
    const accepted = s.message({ key: refused.key })
    const reason = 'invalid payload: schema v0 is no longer read'
    const recorder = new Recorder((d) => (d.id === refused.id ? { deadLetter: reason } : undefined))
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group,
      retry: { maxAttempts: 5, delayMs: () => 10 },
    })
    await s.h.publisher.publish(topic, [refused, accepted])
    let letters: readonly DeadLetter[] = []
    await s.eventually('the dead letter', async () => {
      letters = await s.deadLetters(topic, group)
      return letters.length > 0
    })
    await s.eventually('the next message', () => recorder.hasHandled([accepted.id]))
    await sleep(100)
    assert.equal(letters.length, 1)
    assertDeadLetter(letters[0], { message: refused, topic, group, reason, attempts: 1, since })
    assert.equal(recorder.of(refused.id).length, 1, 'dead-lettered at once, never redelivered')
  },
}
