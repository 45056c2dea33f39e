/**
 * Crash at each fault point (RELIABILITY.md T2): for each point, a relay child publishing 200
 * messages (two topics, so each batch has two topic groups) kills itself with SIGKILL at the 3rd
 * pass through the point (`SWITCHYARD_FAULT`); a relay without the fault is started and drains.
 * Per point: lost 0, and duplicates are exactly the rows the dead relay had handed to the publisher
 * without marking them (its last publish call) for the points after a publish, none for the
 * others; the rows it held are re-sent by the new relay, once each, with the same ids.
 *
 * - `relay.after-claim`: rows claimed, nothing published.
 * - `publisher.before-confirm`: the publisher (relay-child.ts) wrote the ledger, the confirm never came.
 * - `relay.after-publish`: a topic group confirmed, not yet marked.
 * - `relay.between-marks`: one topic group of the batch marked, the next not yet published.
 */
import { describe, expect, inject, it } from 'vitest'
import {
  chaosSeed,
  checkLedger,
  type Delivery,
  drained,
  exitOf,
  heldBy,
  idSet,
  random,
  readJsonLines,
  report,
  seed,
  SERVER_STORES,
  type ServerStore,
  withCrashStore,
} from '../../helpers/crash-harness.js'

const services = inject('services')
const MESSAGES = 200
const KEYS = 40
const BATCH = 20
const NTH = 3
const TOPICS = ['faults-a', 'faults-b']
const POINTS = [
  { point: 'relay.after-claim', published: false },
  { point: 'publisher.before-confirm', published: true },
  { point: 'relay.after-publish', published: true },
  { point: 'relay.between-marks', published: false },
]

function crashAt(store: ServerStore, url: string, point: string, published: boolean) {
  return withCrashStore(store, url, async ({ target, children, file, relayEnv }) => {
    const committed = await seed(target, {
      messages: MESSAGES,
      keys: KEYS,
      topics: TOPICS,
      perTransaction: 20,
      rand: random(chaosSeed),
    })
    const ledger = file('ledger.jsonl')
    const env = relayEnv(ledger, { batch: BATCH, leaseMs: 1000 })
    const started = Date.now()
    const doomed = await children.start({ ...env, SWITCHYARD_FAULT: `${point}:${NTH}` })
    const signal = await exitOf(doomed)
    const held = new Set(await heldBy(target, doomed.pid))
    const before = readJsonLines<Delivery>(ledger)
    const calls = before.filter((d) => d.pid === doomed.pid)
    const lastCall = calls.filter((d) => d.call === calls.at(-1)?.call).map((d) => d.id)
    // Handed to the publisher and never marked: what a restart must publish a second time.
    const expected = published ? lastCall : []

    const successor = await children.start(env)
    await drained(target.store, 60_000)
    await children.killAll()
    const deliveries = readJsonLines<Delivery>(ledger)
    const check = checkLedger(committed, deliveries)
    const resent = deliveries.slice(before.length).filter((d) => held.has(d.id))
    return {
      point,
      nth: NTH,
      signal,
      publishCalls: calls.at(-1)?.call ?? 0,
      heldAtKill: held.size,
      expectedDuplicates: expected.length,
      duplicates: check.duplicates,
      sameIds: idSet(check.duplicateIds) === idSet(expected),
      lastCallHeld: lastCall.filter((id) => held.has(id)).length,
      heldResentOnce:
        resent.length === held.size &&
        idSet(resent.map((d) => d.id)) === idSet(held) &&
        resent.every((d) => d.pid === successor.pid),
      lost: check.lost,
      phantom: check.phantom,
      orderViolations: check.orderViolations,
      elapsedMs: Date.now() - started,
    }
  })
}

describe.each(SERVER_STORES)('relay crash at each fault point: $title', ({ store }) => {
  const url = services[store] ?? null
  it.skipIf(url === null)(
    'loses nothing and re-sends exactly the unmarked rows, with the same ids',
    async () => {
      const rows = []
      for (const { point, published } of POINTS)
        rows.push(await crashAt(store, url!, point, published))
      report('relay-fault-points', store, {
        seed: chaosSeed,
        messages: MESSAGES,
        keys: KEYS,
        batch: BATCH,
        points: rows,
      })
      for (const row of rows) {
        const at = row.point
        expect.soft(row.signal, `${at}: the child killed itself there`).toBe('SIGKILL')
        expect.soft(row.heldAtKill, `${at}: it died holding claimed rows`).toBeGreaterThan(0)
        expect.soft(row.lost, `${at}: lost`).toBe(0)
        expect.soft(row.phantom, `${at}: phantom`).toBe(0)
        expect.soft(row.orderViolations, `${at}: order violations`).toBe(0)
        expect.soft(row.duplicates, `${at}: duplicates`).toBe(row.expectedDuplicates)
        expect.soft(row.sameIds, `${at}: the duplicates are the unmarked publish`).toBe(true)
        expect.soft(row.heldResentOnce, `${at}: held rows re-sent once each`).toBe(true)
        if (POINTS.find((p) => p.point === at)!.published) {
          expect.soft(row.expectedDuplicates, `${at}: a publish was cut`).toBeGreaterThan(0)
          expect
            .soft(row.lastCallHeld, `${at}: its rows stayed claimed`)
            .toBe(row.expectedDuplicates)
        } else {
          expect.soft(row.lastCallHeld, `${at}: its last publish was marked`).toBe(0)
        }
      }
    },
    120_000,
  )
})
