import assert from 'node:assert/strict'
import type { TransportMessage } from '../../../index.js'
import { ids, random, Recorder, sleep, type Scenario } from './support.js'

/**
 * 20 keys × 25 messages through one subscription at concurrency 8, handlers taking random time
 * (and, when the transport redelivers, some first attempts failing): each key's messages are
 * delivered in publish order and never two at once.
 */
export const perKeyOrderUnderConcurrency: Scenario = {
  name: 'per-key order under concurrency: 20 keys × 25 messages at concurrency 8 arrive in publish order per key, one at a time',
  needs: ['orderedPerKey'],
  async run(s) {
    const topic = s.topic()
    const keys = Array.from({ length: 20 }, (_, k) => s.key(`k${k}`))
    const messages: TransportMessage[] = []
    const position = new Map<string, number>()
    for (let round = 0; round < 25; round++)
      for (const key of keys) {
        const m = s.message({ key })
        position.set(m.id, round)
        messages.push(m)
      }
    const failing = new Set(
      s.features.redeliversOnNack ? ids(messages).filter((_, i) => i % 11 === 5) : [],
    )
    const inFlight = new Map<string, number>()
    const overlaps: string[] = []
    const recorder = new Recorder(async (d) => {
      const key = d.key!
      const running = (inFlight.get(key) ?? 0) + 1
      inFlight.set(key, running)
      if (running > 1) overlaps.push(`${d.id} of ${key} ran beside another message of its key`)
      try {
        await sleep(random(5))
        if (d.attempt === 1 && failing.has(d.id)) throw new Error(`${d.id} fails once`)
      } finally {
        inFlight.set(key, inFlight.get(key)! - 1)
      }
    })
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group: s.group(),
      concurrency: 8,
      retry: { maxAttempts: 5, delayMs: () => 10 },
    })
    for (let i = 0; i < messages.length; i += 50)
      await s.h.publisher.publish(topic, messages.slice(i, i + 50))
    await s.eventually('all 500 messages', () => recorder.hasHandled(ids(messages)))
    assert.deepEqual(overlaps, [])
    assert.ok(
      recorder.maxRunning <= 8,
      `${recorder.maxRunning} handlers ran at once, over concurrency 8`,
    )
    for (const key of keys) {
      const rounds = recorder.deliveries
        .filter((d) => d.key === key)
        .map((d) => position.get(d.id)!)
      const firsts = rounds.filter((round, i) => rounds.indexOf(round) === i)
      assert.deepEqual(
        firsts,
        Array.from({ length: 25 }, (_, i) => i),
        `first deliveries of ${key} in publish order`,
      )
      assert.ok(
        rounds.every((round, i) => i === 0 || round >= rounds[i - 1]!),
        `no message of ${key} came back after a later one of its key: ${rounds.join(',')}`,
      )
    }
  },
}
