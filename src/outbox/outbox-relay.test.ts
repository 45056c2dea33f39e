import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type ClaimedRecord,
  ErrorCode,
  InMemoryTransport,
  isSwitchyardError,
  type MarkAndClaim,
  type OutboxMaintenance,
  OutboxRelay,
  type OutboxStore,
} from '../index.js'
import { RecordingLogger } from '../testing/index.js'

const idleStore: OutboxStore = {
  ensureSchema: () => Promise.resolve(),
  append: () => Promise.resolve(),
  claim: () => Promise.resolve([]),
  markPublished: () => Promise.resolve(0),
  markFailed: () => Promise.resolve('retry'),
}
/** A claimed row of topic `t` whose key is its id, unless `fields` say otherwise. */
const claimedRow = (id: string, fields: Partial<ClaimedRecord> = {}): ClaimedRecord => ({
  id,
  topic: 't',
  key: id,
  keySeq: 1,
  type: 'T',
  body: new Uint8Array([1]),
  headers: {},
  attempts: 1,
  token: `token-${id}`,
  ...fields,
})
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

describe('OutboxRelay.stop() during a claim', () => {
  it('ends at once when stop() comes while a claim that finds nothing is running', async () => {
    let claiming: () => void = () => undefined
    let release: () => void = () => undefined
    const store: OutboxStore = {
      ...idleStore,
      claim: () =>
        new Promise((resolve) => {
          claiming()
          release = () => resolve([])
        }),
    }
    const relay = new OutboxRelay({
      store,
      publisher: new InMemoryTransport(),
      pollIntervalMs: 60_000,
    })
    const inClaim = new Promise<void>((resolve) => (claiming = resolve))
    relay.start()
    await inClaim
    const stopping = relay.stop()
    release()
    const started = Date.now()
    await stopping
    expect(Date.now() - started).toBeLessThan(1000) // not the 60 s poll interval
  })
})

describe('OutboxRelay storeTimeoutMs', () => {
  const row = (id: string): ClaimedRecord => claimedRow(id, { key: 'k' })
  const never = <T>(): Promise<T> => new Promise<T>(() => undefined)
  const options = {
    publisher: new InMemoryTransport(),
    storeTimeoutMs: 1000,
    pollIntervalMs: 100,
    backoff: { initialDelay: 10, maxDelay: 100 },
  }
  beforeEach(() => void vi.useFakeTimers())
  afterEach(() => void vi.useRealTimers())

  it('abandons a claim that never settles with a retryable store error, backs off and claims again', async () => {
    const claims = [never<ClaimedRecord[]>(), Promise.resolve([row('m1')])]
    const published: string[] = []
    const store: OutboxStore = {
      ...idleStore,
      claim: () => claims.shift() ?? Promise.resolve([]),
      markPublished: (refs) => {
        published.push(...refs.map((r) => r.id))
        return Promise.resolve(refs.length)
      },
    }
    const logger = new RecordingLogger('warn')
    const relay = new OutboxRelay({ ...options, store, logger })
    relay.start()
    await vi.advanceTimersByTimeAsync(999)
    expect(logger.entries).toEqual([])
    await vi.advanceTimersByTimeAsync(2) // the rejection waits one more event-loop turn
    expect(logger.entries).toHaveLength(1)
    expect(logger.entries[0]!.message).toBe('outbox relay batch failed; backing off')
    const error = logger.entries[0]!.fields.err
    expect(isSwitchyardError(error, ErrorCode.OutboxStore)).toBe(true)
    expect(error).toMatchObject({
      retryable: true,
      details: { operation: 'claim', timeoutMs: 1000 },
    })
    await vi.advanceTimersByTimeAsync(1000) // first backoff: 200 ms
    expect(published).toEqual(['m1'])
    await relay.stop()
  })

  it('abandons a hung mark and goes on (the unmarked rows come back when their lease expires)', async () => {
    let claims = 0
    const store: OutboxStore = {
      ...idleStore,
      claim: () => Promise.resolve(claims++ === 0 ? [row('m1')] : []),
      markPublished: () => never(),
    }
    const logger = new RecordingLogger('warn')
    const relay = new OutboxRelay({ ...options, store, logger })
    relay.start()
    await vi.advanceTimersByTimeAsync(1001)
    expect(logger.entries[0]!.fields.err).toMatchObject({
      details: { operation: 'markPublished' },
    })
    await vi.advanceTimersByTimeAsync(1000)
    expect(claims).toBeGreaterThan(1) // still looping
    await relay.stop()
  })

  it('releases the rows of an abandoned claim that completes late', async () => {
    let finish: (rows: ClaimedRecord[]) => void = () => undefined
    const released: string[] = []
    const store: OutboxStore & Pick<OutboxMaintenance, 'release'> = {
      ...idleStore,
      claim: () => new Promise((resolve) => (finish = resolve)),
      release: (refs) => {
        released.push(...refs.map((r) => `${r.id}/${r.token}`))
        return Promise.resolve(refs.length)
      },
    }
    const relay = new OutboxRelay({ ...options, store })
    const abandoned = expect(relay.runOnce()).rejects.toMatchObject({
      details: { operation: 'claim' },
    })
    await vi.advanceTimersByTimeAsync(1001)
    await abandoned
    expect(released).toEqual([])
    finish([row('m1')])
    await vi.advanceTimersByTimeAsync(0)
    expect(released).toEqual(['m1/token-m1'])
  })

  it('defaults to 10 s, or to leaseMs when that is shorter', async () => {
    const abandonedAfter = async (leaseMs?: number): Promise<number> => {
      const relay = new OutboxRelay({
        store: { ...idleStore, claim: () => never() },
        publisher: options.publisher,
        publishTimeoutMs: 500,
        ...(leaseMs === undefined ? {} : { leaseMs }),
      })
      const started = Date.now()
      let at = 0
      void relay.runOnce().catch(() => (at = Date.now() - started))
      while (at === 0) await vi.advanceTimersByTimeAsync(50)
      return at
    }
    const byDefault = await abandonedAfter()
    expect(byDefault).toBeGreaterThanOrEqual(10_000)
    expect(byDefault).toBeLessThan(10_100)
    const shortLease = await abandonedAfter(2000)
    expect(shortLease).toBeGreaterThanOrEqual(2000)
    expect(shortLease).toBeLessThan(2100)
  })

  it('0 means no limit; a negative or fractional value is a configuration error', async () => {
    const hung = new OutboxRelay({
      ...options,
      store: { ...idleStore, claim: () => never() },
      storeTimeoutMs: 0,
    })
    let settled = false
    void hung.runOnce().finally(() => (settled = true))
    await vi.advanceTimersByTimeAsync(3_600_000)
    expect(settled).toBe(false)
    for (const storeTimeoutMs of [-1, 1.5])
      expect(() => new OutboxRelay({ ...options, store: idleStore, storeTimeoutMs })).toThrow(
        /storeTimeoutMs must be a whole number ≥ 0/,
      )
  })
})

describe('OutboxRelay batches', () => {
  it('claims again at once after publishing, so one hot key drains without waiting for the poll interval', async () => {
    // Head-of-line claims give one row per key: five rows of one key take five claims.
    const waiting = ['m1', 'm2', 'm3', 'm4', 'm5']
    const transport = new InMemoryTransport()
    const store: OutboxStore = {
      ...idleStore,
      claim: () => Promise.resolve(waiting.length > 0 ? [claimedRow(waiting[0]!)] : []),
      markPublished: (refs) => {
        waiting.shift()
        return Promise.resolve(refs.length)
      },
    }
    const relay = new OutboxRelay({ store, publisher: transport, pollIntervalMs: 60_000 })
    relay.start()
    await vi.waitFor(() => expect(transport.published('t')).toHaveLength(5), { timeout: 2000 })
    await relay.stop()
  })

  it('releases the topics of a batch that would outlast the lease instead of publishing them late', async () => {
    const released: string[] = []
    const marked: string[] = []
    let claimed = false
    const store: OutboxStore & Pick<OutboxMaintenance, 'release'> = {
      ...idleStore,
      claim: () => {
        if (claimed) return Promise.resolve([])
        claimed = true
        return Promise.resolve([
          claimedRow('a1', { topic: 'slow' }),
          claimedRow('b1', { topic: 'later' }),
        ])
      },
      markPublished: (refs) => {
        marked.push(...refs.map((r) => r.id))
        return Promise.resolve(refs.length)
      },
      release: (refs) => {
        released.push(...refs.map((r) => r.id))
        return Promise.resolve(refs.length)
      },
    }
    const publisher = {
      // The first topic takes 500 of the 1,000 ms lease; another 600 ms publish could outlast it.
      publish: (topic: string) =>
        new Promise<void>((resolve) => setTimeout(resolve, topic === 'slow' ? 500 : 0)),
      close: () => Promise.resolve(),
    }
    const relay = new OutboxRelay({ store, publisher, leaseMs: 1000, publishTimeoutMs: 600 })
    await relay.runOnce()
    expect(marked).toEqual(['a1'])
    expect(released).toEqual(['b1'])
  })
})

describe('OutboxRelay concurrency', () => {
  it('keeps up to `concurrency` batches in flight, and stop() releases every batch still in hand', async () => {
    let next = 0
    const released: string[] = []
    const store: OutboxStore & Pick<OutboxMaintenance, 'release'> = {
      ...idleStore,
      claim: () => Promise.resolve([claimedRow(`m${next++}`)]),
      markPublished: (refs) => Promise.resolve(refs.length),
      release: (refs) => {
        released.push(...refs.map((r) => r.id))
        return Promise.resolve(refs.length)
      },
    }
    let inFlight = 0
    let most = 0
    const publisher = {
      // Confirms never come: every worker ends up holding one batch.
      publish: () => {
        most = Math.max(most, ++inFlight)
        return new Promise<void>(() => undefined)
      },
      close: () => Promise.resolve(),
    }
    const relay = new OutboxRelay({
      store,
      publisher,
      concurrency: 3,
      stopTimeoutMs: 50,
      publishTimeoutMs: 60_000,
      leaseMs: 120_000,
    })
    relay.start()
    await vi.waitFor(() => expect(inFlight).toBe(3), { timeout: 2000 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(most).toBe(3) // a fourth batch is never claimed while three are in flight
    expect(next).toBe(3)
    await relay.stop()
    expect(released.sort()).toEqual(['m0', 'm1', 'm2'])
  })

  it('refuses a concurrency that is not a whole number ≥ 1', () => {
    for (const concurrency of [0, -1, 1.5, Number.NaN]) {
      expect(
        () =>
          new OutboxRelay({ store: idleStore, publisher: new InMemoryTransport(), concurrency }),
      ).toThrow(/concurrency must be a whole number ≥ 1/)
    }
  })
})

describe('OutboxRelay with markAndClaim', () => {
  it('marks each batch in the next claim (one call per batch), and the last one when it stops', async () => {
    const batches = [[claimedRow('a')], [claimedRow('b')], [claimedRow('c')]]
    const calls: string[] = []
    const store: OutboxStore & MarkAndClaim = {
      ...idleStore,
      claim: () => {
        calls.push('claim')
        return Promise.resolve(batches.shift() ?? [])
      },
      markAndClaim: (published) => {
        calls.push(`markAndClaim ${published.map((r) => r.id).join(',')}`)
        return Promise.resolve({ accepted: published.length, claimed: batches.shift() ?? [] })
      },
      markPublished: (refs) => {
        calls.push(`markPublished ${refs.map((r) => r.id).join(',')}`)
        return Promise.resolve(refs.length)
      },
    }
    let published = 0
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({
      store,
      publisher: transport,
      pollIntervalMs: 60_000,
      onMetrics: (m) => (published += m.published),
    })
    relay.start()
    await vi.waitFor(() => expect(published).toBe(3), { timeout: 2000 })
    await relay.stop()
    expect(calls).toEqual(['claim', 'markAndClaim a', 'markAndClaim b', 'markAndClaim c', 'claim'])
    expect(transport.published('t').map((m) => m.id)).toEqual(['a', 'b', 'c'])

    // Stopped while a batch waits for its mark: stop() marks it on its own.
    calls.length = 0
    published = 0
    batches.push([claimedRow('d')])
    let release: () => void = () => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const slowTransport = {
      publish: async () => {
        await held
      },
      close: () => Promise.resolve(),
    }
    const second = new OutboxRelay({ store, publisher: slowTransport, pollIntervalMs: 60_000 })
    second.start()
    await vi.waitFor(() => expect(calls).toEqual(['claim']), { timeout: 2000 })
    const stopped = second.stop()
    release()
    await stopped
    expect(calls).toEqual(['claim', 'markPublished d'])
  })

  it('runOnce() marks its own batch before it resolves', async () => {
    const batches = [[claimedRow('a')]]
    const marked: string[] = []
    const store: OutboxStore & MarkAndClaim = {
      ...idleStore,
      claim: () => Promise.resolve(batches.shift() ?? []),
      markAndClaim: () => Promise.reject(new Error('runOnce never defers')),
      markPublished: (refs) => {
        marked.push(...refs.map((r) => r.id))
        return Promise.resolve(refs.length)
      },
    }
    const relay = new OutboxRelay({ store, publisher: new InMemoryTransport() })
    expect(await relay.runOnce()).toBe(1)
    expect(marked).toEqual(['a'])
  })
})

describe('OutboxRelay wake-up hints', () => {
  it('claims again when a hint arrives while it is claiming, instead of sleeping a poll interval', async () => {
    let wake: () => void = () => undefined
    const rows: ClaimedRecord[] = [
      claimedRow('late', { key: undefined, keySeq: undefined, token: 'token' }),
    ]
    let claims = 0
    const store: OutboxStore & { listen(w: () => void): Promise<() => Promise<void>> } = {
      ...idleStore,
      listen: (w) => {
        wake = w
        return Promise.resolve(() => Promise.resolve())
      },
      // The first claim runs on a snapshot that misses a row committed meanwhile, whose hint
      // arrives before the claim returns: exactly when the relay is not idle.
      claim: () => {
        if (claims++ === 0) {
          wake()
          return Promise.resolve([])
        }
        return Promise.resolve(rows.splice(0))
      },
      markPublished: (refs) => Promise.resolve(refs.length),
    }
    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport, pollIntervalMs: 60_000 })
    relay.start()
    await vi.waitFor(() => expect(transport.published('t')).toHaveLength(1), { timeout: 2000 })
    await relay.stop()
  })
})
