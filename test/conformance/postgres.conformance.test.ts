import { afterAll, afterEach, beforeEach, describe, inject, it } from 'vitest'
import { deliveryScope } from '../../src/core/delivery-scope.js'
import type { SqlExecutor } from '../../src/index.js'
import {
  PostgresInboxStore,
  PostgresOutboxStore,
  PostgresUnitOfWork,
} from '../../src/postgres/index.js'
import {
  describeInboxStoreConformance,
  describeOutboxStoreConformance,
} from '../../src/testing/index.js'
import { createPool, inTransaction, uniqueSchema } from '../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)

afterAll(async () => {
  await pool?.end()
})

/** A store in a fresh schema, dropped when the scenario ends. */
async function inFreshSchema<S extends { ensureSchema(): Promise<void> }>(
  make: (schema: string) => S,
) {
  const schema = uniqueSchema()
  const store = make(schema)
  await store.ensureSchema()
  return {
    store,
    transaction: <T>(work: (tx: SqlExecutor) => Promise<T>) => inTransaction(pool!, work),
    close: async () => void (await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
  }
}

const runner = { describe, it, beforeEach, afterEach }

/**
 * The consumer's own transactions: a `PostgresUnitOfWork` begun in a delivery, which sends its
 * BEGIN with the inbox record (one round trip, the values as literals).
 */
const NO_DELIVERY = { join: () => Promise.resolve(true) }
const inConsumerTransaction = <T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T> =>
  deliveryScope.run(NO_DELIVERY, async () => {
    const uow = await PostgresUnitOfWork.begin({ pool: pool!, repositories: () => ({}) })
    return uow.transaction((u) => work(u.tx))
  })

describe.skipIf(pool === undefined)('PostgreSQL', () => {
  describeOutboxStoreConformance(
    {
      name: 'PostgresOutboxStore',
      features: { concurrentClaimers: true, markAndClaim: true },
      create: () => inFreshSchema((schema) => new PostgresOutboxStore({ pool: pool!, schema })),
    },
    runner,
  )
  describeInboxStoreConformance(
    {
      name: 'PostgresInboxStore',
      features: { concurrentTransactions: true },
      create: () => inFreshSchema((schema) => new PostgresInboxStore({ pool: pool!, schema })),
    },
    runner,
  )
  describeInboxStoreConformance(
    {
      name: 'PostgresInboxStore, recorded with BEGIN by a PostgresUnitOfWork in a delivery',
      features: { concurrentTransactions: true },
      create: async () => ({
        ...(await inFreshSchema((schema) => new PostgresInboxStore({ pool: pool!, schema }))),
        transaction: inConsumerTransaction,
      }),
    },
    runner,
  )
})
