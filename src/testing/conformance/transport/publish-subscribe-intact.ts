import assert from 'node:assert/strict'
import type { TransportMessage } from '../../../index.js'
import { assertIntact, ids, Recorder, type Scenario } from './support.js'

/** 100 messages, each with its id, key, body and headers as published (Watermill's TestPublishSubscribe). */
export const publishSubscribeIntact: Scenario = {
  name: 'publish/subscribe: 100 messages arrive with id, key, payload and headers intact (unicode, binary, 1 MB)',
  async run(s) {
    const topic = s.topic('orders')
    const recorder = new Recorder()
    await s.h.subscriber.subscribe(topic, recorder.handler, { group: s.group(), concurrency: 4 })
    const encoder = new TextEncoder()
    const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i) // not valid UTF-8
    const messages: TransportMessage[] = Array.from({ length: 100 }, (_, i) => {
      let body = encoder.encode(
        JSON.stringify({ n: i, text: 'Grüße, 世界 👋 — "quoted" \\ \u0000' }),
      )
      if (i % 10 === 3) body = allBytes
      if (i === 50) body = Uint8Array.from({ length: 1_000_000 }, (_, j) => (j * 31 + 7) % 256)
      if (i === 51) body = new Uint8Array(0)
      return s.message({
        key: i % 4 === 0 ? undefined : s.key(`clé-🔑-${i % 7}`),
        headers: {
          'x-seq': String(i),
          'x-unicode': 'café ☕ 日本語 🚀',
          'content-type': 'application/cloudevents+json',
          ...(i % 5 === 0 ? { 'x-empty': '' } : {}),
        },
        body,
      })
    })
    for (let i = 0; i < messages.length; i += 10)
      await s.h.publisher.publish(topic, messages.slice(i, i + 10))
    await s.eventually('all 100 messages to arrive', () => recorder.hasHandled(ids(messages)))
    for (const expected of messages) {
      const first = recorder.of(expected.id)[0]!
      assertIntact(first, expected)
      assert.equal(first.topic, topic)
      assert.equal(first.attempt, 1, `the first delivery of ${expected.id} is attempt 1`)
    }
  },
}
