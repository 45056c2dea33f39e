import assert from 'node:assert/strict'
import { ids, Recorder, sleep, type Scenario } from './support.js'

/** Fan-out: every group gets its own copy of every message. */
export const everyGroupReceivesEverything: Scenario = {
  name: 'every group receives every message (fan-out), each once absent failures',
  needs: ['consumerGroups'],
  async run(s) {
    const topic = s.topic()
    const groups = ['billing', 'shipping', 'audit'].map((name) => s.group(name))
    const recorders = new Map(groups.map((g) => [g, [new Recorder()]]))
    recorders.get(groups[2]!)!.push(new Recorder()) // a group with two subscriptions counts once
    for (const [group, list] of recorders)
      for (const recorder of list)
        await s.h.subscriber.subscribe(topic, recorder.handler, { group, concurrency: 3 })
    const messages = Array.from({ length: 30 }, (_, i) =>
      s.message({ key: i % 3 === 0 ? undefined : s.key(String(i % 5)) }),
    )
    await s.h.publisher.publish(topic, messages)
    const received = (group: string): string[] =>
      recorders.get(group)!.flatMap((r) => r.deliveries.map((d) => d.id))
    for (const group of groups)
      await s.eventually(`every message to reach group ${group}`, () => {
        const seen = new Set(received(group))
        return ids(messages).every((id) => seen.has(id))
      })
    await sleep(100)
    for (const group of groups)
      assert.deepEqual([...received(group)].sort(), ids(messages).sort(), `group ${group}`)
  },
}
