/**
 * Relay crash test (RELIABILITY.md T1 at CI size): a relay child process publishing 20,000
 * messages over 200 keys is killed with SIGKILL at random moments at least 20 times and restarted.
 * A ledger accounts for every message: lost must be 0 and per-key order (of first deliveries)
 * must hold; duplicates are counted and must stay within the batches in flight at the kills.
 * SWITCHYARD_CHAOS_SCALE multiplies the size; SWITCHYARD_CHAOS_SEED fixes the kill schedule.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { type OutboxAppend } from '../../../src/index.js'
import { PostgresOutboxStore } from '../../../src/postgres/index.js'
import { createPool, inTransaction, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
})

const scale = Number(process.env.SWITCHYARD_CHAOS_SCALE ?? 1)
const seed = Number(process.env.SWITCHYARD_CHAOS_SEED ?? Date.now() % 100_000)
const MESSAGES = 20_000 * scale
const KEYS = 200
const KILLS = 20 * scale
const BATCH = 50

/** A small seeded PRNG (mulberry32), so a failing schedule can be replayed. */
function random(seedValue: number): () => number {
  let a = seedValue >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const child = fileURLToPath(new URL('../../helpers/relay-child.ts', import.meta.url))

function startRelay(env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const proc = fork(child, {
      env,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    })
    proc.once('message', () => resolve(proc))
    proc.once('error', reject)
  })
}

function kill(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve()
    proc.once('exit', () => resolve())
    proc.kill('SIGKILL')
  })
}

describe.skipIf(pool === undefined)('relay crash test on PostgreSQL', () => {
  it(`loses nothing and keeps per-key order across ${KILLS} SIGKILLs of a relay publishing ${MESSAGES} messages`, async () => {
    const schema = uniqueSchema()
    const dir = mkdtempSync(join(tmpdir(), 'sy-crash-'))
    const ledger = join(dir, 'ledger.jsonl')
    writeFileSync(ledger, '')
    const store = new PostgresOutboxStore({ pool: pool!, schema, notify: false })
    await store.ensureSchema()
    const rand = random(seed)
    try {
      // Commit 20,000 messages over 200 keys, in transactions of 100, in a known order per key.
      const committed: { id: string; key: string }[] = []
      for (let start = 0; start < MESSAGES; start += 100) {
        const records: OutboxAppend[] = []
        for (let i = start; i < Math.min(start + 100, MESSAGES); i++) {
          const key = `key-${Math.floor(rand() * KEYS)}`
          const id = `m-${String(i).padStart(7, '0')}`
          committed.push({ id, key })
          records.push({
            id,
            key,
            topic: 'crash',
            type: 'Crash',
            body: new TextEncoder().encode('{}'),
          })
        }
        await inTransaction(pool!, (tx) => store.append(tx, records))
      }

      const env = {
        ...process.env,
        SWITCHYARD_PG_URL: url!,
        RELAY_SCHEMA: schema,
        RELAY_LEDGER: ledger,
        RELAY_BATCH: String(BATCH),
        RELAY_LEASE_MS: '1000',
      }
      const started = Date.now()
      let relay = await startRelay(env)
      let killsWithRowsInFlight = 0
      let rowsInFlightAtKills = 0
      for (let k = 0; k < KILLS; k++) {
        await new Promise((resolve) => setTimeout(resolve, 30 + rand() * 170))
        await kill(relay)
        const { inflight } = await store.status() // claimed by the dead relay: reclaimed after its lease
        if (inflight > 0) killsWithRowsInFlight++
        rowsInFlightAtKills += inflight
        relay = await startRelay(env)
      }
      const deadline = Date.now() + 120_000
      for (;;) {
        const status = await store.status()
        if (status.pending + status.inflight === 0) break
        if (Date.now() > deadline) throw new Error(`backlog not drained: ${JSON.stringify(status)}`)
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await kill(relay)
      const elapsedMs = Date.now() - started

      // The ledger oracle.
      const deliveries = readFileSync(ledger, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line) as { id: string; key: string })
      const delivered = new Set(deliveries.map((d) => d.id))
      const lost = committed.filter((c) => !delivered.has(c.id)).length
      const phantom = [...delivered].filter((id) => !committed.some((c) => c.id === id)).length
      const duplicates = deliveries.length - delivered.size
      const expectedOrder = new Map<string, string[]>()
      for (const c of committed)
        expectedOrder.set(c.key, [...(expectedOrder.get(c.key) ?? []), c.id])
      const firstSeen = new Map<string, string[]>()
      const seen = new Set<string>()
      for (const d of deliveries) {
        if (seen.has(d.id)) continue
        seen.add(d.id)
        firstSeen.set(d.key, [...(firstSeen.get(d.key) ?? []), d.id])
      }
      let orderViolations = 0
      for (const [key, ids] of expectedOrder)
        if (JSON.stringify(firstSeen.get(key) ?? []) !== JSON.stringify(ids)) orderViolations++
      const report = {
        test: 'relay-sigkill',
        seed,
        scale,
        messages: MESSAGES,
        keys: KEYS,
        kills: KILLS,
        batch: BATCH,
        lost,
        phantom,
        duplicates,
        orderViolations,
        killsWithRowsInFlight,
        rowsInFlightAtKills,
        elapsedMs,
      }
      console.log(JSON.stringify(report))
      expect(
        killsWithRowsInFlight,
        'the kills must interrupt claimed work, or the test proves nothing',
      ).toBeGreaterThan(KILLS / 4)
      expect(lost).toBe(0)
      expect(phantom).toBe(0)
      expect(orderViolations).toBe(0)
      expect(duplicates).toBeLessThanOrEqual((KILLS + 1) * BATCH)
      expect((await store.status()).published).toBe(MESSAGES)
    } finally {
      await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)
})
