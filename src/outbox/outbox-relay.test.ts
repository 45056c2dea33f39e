import { describe, expect, it } from 'vitest'
import { InMemoryTransport, OutboxRelay, type OutboxStore } from '../index.js'

const idleStore: OutboxStore = {
  ensureSchema: () => Promise.resolve(),
  append: () => Promise.resolve(),
  claim: () => Promise.resolve([]),
  markPublished: () => Promise.resolve(0),
  markFailed: () => Promise.resolve('retry'),
}
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length

describe('OutboxRelay.stop()', () => {
  it('leaves no timer behind once the loop ended, so the process can exit at once', async () => {
    const before = timers()
    const relay = new OutboxRelay({
      store: idleStore,
      publisher: new InMemoryTransport(),
      pollIntervalMs: 60_000,
      stopTimeoutMs: 60_000,
    })
    relay.start()
    await new Promise((resolve) => setTimeout(resolve, 20))
    await relay.stop()
    expect(timers()).toBe(before)
  })
})
