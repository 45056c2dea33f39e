/**
 * The inbox-store conformance suite: exactly-once recording per (consumer, message id), runnable
 * under any test runner (assertions use `node:assert`).
 */
import assert from 'node:assert/strict'
import type { InboxStore, SqlExecutor } from '../../../index.js'
import { register, type SuiteRunner } from '../suite-runner.js'

/** One inbox under test, with a way to run the consumer's transactions. */
export interface InboxStoreHarness {
  readonly store: InboxStore
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>
  close(): Promise<void>
}

/** The suite's configuration. */
export interface InboxStoreConformance {
  readonly name: string
  readonly features: { readonly concurrentTransactions: boolean }
  readonly create: () => Promise<InboxStoreHarness>
  readonly skip?: readonly { readonly test: string; readonly reason: string }[]
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const id = (): string => `msg-${Math.random().toString(36).slice(2)}`

/** Registers the inbox conformance scenarios for one store. */
export function describeInboxStoreConformance(config: InboxStoreConformance, t: SuiteRunner): void {
  const skipped = new Map((config.skip ?? []).map((s) => [s.test, s.reason]))
  let h: InboxStoreHarness
  const scenario = (name: string, body: () => Promise<void>, needsConcurrency = false): void => {
    const reason =
      skipped.get(name) ??
      (needsConcurrency && !config.features.concurrentTransactions
        ? 'the store does not declare concurrentTransactions'
        : undefined)
    register(t, name, body, reason)
  }
  const record = (consumer: string, messageId: string): Promise<boolean> =>
    h.transaction((tx) => h.store.tryRecord(tx, consumer, messageId))

  t.describe(`inbox store conformance: ${config.name}`, () => {
    t.beforeEach(async () => {
      h = await config.create()
    })
    t.afterEach(async () => {
      await h.close()
    })

    scenario('tryRecord answers true once, then false for the same message', async () => {
      const m = id()
      assert.equal(await record('orders', m), true)
      assert.equal(await record('orders', m), false)
      assert.equal(await record('orders', m), false)
    })

    scenario('a rollback forgets the record', async () => {
      const m = id()
      await assert.rejects(
        h.transaction(async (tx) => {
          assert.equal(await h.store.tryRecord(tx, 'orders', m), true)
          throw new Error('the handler failed')
        }),
        /the handler failed/,
      )
      assert.equal(await record('orders', m), true, 'the redelivery is applied')
    })

    scenario(
      'message ids and consumers compare exactly: case, trailing spaces and emoji make different ones',
      async () => {
        const m = id()
        for (const variant of [`${m}-a`, `${m}-A`, `${m}-a `, `${m}-😀`, `${m}-😁`])
          assert.equal(await record('orders', variant), true, `"${variant}" is a new message`)
        assert.equal(await record('Orders', `${m}-a`), true, 'consumer names are case-sensitive')
        assert.equal(await record('orders', `${m}-😀`), false)
      },
    )

    scenario('records are per consumer', async () => {
      const m = id()
      assert.equal(await record('orders', m), true)
      assert.equal(await record('billing', m), true)
      assert.equal(await record('billing', m), false)
    })

    scenario(
      'with concurrent duplicates exactly one wins',
      async () => {
        const m = id()
        const outcomes = await Promise.all(
          Array.from({ length: 5 }, () =>
            h.transaction(async (tx) => {
              const first = await h.store.tryRecord(tx, 'orders', m)
              await sleep(30) // hold the transaction open, as a handler would
              return first
            }),
          ),
        )
        assert.equal(outcomes.filter(Boolean).length, 1)
      },
      true,
    )

    scenario(
      'a duplicate waiting on a transaction that rolls back takes over',
      async () => {
        const m = id()
        let release!: () => void
        const mayRollBack = new Promise<void>((resolve) => (release = resolve))
        const first = h.transaction(async (tx) => {
          assert.equal(await h.store.tryRecord(tx, 'orders', m), true)
          await mayRollBack
          throw new Error('first attempt failed')
        })
        await sleep(30)
        const second = record('orders', m)
        await sleep(30)
        release()
        await assert.rejects(first, /first attempt failed/)
        assert.equal(await second, true)
      },
      true,
    )

    scenario('cleanup removes records older than the given age', async () => {
      const old = id()
      await record('orders', old)
      await sleep(50)
      const fresh = id()
      await record('orders', fresh)
      assert.equal(await h.store.cleanup(40), 1)
      assert.equal(
        await record('orders', old),
        true,
        'a forgotten record is applied again: keep records long enough',
      )
      assert.equal(await record('orders', fresh), false)
    })
  })
}
