/**
 * Stalled relay, lease expiry (RELIABILITY.md T6): relay A claims a batch, hands it to the
 * publisher (the ledger) and is stopped with SIGSTOP before the confirm (relay-child.ts stops
 * itself at `RELAY_STALL_AT`, so the stop lands exactly there), for its lease + 1 s and until relay
 * B has taken the batch over and published it; then A gets SIGCONT, its publish is confirmed and
 * it marks the batch with its stale claim. The fence must reject that mark: no row goes back from
 * published (state and published_at unchanged), duplicates stay within A's batch, first deliveries
 * keep per-key order, nothing is lost.
 */
import { describe, expect, inject, it } from 'vitest'
import {
  chaosSeed,
  checkLedger,
  type Delivery,
  drained,
  heldBy,
  idSet,
  isStopped,
  type Mark,
  random,
  readJsonLines,
  report,
  seed,
  SERVER_STORES,
  waitFor,
  withCrashStore,
} from '../../helpers/crash-harness.js'

const services = inject('services')
const MESSAGES = 2000
const KEYS = 40
const BATCH = 20
const LEASE_MS = 1500
/** B's simulated broker round trip, so a backlog is left when A resumes (A's is 0: see below). */
const PUBLISH_MS = 20

describe.each(SERVER_STORES)('stalled relay: $title', ({ store }) => {
  const url = services[store] ?? null
  it.skipIf(url === null)(
    'a relay stopped past its lease cannot undo the work of the relay that took over',
    () =>
      withCrashStore(store, url!, async ({ target, children, file, relayEnv }) => {
        const committed = await seed(target, {
          messages: MESSAGES,
          keys: KEYS,
          rand: random(chaosSeed),
        })
        const ledger = file('ledger.jsonl')
        const marks = file('marks.jsonl')
        const env = { ...relayEnv(ledger, { batch: BATCH, leaseMs: LEASE_MS }), RELAY_MARKS: marks }
        const started = Date.now()

        // A's publisher resumes with no timer to wait for: its confirm wins over its publish
        // timeout (overdue after the stop), so A goes on to mark with its stale claim.
        const a = await children.start({ ...env, RELAY_STALL_AT: '1' })
        await waitFor('relay A to stop itself mid-publish', () => isStopped(a.pid!), 30_000)
        const stoppedAt = Date.now()
        const staleBatch = readJsonLines<Delivery>(ledger)
          .filter((d) => d.pid === a.pid)
          .map((d) => d.id)
        const heldByA = await heldBy(target, a.pid)

        const b = await children.start({ ...env, RELAY_PUBLISH_MS: String(PUBLISH_MS) })
        await waitFor('relay B to take over and publish the stalled batch', async () => {
          if (Date.now() < stoppedAt + LEASE_MS + 1000) return false
          const published = new Set(
            (await target.rows()).filter((r) => r.state === 'published').map((r) => r.id),
          )
          return staleBatch.every((id) => published.has(id))
        })
        const stalledMs = Date.now() - stoppedAt
        const before = new Map(
          (await target.rows())
            .filter((r) => r.state === 'published')
            .map((r) => [r.id, r.publishedAt]),
        )

        a.kill('SIGCONT')
        await waitFor("relay A's stale mark", () =>
          readJsonLines<Mark>(marks).some((m) => m.pid === a.pid),
        )
        const staleMark = readJsonLines<Mark>(marks).find((m) => m.pid === a.pid)!
        await drained(target.store)
        await children.killAll()

        const after = new Map((await target.rows()).map((r) => [r.id, r]))
        // A row published before SIGCONT that is no longer published, or was published again.
        const stateRegressions = [...before].filter(
          ([id, at]) => after.get(id)?.state !== 'published' || after.get(id)?.publishedAt !== at,
        ).length
        const deliveries = readJsonLines<Delivery>(ledger)
        const check = checkLedger(committed, deliveries)
        const takenOver = deliveries.filter((d) => d.pid === b.pid && staleBatch.includes(d.id))
        report('relay-stall', store, {
          seed: chaosSeed,
          messages: MESSAGES,
          keys: KEYS,
          batch: BATCH,
          leaseMs: LEASE_MS,
          publishMsOfB: PUBLISH_MS,
          stalledMs,
          staleBatch: staleBatch.length,
          takenOverByB: takenOver.length,
          staleMarkRows: staleMark.ids.length,
          staleMarkAccepted: staleMark.accepted,
          publishedBeforeResume: before.size,
          stateRegressions,
          dupPublishes: check.duplicates,
          lost: check.lost,
          phantom: check.phantom,
          orderViolations: check.orderViolations,
          elapsedMs: Date.now() - started,
        })
        expect(staleBatch.length, 'A stalled holding a batch').toBeGreaterThan(0)
        expect(idSet(heldByA), 'the stalled batch is what A held').toBe(idSet(staleBatch))
        expect(idSet(takenOver.map((d) => d.id)), 'B re-sent the stalled batch').toBe(
          idSet(staleBatch),
        )
        expect(idSet(staleMark.ids), "A's first mark is its stale batch").toBe(idSet(staleBatch))
        expect(staleMark.accepted, "the fence rejects A's stale mark").toBe(0)
        expect(stateRegressions).toBe(0)
        expect(check.duplicates).toBeLessThanOrEqual(staleBatch.length)
        expect(check.duplicateIds.every((id) => staleBatch.includes(id))).toBe(true)
        expect(check.lost).toBe(0)
        expect(check.phantom).toBe(0)
        expect(check.orderViolations).toBe(0)
        expect([...after.values()].every((r) => r.state === 'published')).toBe(true)
      }),
    60_000,
  )
})
