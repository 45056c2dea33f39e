/**
 * Relay crash test (RELIABILITY.md T1 at CI size): relay child processes publishing 20,000
 * messages over 200 keys are killed with SIGKILL at random moments at least 20 times and
 * restarted: one relay on PostgreSQL, one on MariaDB, and two at once on PostgreSQL (a random one
 * killed each time). The ledger oracle accounts for every message: lost and phantom must be 0 and
 * the first deliveries of each key must follow commit order; duplicates are counted and bounded by
 * the batches in flight at the kills.
 *
 * After seeding, the outbox is ANALYZEd, as autovacuum would do on a long-lived table: on a table
 * that was never analyzed the PostgreSQL planner evaluates the head-of-line check for every pending
 * row of each claim, and a 20,000-row drain takes minutes instead of seconds.
 * SWITCHYARD_CHAOS_SCALE multiplies the sizes; SWITCHYARD_CHAOS_SEED fixes the kill schedule.
 */
import { describe, expect, inject, it } from 'vitest'
import {
  chaosScale,
  chaosSeed,
  checkLedger,
  type Delivery,
  drained,
  heldBy,
  random,
  readJsonLines,
  report,
  seed,
  type ServerStore,
  sleep,
  withCrashStore,
} from '../../helpers/crash-harness.js'

const services = inject('services')
const KEYS = 200
const KILLS = 20 * chaosScale
const BATCH = 50
/** A simulated broker round trip, so kills also land between a publish and its confirm. */
const PUBLISH_MS = 10

const cases: { store: ServerStore; relays: number; messages: number; title: string }[] = [
  { store: 'postgres', relays: 1, messages: 20_000 * chaosScale, title: 'PostgreSQL, one relay' },
  { store: 'mysql', relays: 1, messages: 20_000 * chaosScale, title: 'MariaDB, one relay' },
  { store: 'postgres', relays: 2, messages: 20_000 * chaosScale, title: 'PostgreSQL, two relays' },
]

describe.each(cases)('relay SIGKILL test: $title', ({ store, relays, messages }) => {
  const url = services[store] ?? null
  it.skipIf(url === null)(
    `loses nothing and keeps per-key order across ${KILLS} SIGKILLs of relays publishing ${messages} messages`,
    () =>
      withCrashStore(store, url!, async ({ target, children, file, relayEnv }) => {
        const rand = random(chaosSeed)
        const committed = await seed(target, { messages, keys: KEYS, rand })
        await target.analyze()
        const ledger = file('ledger.jsonl')
        const env = relayEnv(ledger, { batch: BATCH, leaseMs: 1000, publishMs: PUBLISH_MS })
        const started = Date.now()
        const running = await Promise.all(Array.from({ length: relays }, () => children.start(env)))
        // Rows the killed relay held (claimed, not marked) when it died: the only ones it may re-send.
        const killedClaims = new Set<string>()
        let killsWithRowsInFlight = 0
        for (let k = 0; k < KILLS; k++) {
          await sleep(30 + rand() * 170)
          const victim = Math.floor(rand() * running.length)
          const pid = running[victim]!.pid
          await children.kill(running[victim]!)
          const held = await heldBy(target, pid)
          if (held.length > 0) killsWithRowsInFlight++
          for (const id of held) killedClaims.add(id)
          running[victim] = await children.start(env)
        }
        await drained(target.store)
        await children.killAll()
        const elapsedMs = Date.now() - started

        const check = checkLedger(committed, readJsonLines<Delivery>(ledger))
        report('relay-sigkill', store, {
          relays,
          seed: chaosSeed,
          scale: chaosScale,
          messages,
          keys: KEYS,
          kills: KILLS,
          batch: BATCH,
          publishMs: PUBLISH_MS,
          lost: check.lost,
          phantom: check.phantom,
          duplicates: check.duplicates,
          duplicatesOutsideKilledClaims: check.duplicateIds.filter((id) => !killedClaims.has(id))
            .length,
          orderViolations: check.orderViolations,
          killsWithRowsInFlight,
          rowsInFlightAtKills: killedClaims.size,
          elapsedMs,
        })
        expect(
          killsWithRowsInFlight,
          'the kills must interrupt claimed work, or the test proves nothing',
        ).toBeGreaterThan(KILLS / 4)
        expect(check.lost).toBe(0)
        expect(check.phantom).toBe(0)
        expect(check.orderViolations).toBe(0)
        expect(check.duplicates).toBeLessThanOrEqual((KILLS + 1) * BATCH)
        expect((await target.store.status()).published).toBe(messages)
      }),
    300_000,
  )
})
