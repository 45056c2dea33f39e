/**
 * T5 of RELIABILITY.md §2.3, a long transaction, on PostgreSQL and MariaDB.
 *
 * With a relay running (`OutboxRelay.start()`, recording publisher):
 * 1. Baseline: a quarter of the load, no long transaction, to compare lags.
 * 2. Key K gets one message in an ordinary transaction (published).
 * 3. A session appends K's next message and stays open for the hold (5 s × SWITCHYARD_CHAOS_SCALE,
 *    at most 60 s: scale 12 is the full size). Three more transactions each append a message of K
 *    and commit as soon as their append returns: their appends wait on K's counter row, locked by
 *    the long transaction (the test waits until the server reports each wait). K sorts in the
 *    middle of the other keys, so gap locks around it would show.
 * 4. Meanwhile 2,000 × scale (at most 10,000) messages over 100 other keys commit, spread over
 *    the hold. The long transaction stays open until the hold has passed AND every one of them is
 *    published (a generous liveness deadline), so "published during the hold" is deterministic.
 * 5. The long transaction commits; the waiting ones follow one by one, in an order the test
 *    observes: each can only take K's counter row after the previous one committed, and commits as
 *    soon as its append returns, so the order their appends return in is their commit order.
 *
 * Asserted: every other message published during the hold (count), K held during the hold (only
 * its first message published, the waiting transactions still waiting), then K published in commit
 * order; missing 0, duplicates 0, per-key order violations 0 over all keys. Reported: lag p50/p99
 * (commit → publish) of the other keys during the hold and in the baseline, and how long K took
 * to drain after the long transaction committed.
 */
import { performance } from 'node:perf_hooks'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { OutboxRelay } from '../../../src/index.js'
import {
  type FaultSession,
  type FaultStore,
  faultStoreTargets,
  percentile,
  record,
  recordingPublisher,
  waitFor,
} from '../../helpers/fault-stores.js'

const targets = faultStoreTargets(inject('services'))
afterAll(async () => {
  await Promise.all(targets.map((target) => target.end()))
})

const scale = Number(process.env.SWITCHYARD_CHAOS_SCALE ?? 1)
const HOLD_MS = Math.min(60_000, Math.round(5_000 * scale))
const OTHERS = Math.min(10_000, Math.round(2_000 * scale))
const BASELINE = Math.round(OTHERS / 4)
const OTHER_KEYS = 100
const PER_TX = 10
const WAITERS = 3
const TOPIC = 'faults-t5'
/** Sorts in the middle of key-000 … key-099. */
const HOT = 'key-050-hot'
/** Liveness only: how long a published backlog may take to drain on a busy 2-core machine. */
const LIVENESS_MS = 60_000

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const round = (ms: number): number => Math.round(ms * 10) / 10

/** The oracle: every committed message with its key, when its commit was issued, in commit order. */
class Ledger {
  readonly committed: { id: string; key: string; phase: string; committedAt: number }[] = []
  #ids = 0

  nextId(phase: string): string {
    return `${phase}-${this.#ids++}`
  }

  /**
   * Commits `session`, recording its rows when the COMMIT is issued (and that time). The order of
   * issue is the commit order for rows of one key: a transaction holds its keys' counter rows until
   * it commits, so the next writer of a key cannot issue its COMMIT before. The order in which the
   * acknowledgements arrive is not: the server releases the locks before it answers, so a waiting
   * transaction can commit and be answered before the one it waited for is.
   */
  async commit(
    session: FaultSession,
    rows: readonly { id: string; key: string }[],
    phase: string,
  ): Promise<void> {
    const committedAt = performance.now()
    for (const row of rows) this.committed.push({ ...row, phase, committedAt })
    await session.commit()
  }
}

/** Commits `count` messages over the other keys in transactions of PER_TX, spread over `spreadMs`. */
async function produce(
  h: FaultStore,
  ledger: Ledger,
  phase: string,
  count: number,
  spreadMs: number,
): Promise<void> {
  const transactions = Math.ceil(count / PER_TX)
  const start = performance.now()
  let n = 0
  for (let t = 0; t < transactions; t++) {
    const wait = start + (t * spreadMs) / transactions - performance.now()
    if (wait > 0) await sleep(wait)
    const rows: { id: string; key: string }[] = []
    for (let i = 0; i < PER_TX && n < count; i++, n++)
      rows.push({
        id: ledger.nextId(phase),
        key: `key-${String(n % OTHER_KEYS).padStart(3, '0')}`,
      })
    const session = await h.begin()
    await h.store.append(
      session.tx,
      rows.map((r) => record(r.id, r.key, TOPIC)),
    )
    await ledger.commit(session, rows, phase)
  }
}

/** Where a key's delivered order first departs from its commit order, with a little context. */
function firstDifference(v: { key: string; expected: string[]; delivered: string[] }): object {
  let i = 0
  while (i < v.expected.length && v.expected[i] === v.delivered[i]) i++
  return {
    key: v.key,
    at: i,
    expected: v.expected.slice(Math.max(0, i - 1), i + 3),
    delivered: v.delivered.slice(Math.max(0, i - 1), i + 3),
    lengths: [v.expected.length, v.delivered.length],
  }
}

for (const target of targets) {
  describe.skipIf(target.url === null)(`T5 long transaction on ${target.name}`, () => {
    it(
      `publishes other keys during a ${HOLD_MS / 1000} s transaction on key K, then K in commit order`,
      async () => {
        const started = Date.now()
        const h = await target.create()
        const { transport, deliveries } = recordingPublisher()
        const relay = new OutboxRelay({
          store: h.store,
          publisher: transport,
          batchSize: 100,
          pollIntervalMs: 25,
        })
        const ledger = new Ledger()
        const delivered = (phase: string): number =>
          new Set(deliveries.filter((d) => d.id.startsWith(`${phase}-`)).map((d) => d.id)).size
        const backlog = async (): Promise<number> => {
          const status = await h.store.status()
          return status.pending + status.inflight
        }
        const sessions: FaultSession[] = []
        const waiterOrder: string[] = []
        let holdMs = 0
        let releasedAt = 0
        let othersPublishedDuringHold = 0
        let hotDeliveredDuringHold: string[] = []
        let waitersStillWaitingAtRelease = 0
        let failure: Error | undefined
        relay.start()
        try {
          // 1. Baseline.
          await produce(h, ledger, 'base', BASELINE, HOLD_MS / 4)
          await waitFor(
            'baseline published',
            async () => delivered('base') === BASELINE && (await backlog()) === 0,
            LIVENESS_MS,
          )
          // 2. K's first message.
          const first = await h.begin()
          const firstRow = { id: ledger.nextId('hot'), key: HOT }
          await h.store.append(first.tx, [record(firstRow.id, HOT, TOPIC)])
          await ledger.commit(first, [firstRow], 'hot')
          await waitFor('K#1 published', () => delivered('hot') === 1, LIVENESS_MS)
          // 3. The long transaction, and the ones that wait behind it on K.
          const long = await h.begin()
          sessions.push(long)
          const longRow = { id: ledger.nextId('hot'), key: HOT }
          await h.store.append(long.tx, [record(longRow.id, HOT, TOPIC)])
          const holdStart = performance.now()
          const waiters: Promise<void>[] = []
          for (let w = 0; w < WAITERS; w++) {
            const session = await h.begin({ lockWaitS: (HOLD_MS + 2 * LIVENESS_MS) / 1000 })
            sessions.push(session)
            const row = { id: ledger.nextId('hot'), key: HOT }
            const waiter = h.store
              .append(session.tx, [record(row.id, HOT, TOPIC)])
              .then(async () => {
                waiterOrder.push(row.id) // before COMMIT is sent: the next one cannot append before it
                await ledger.commit(session, [row], 'hot')
              })
            waiter.catch(() => undefined) // awaited after the hold
            waiters.push(waiter)
            await session.waitUntilBlocked()
          }
          // 4. The other keys, during the hold.
          await produce(h, ledger, 'hold', OTHERS, HOLD_MS * 0.8)
          await waitFor(
            'every other key published while the long transaction is open',
            async () => delivered('hold') === OTHERS && (await backlog()) === 0,
            LIVENESS_MS,
          )
          const left = holdStart + HOLD_MS - performance.now()
          if (left > 0) await sleep(left)
          releasedAt = performance.now()
          holdMs = releasedAt - holdStart
          othersPublishedDuringHold = delivered('hold')
          hotDeliveredDuringHold = deliveries.filter((d) => d.key === HOT).map((d) => d.id)
          waitersStillWaitingAtRelease = WAITERS - waiterOrder.length
          // 5. Release.
          await ledger.commit(long, [longRow], 'hot')
          await Promise.all(waiters)
          await waitFor(
            "K's held messages published",
            async () => delivered('hot') === 2 + WAITERS && (await backlog()) === 0,
            LIVENESS_MS,
          )
        } catch (error) {
          failure = error instanceof Error ? error : new Error(String(error))
          const waits = await h.lockWaits().catch(() => [])
          if (waits.length > 0)
            failure.message += `; statements waiting on a lock: ${JSON.stringify(waits)}`
        } finally {
          await relay.stop()
          await h.dispose()
        }

        // The oracle.
        const firstAt = new Map<string, number>()
        const actual = new Map<string, string[]>()
        for (const d of deliveries) {
          if (firstAt.has(d.id)) continue
          firstAt.set(d.id, d.at)
          actual.set(d.key!, [...(actual.get(d.key!) ?? []), d.id])
        }
        const committedIds = new Set(ledger.committed.map((c) => c.id))
        const expected = new Map<string, string[]>()
        for (const c of ledger.committed)
          expected.set(c.key, [...(expected.get(c.key) ?? []), c.id])
        const violated: { key: string; expected: string[]; delivered: string[] }[] = []
        for (const key of new Set([...expected.keys(), ...actual.keys()]))
          if (JSON.stringify(expected.get(key) ?? []) !== JSON.stringify(actual.get(key) ?? []))
            violated.push({
              key,
              expected: expected.get(key) ?? [],
              delivered: actual.get(key) ?? [],
            })
        const violations = violated.length
        const lags = (phase: string): number[] =>
          ledger.committed
            .filter((c) => c.phase === phase && firstAt.has(c.id))
            .map((c) => firstAt.get(c.id)! - c.committedAt)
        const holdLags = lags('hold')
        const baseLags = lags('base')
        const hotDeliveries = deliveries.filter((d) => d.key === HOT)
        const figures = {
          test: 'T5-long-transaction',
          store: target.name,
          scale,
          hold_ms: Math.round(holdMs),
          others: OTHERS,
          other_keys: OTHER_KEYS,
          others_published_during_hold: othersPublishedDuringHold,
          lag_p50_ms: round(percentile(holdLags, 50)),
          lag_p99_ms: round(percentile(holdLags, 99)),
          lag_max_ms: round(percentile(holdLags, 100)),
          baseline_messages: BASELINE,
          baseline_lag_p50_ms: round(percentile(baseLags, 50)),
          baseline_lag_p99_ms: round(percentile(baseLags, 99)),
          k_messages: 2 + WAITERS,
          k_published_during_hold: hotDeliveredDuringHold.length,
          k_published_after_release:
            releasedAt === 0 ? 0 : hotDeliveries.filter((d) => d.at >= releasedAt).length,
          k_waiters_blocked_at_release: waitersStillWaitingAtRelease,
          k_drain_after_commit_ms:
            releasedAt === 0 || hotDeliveries.length === 0
              ? null
              : Math.round(hotDeliveries[hotDeliveries.length - 1]!.at - releasedAt),
          committed: ledger.committed.length,
          delivered: deliveries.length,
          missing: [...committedIds].filter((id) => !firstAt.has(id)).length,
          phantom: [...firstAt.keys()].filter((id) => !committedIds.has(id)).length,
          duplicates: deliveries.length - firstAt.size,
          violations,
          // The first differing positions of the first violated key, for diagnosis.
          ...(violated.length === 0 ? {} : { first_violation: firstDifference(violated[0]!) }),
          // false: the run stopped at `error`, and the figures cover only what ran before it
          completed: failure === undefined,
          elapsed_ms: Date.now() - started,
          ...(failure === undefined ? {} : { error: failure.message.slice(0, 400) }),
        }
        console.log(JSON.stringify(figures))
        if (failure !== undefined) throw failure
        expect(figures.others_published_during_hold).toBe(OTHERS)
        expect(hotDeliveredDuringHold).toEqual([expected.get(HOT)![0]]) // K#1 only: the rest held
        expect(waitersStillWaitingAtRelease).toBe(WAITERS)
        expect(figures.k_published_after_release).toBe(1 + WAITERS)
        expect(actual.get(HOT)).toEqual(expected.get(HOT)) // K in commit order after the release
        expect(expected.get(HOT)!.slice(2)).toEqual(waiterOrder)
        expect(figures.missing).toBe(0)
        expect(figures.phantom).toBe(0)
        expect(figures.duplicates).toBe(0)
        expect(figures.violations).toBe(0)
      },
      HOLD_MS * 1.5 + 4 * LIVENESS_MS,
    )
  })
}
