import assert from 'node:assert/strict'
import { ids, Recorder, type Scenario } from './support.js'

/** `publisher.close()` flushes: every publish started before it resolves, and its messages arrive. */
export const publisherCloseFlushes: Scenario = {
  name: 'publisher close flushes: publishes started before close() resolve, and everything published arrives',
  async run(s) {
    const topic = s.topic()
    const recorder = new Recorder()
    await s.h.subscriber.subscribe(topic, recorder.handler, { group: s.group(), concurrency: 8 })
    const batches = Array.from({ length: 20 }, () => Array.from({ length: 10 }, () => s.message()))
    const outcomes = batches.map((batch) =>
      s.h.publisher.publish(topic, batch).then(
        () => 'published',
        (error: unknown) => `rejected: ${error instanceof Error ? error.message : String(error)}`,
      ),
    )
    await s.h.publisher.close()
    assert.deepEqual(
      await Promise.all(outcomes),
      batches.map(() => 'published'),
      'every publish started before close() resolved',
    )
    await s.h.publisher.close() // idempotent
    const all = ids(batches.flat())
    await s.eventually('every message published before close()', () => recorder.hasHandled(all))
  },
}
