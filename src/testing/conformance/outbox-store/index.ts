/**
 * The outbox-store conformance suite: the guarantees every `OutboxStore` must keep, runnable under
 * any test runner (you pass `describe`/`it`/hooks; assertions use `node:assert`). Shipped in
 * `switchyard-bus/testing` so third-party stores can certify themselves.
 */
import assert from 'node:assert/strict'
import type {
  ClaimedRecord,
  MarkAndClaim,
  OutboxAppend,
  OutboxMaintenance,
  OutboxStore,
  SqlExecutor,
} from '../../../index.js'
import { register, type SuiteRunner } from '../suite-runner.js'

export type { SuiteRunner }

/** One store under test, with a way to run the user's transactions. */
export interface OutboxStoreHarness {
  readonly store: OutboxStore & OutboxMaintenance
  /** Runs `work` in a transaction on its own connection: commits when it resolves, rolls back when it throws. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>
  /** Frees everything the harness made (drops its schema). */
  close(): Promise<void>
}

/** What the store can do; scenarios that need more are skipped, with the flag as the reason. */
export interface OutboxStoreFeatures {
  /** Several connections claim and write at once (false on PGlite). */
  readonly concurrentClaimers: boolean
  /** The store has the optional `markAndClaim` (one round trip per relay batch). Default false. */
  readonly markAndClaim?: boolean
}

/** The suite's configuration. */
export interface OutboxStoreConformance {
  readonly name: string
  readonly features: OutboxStoreFeatures
  /** A fresh, isolated store with its schema ensured. */
  readonly create: () => Promise<OutboxStoreHarness>
  /** Scenarios not to run, each with the reason. */
  readonly skip?: readonly { readonly test: string; readonly reason: string }[]
  /** The largest body the store accepts, as configured in `create`. Default 1 MiB (the stores' default). */
  readonly maxMessageBytes?: number
}

let counter = 0
const record = (key?: string, extra: Partial<OutboxAppend> = {}): OutboxAppend => {
  const n = ++counter
  return {
    id: `m-${process.pid}-${n}-${Math.random().toString(36).slice(2, 8)}`,
    topic: 'orders',
    key,
    type: 'Allocated',
    body: new TextEncoder().encode(`{"n":${n}}`),
    headers: { n: String(n) },
    ...extra,
  }
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const LEASE = { limit: 100, leaseMs: 30_000 } as const
/** An `assert.rejects` check: the error's stable code and whether it is retryable. */
const code =
  (expected: string, retryable: boolean) =>
  (error: unknown): true => {
    const e = error as { code?: unknown; retryable?: unknown }
    assert.equal(e.code, expected)
    assert.equal(e.retryable, retryable)
    return true
  }
/** A well-formed token no claim handed out. */
const STALE_TOKEN = '00000000-0000-4000-8000-000000000000'

/** Registers the conformance scenarios for one store. */
export function describeOutboxStoreConformance(
  config: OutboxStoreConformance,
  t: SuiteRunner,
): void {
  const skipped = new Map((config.skip ?? []).map((s) => [s.test, s.reason]))
  let h: OutboxStoreHarness
  const scenario = (
    name: string,
    body: () => Promise<void>,
    needs?: keyof OutboxStoreFeatures,
  ): void => {
    const reason =
      skipped.get(name) ??
      (needs !== undefined && !config.features[needs]
        ? `the store does not declare ${needs}`
        : undefined)
    register(t, name, body, reason)
  }
  const append = (...records: OutboxAppend[]): Promise<void> =>
    h.transaction((tx) => h.store.append(tx, records))

  t.describe(`outbox store conformance: ${config.name}`, () => {
    t.beforeEach(async () => {
      h = await config.create()
    })
    t.afterEach(async () => {
      await h.close()
    })

    scenario('ensureSchema is idempotent, also when run concurrently', async () => {
      await h.store.ensureSchema()
      await Promise.all([h.store.ensureSchema(), h.store.ensureSchema()])
      await append(record())
      assert.equal((await h.store.claim(LEASE)).length, 1)
    })

    scenario(
      'appended rows become claimable only when the transaction commits; a rollback leaves nothing',
      async () => {
        await assert.rejects(
          h.transaction(async (tx) => {
            await h.store.append(tx, [record('k'), record()])
            throw new Error('business rule failed')
          }),
          /business rule failed/,
        )
        assert.deepEqual(await h.store.claim(LEASE), [])
        let seenInside: number | undefined
        await h.transaction(async (tx) => {
          await h.store.append(tx, [record('k')])
          if (config.features.concurrentClaimers) seenInside = (await h.store.claim(LEASE)).length
        })
        if (config.features.concurrentClaimers) assert.equal(seenInside, 0)
        const claimed = await h.store.claim(LEASE)
        assert.equal(claimed.length, 1)
        assert.equal(
          claimed[0]!.keySeq,
          1,
          'the rolled-back append left no gap in the key sequence',
        )
      },
    )

    scenario(
      'append refuses, with a typed error, a body over the limit or a message id already stored; the transaction stores nothing',
      async () => {
        const limit = config.maxMessageBytes ?? 1024 * 1024
        const atLimit = record('big', { body: new Uint8Array(limit).fill(0x20) })
        await append(atLimit)
        await assert.rejects(
          append(record('big'), record('big', { body: new Uint8Array(limit + 1) })),
          code('SWITCHYARD_MESSAGE_TOO_LARGE', false),
        )
        await assert.rejects(
          append(record('big'), atLimit),
          code('SWITCHYARD_DUPLICATE_MESSAGE_ID', false),
        )
        const twice = record('big')
        await assert.rejects(append(twice, twice), code('SWITCHYARD_DUPLICATE_MESSAGE_ID', false))
        const claimed = await h.store.claim(LEASE)
        assert.deepEqual(
          claimed.map((r) => [r.id, r.keySeq, r.body.byteLength]),
          [[atLimit.id, 1, limit]],
          'only the row at the limit is stored, and the refused appends left no gap in the key',
        )
      },
    )

    scenario(
      'keys and ids compare exactly: keys differing in case or a trailing space are separate keys',
      async () => {
        const variants = ['Lamp', 'LAMP', 'Lamp ', 'Lamp😀', 'Lamp😁']
        await append(...variants.map((key) => record(key)))
        await append(...variants.map((key) => record(key)))
        const first = await h.store.claim(LEASE)
        assert.deepEqual(
          first.map((r) => [r.key, r.keySeq]).sort(),
          variants.map((key) => [key, 1]).sort(),
          'each spelling is its own key, numbered from 1',
        )
        await h.store.markPublished(first)
        const second = await h.store.claim(LEASE)
        assert.deepEqual(
          second.map((r) => [r.key, r.keySeq]).sort(),
          variants.map((key) => [key, 2]).sort(),
        )
      },
    )

    scenario(
      'claim respects its limit and returns the oldest first, with body and headers intact',
      async () => {
        const records = [record(), record(), record(), record(), record()]
        for (const r of records) await append(r)
        const first = await h.store.claim({ limit: 2, leaseMs: 30_000 })
        assert.deepEqual(
          first.map((r) => r.id),
          records.slice(0, 2).map((r) => r.id),
        )
        assert.deepEqual(Buffer.from(first[0]!.body), Buffer.from(records[0]!.body))
        assert.deepEqual({ ...first[0]!.headers }, records[0]!.headers)
        assert.equal(first[0]!.attempts, 1)
        const rest = await h.store.claim(LEASE)
        assert.deepEqual(
          rest.map((r) => r.id),
          records.slice(2).map((r) => r.id),
        )
      },
    )

    scenario(
      'concurrent claimers never get the same row',
      async () => {
        await append(...Array.from({ length: 40 }, () => record()))
        const batches = await Promise.all(
          Array.from({ length: 4 }, () => h.store.claim({ limit: 15, leaseMs: 30_000 })),
        )
        const ids = batches.flat().map((r) => r.id)
        assert.equal(new Set(ids).size, ids.length)
        assert.equal(ids.length, 40)
      },
      'concurrentClaimers',
    )

    scenario(
      "a key's next row cannot be claimed while an earlier one is in flight or waiting to retry",
      async () => {
        const [k1, k2, k3, x1] = [record('k'), record('k'), record('k'), record('x')]
        await append(k1, k2, k3, x1)
        const first = await h.store.claim(LEASE)
        assert.deepEqual(first.map((r) => r.id).sort(), [k1.id, x1.id].sort())
        assert.deepEqual(await h.store.claim(LEASE), [], 'k#2 waits while k#1 is in flight')
        const k1Claim = first.find((r) => r.id === k1.id)!
        assert.equal(
          await h.store.markFailed(k1Claim, 'broker down', { retryInMs: 0, maxAttempts: 5 }),
          'retry',
        )
        const again = await h.store.claim(LEASE)
        assert.deepEqual(
          again.map((r) => r.id),
          [k1.id],
          'k#1 again, not k#2',
        )
        assert.equal(again[0]!.attempts, 2)
        await h.store.markPublished(again)
        assert.deepEqual(
          (await h.store.claim(LEASE)).map((r) => r.id),
          [k2.id],
        )
      },
    )

    scenario(
      'rows of one key are claimed in commit order even when their transactions overlap',
      async () => {
        let releaseFirst!: () => void
        const firstMayCommit = new Promise<void>((resolve) => (releaseFirst = resolve))
        const a = record('hot')
        const b = record('hot')
        const first = h.transaction(async (tx) => {
          await h.store.append(tx, [a])
          await firstMayCommit
        })
        await sleep(50)
        // The second writer of the key waits for the first one's counter row lock.
        const second = h.transaction((tx) => h.store.append(tx, [b]))
        await sleep(50)
        releaseFirst()
        await Promise.all([first, second])
        const claimed = await h.store.claim(LEASE)
        assert.deepEqual(
          claimed.map((r) => [r.id, r.keySeq]),
          [[a.id, 1]],
        )
        await h.store.markPublished(claimed)
        assert.deepEqual(
          (await h.store.claim(LEASE)).map((r) => [r.id, r.keySeq]),
          [[b.id, 2]],
        )
      },
      'concurrentClaimers',
    )

    scenario('an expired lease is claimed again, and the stale claimer is fenced off', async () => {
      const [k, j] = [record('k'), record('j')]
      await append(k, j)
      const byId = (rows: readonly ClaimedRecord[], id: string): ClaimedRecord =>
        rows.find((r) => r.id === id)!
      const first = await h.store.claim({ limit: 10, leaseMs: 100 })
      await sleep(250)
      const again = await h.store.claim(LEASE)
      const [stale, fresh] = [byId(first, k.id), byId(again, k.id)]
      assert.notEqual(fresh.token, stale.token)
      assert.equal(await h.store.markPublished([stale]), 0, 'the stale token is refused')
      assert.equal(
        await h.store.markFailed(stale, 'late', { retryInMs: 0, maxAttempts: 5 }),
        'stale',
      )
      // In one list, each row is checked against its own token.
      assert.equal(await h.store.markPublished([stale, byId(again, j.id)]), 1)
      assert.equal(await h.store.markPublished([byId(first, j.id), fresh]), 1)
      const status = await h.store.status()
      assert.equal(status.published, 2)
      assert.equal(status.pending + status.inflight, 0)
    })

    scenario(
      'markAndClaim marks the previous batch, claims the next rows of those keys at once, and fences stale marks',
      async () => {
        const store = h.store as MarkAndClaim & typeof h.store
        assert.equal(typeof store.markAndClaim, 'function', 'features.markAndClaim says it has one')
        const [a1, a2, b1, b2] = [record('a'), record('a'), record('b'), record('b')]
        await append(a1, a2, b1, b2)
        const first = await store.claim(LEASE)
        assert.deepEqual(first.map((r) => r.id).sort(), [a1.id, b1.id].sort())
        // b1's mark carries a stale token: refused, so b2 stays behind it.
        const stale = first.map((r) => (r.id === b1.id ? { ...r, token: STALE_TOKEN } : r))
        const next = await store.markAndClaim(stale, LEASE)
        assert.equal(next.accepted, 1)
        assert.deepEqual(
          next.claimed.map((r) => r.id),
          [a2.id],
          'a2 follows its marked head at once; b2 waits for b1',
        )
        const last = await store.markAndClaim(
          [...next.claimed, first.find((r) => r.id === b1.id)!],
          LEASE,
        )
        assert.equal(last.accepted, 2)
        assert.deepEqual(
          last.claimed.map((r) => r.id),
          [b2.id],
        )
        assert.deepEqual(await store.markAndClaim([], LEASE), { accepted: 0, claimed: [] })
        const status = await h.store.status()
        assert.equal(status.published, 3)
        assert.equal(status.inflight, 1)
      },
      'markAndClaim',
    )

    scenario('markPublished is idempotent', async () => {
      await append(record())
      const claimed = await h.store.claim(LEASE)
      assert.equal(await h.store.markPublished(claimed), 1)
      assert.equal(await h.store.markPublished(claimed), 0)
      const status = await h.store.status()
      assert.equal(status.published, 1)
      assert.equal(status.pending + status.inflight, 0)
    })

    scenario(
      'markFailed counts attempts, waits the backoff in database time, then dead-letters after the max',
      async () => {
        const k1 = record('k')
        const k2 = record('k')
        await append(k1, k2)
        let [claim] = await h.store.claim(LEASE)
        assert.equal(
          await h.store.markFailed(claim!, 'boom 1', { retryInMs: 400, maxAttempts: 2 }),
          'retry',
        )
        assert.deepEqual(await h.store.claim(LEASE), [], 'not due yet')
        await sleep(500)
        ;[claim] = await h.store.claim(LEASE)
        assert.equal(claim?.id, k1.id)
        assert.equal(claim.attempts, 2)
        assert.equal(
          await h.store.markFailed(claim, 'boom 2', { retryInMs: 0, maxAttempts: 2 }),
          'dead',
        )
        assert.deepEqual(await h.store.claim(LEASE), [], 'a dead head blocks its key')
        assert.equal((await h.store.status()).dead, 1)
        assert.equal(await h.store.retry([k1.id]), 1)
        ;[claim] = await h.store.claim(LEASE)
        assert.equal(claim?.id, k1.id)
        assert.equal(claim.attempts, 1, 'retry resets the attempts')
        assert.equal(
          await h.store.markFailed(claim, 'boom 3', { retryInMs: 0, maxAttempts: 1 }),
          'dead',
        )
        assert.equal(await h.store.skip([k1.id]), 1)
        assert.deepEqual(
          (await h.store.claim(LEASE)).map((r) => r.id),
          [k2.id],
          'skipping the dead head unblocks the key',
        )
      },
    )

    scenario('due times come from the database clock, not the caller', async () => {
      await append(record())
      const [claim] = await h.store.claim(LEASE)
      await h.store.markFailed(claim!, 'boom', { retryInMs: 60_000, maxAttempts: 5 })
      const realNow = Date.now
      Date.now = () => realNow() + 3_600_000 // a caller whose clock runs an hour ahead
      try {
        assert.deepEqual(await h.store.claim(LEASE), [], 'still not due by the database clock')
      } finally {
        Date.now = realNow
      }
    })

    scenario('release puts claimed rows back without counting the attempt', async () => {
      await append(record())
      const claimed = await h.store.claim(LEASE)
      assert.equal(await h.store.release(claimed), 1)
      const [again] = await h.store.claim(LEASE)
      assert.equal(again?.attempts, 1)
    })

    scenario('retention removes only published rows, and forgets their ids', async () => {
      const records = [record(), record(), record()]
      await append(...records)
      const claimed = await h.store.claim({ limit: 2, leaseMs: 30_000 })
      await h.store.markPublished(claimed)
      await sleep(20)
      assert.equal(await h.store.cleanup(0, 1), 2)
      const status = await h.store.status()
      assert.equal(status.published, 0)
      assert.equal(status.pending, 1)
      assert.ok(status.oldestPendingMs >= 0)
      // The id of a row still stored is still refused; a removed row's id is free again.
      const kept = records.find((r) => !claimed.some((c) => c.id === r.id))!
      await assert.rejects(append(kept), code('SWITCHYARD_DUPLICATE_MESSAGE_ID', false))
      await append(records.find((r) => r.id === claimed[0]!.id)!)
      assert.equal((await h.store.status()).pending, 2)
    })
  })
}
