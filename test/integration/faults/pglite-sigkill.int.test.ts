/**
 * PGlite crash test (RELIABILITY.md T19, PGlite part, with T1's oracle): PGlite runs inside one
 * process, so the parent cannot open the data directory while a child has it. The child
 * (relay-child.ts with RELAY_PRODUCE) appends the messages itself, 10 per transaction, and relays
 * them; it records each transaction in the "committed" ledger only after the commit returned, and
 * each publish in the publish ledger. The parent SIGKILLs it at random moments (10 times at CI
 * size, with 5,000 messages) and restarts it on the same data directory, which runs PostgreSQL's
 * crash recovery; a last child appends what is left, drains, closes and exits. Then the parent
 * opens the directory itself and checks:
 *
 * - every recorded commit is in the database (`recordedMissing` 0: a commit that returned survived
 *   the SIGKILL), and every child opened the directory without repair;
 * - a transaction can commit right before a kill without being recorded: those are counted as
 *   `committedUnrecorded`, found in the database, not phantoms;
 * - every row in the database was published (`lost` 0), nothing was published that is not in it
 *   (`phantom` 0), first deliveries follow the per-key sequence (`orderViolations` 0), and the
 *   per-key sequences are gapless.
 */
import { join } from 'node:path'
import { PGlite } from '@electric-sql/pglite'
import { describe, expect, it } from 'vitest'
import {
  chaosScale,
  chaosSeed,
  checkLedger,
  Children,
  type Committed,
  type Delivery,
  exitOf,
  random,
  readJsonLines,
  report,
  scratch,
  sleep,
} from '../../helpers/crash-harness.js'
import { uniqueSchema } from '../../helpers/postgres.js'

const MESSAGES = 5000 * chaosScale
const KILLS = 10 * chaosScale
const KEYS = 50
const BATCH = 50
const PER_TX = 10

describe('PGlite crash test (file data directory)', () => {
  it(`recovers from ${KILLS} SIGKILLs of a process appending and relaying ${MESSAGES} messages, losing no commit`, async () => {
    const files = scratch()
    const children = new Children()
    const dataDir = join(files.dir, 'pgdata')
    const schema = uniqueSchema()
    const ledger = files.file('ledger.jsonl')
    const committedLedger = files.file('committed.jsonl')
    const relayLog = files.file('relay-log.jsonl')
    const env = {
      RELAY_STORE: 'pglite',
      RELAY_PGLITE_DIR: dataDir,
      RELAY_SCHEMA: schema,
      RELAY_LEDGER: ledger,
      RELAY_BATCH: String(BATCH),
      // PGlite's queries run synchronously on the event loop, and the publish timeout counts that
      // time too: a tight one makes publishes time out while the process is busy in the database.
      RELAY_LEASE_MS: '4000',
      RELAY_PUBLISH_TIMEOUT_MS: '3000',
      RELAY_PUBLISH_MS: '10',
      RELAY_PRODUCE: String(MESSAGES),
      RELAY_PER_TX: String(PER_TX),
      // The producer's pace, so that most kills land while it appends whatever an append costs:
      // 500 transactions ~12 ms apart outlast the 10 children (0.2–1.2 s each) by about twice.
      RELAY_PRODUCE_PAUSE_MS: '12',
      RELAY_KEYS: String(KEYS),
      RELAY_SEED: String(chaosSeed),
      RELAY_COMMITTED: committedLedger,
      RELAY_LOG: relayLog,
    }
    const rand = random(chaosSeed)
    const openMs: number[] = []
    const onReady = (message: { type: string; openMs?: number }): void => {
      if (message.type === 'ready') openMs.push(message.openMs!)
    }
    try {
      const started = Date.now()
      let killsWhileProducing = 0
      for (let k = 0; k < KILLS; k++) {
        const child = await children.start(env, onReady)
        await sleep(200 + rand() * 1000)
        await children.kill(child)
        if (readJsonLines(committedLedger).length < MESSAGES) killsWhileProducing++
      }
      const published = new Set(readJsonLines<Delivery>(ledger).map((d) => d.id)).size
      const backlogAtLastStart = readJsonLines(committedLedger).length - published
      const lastStarted = Date.now()
      let done = false
      const last = await children.start({ ...env, RELAY_DRAIN: '1' }, (message) => {
        onReady(message)
        if (message.type === 'done') done = true
      })
      const lastExit = await exitOf(last, 120_000)
      const lastChildMs = Date.now() - lastStarted
      const elapsedMs = Date.now() - started

      // No child has the directory now: open it here (a clean close, so no recovery needed).
      const db = await PGlite.create(dataDir)
      const { rows } = await db.query<{ id: string; key: string; key_seq: number; state: string }>(
        `SELECT id, key, key_seq::int AS key_seq, state FROM "${schema}"."outbox" ORDER BY key, key_seq`,
      )
      await db.close()

      const keyInDb = new Map(rows.map((r) => [r.id, r.key]))
      const recorded = readJsonLines<Committed>(committedLedger)
      const recordedIds = new Set(recorded.map((c) => c.id))
      const deliveries = readJsonLines<Delivery>(ledger)
      // The database is the truth of what committed; its per-key sequence is the order to keep.
      const check = checkLedger(rows, deliveries)
      let gaps = 0
      let previous: { key: string; seq: number } | undefined
      for (const r of rows) {
        const expected = previous?.key === r.key ? previous.seq + 1 : 1
        if (r.key_seq !== expected) gaps++
        previous = { key: r.key, seq: r.key_seq }
      }
      const result = {
        seed: chaosSeed,
        scale: chaosScale,
        messages: MESSAGES,
        keys: KEYS,
        perTransaction: PER_TX,
        batch: BATCH,
        kills: KILLS,
        killsWhileProducing,
        opens: openMs.length,
        firstOpenMs: openMs[0],
        maxReopenMs: Math.max(...openMs.slice(1)),
        rowsInDb: rows.length,
        recordedCommits: recordedIds.size,
        recordedMissing: recorded.filter((c) => !keyInDb.has(c.id)).length,
        committedUnrecorded: rows.filter((r) => !recordedIds.has(r.id)).length,
        keyMismatches: recorded.filter((c) => keyInDb.has(c.id) && keyInDb.get(c.id) !== c.key)
          .length,
        lost: check.lost,
        phantom: check.phantom,
        duplicates: check.duplicates,
        orderViolations: check.orderViolations,
        gaps,
        unpublished: rows.filter((r) => r.state !== 'published').length,
        dead: rows.filter((r) => r.state === 'dead').length,
        failedPublishes: readJsonLines<{ message: string }>(relayLog).filter((l) =>
          l.message.startsWith('outbox publish failed'),
        ).length,
        publishedBeforeLastChild: published,
        backlogAtLastStart,
        lastChildMs,
        elapsedMs,
      }
      report('pglite-sigkill', 'pglite', result)
      expect(lastExit, 'the last child exits by itself').toBeNull()
      expect(done, 'the last child drained the outbox').toBe(true)
      expect(result.opens, 'every child opened the data directory').toBe(KILLS + 1)
      expect(result.killsWhileProducing, 'kills must land while appending').toBeGreaterThan(
        KILLS / 2,
      )
      expect(result.rowsInDb).toBe(MESSAGES)
      expect(keyInDb.size, 'ids are unique').toBe(MESSAGES)
      expect(result.recordedMissing, 'commits that returned survive SIGKILL').toBe(0)
      expect(result.keyMismatches).toBe(0)
      expect(result.lost).toBe(0)
      expect(result.phantom).toBe(0)
      expect(result.orderViolations).toBe(0)
      expect(result.gaps).toBe(0)
      expect(result.unpublished).toBe(0)
      expect(result.duplicates).toBeLessThanOrEqual((KILLS + 1) * BATCH)
    } finally {
      await children.killAll()
      files.remove()
    }
  }, 300_000)
})
