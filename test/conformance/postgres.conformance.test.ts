import { afterAll, afterEach, beforeEach, describe, inject, it } from 'vitest'
import { PostgresInboxStore, PostgresOutboxStore } from '../../src/postgres/index.js'
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

describe.skipIf(pool === undefined)('PostgreSQL', () => {
  describeOutboxStoreConformance(
    {
      name: 'PostgresOutboxStore',
      features: { concurrentClaimers: true },
      create: async () => {
        const schema = uniqueSchema()
        const store = new PostgresOutboxStore({ pool: pool!, schema })
        await store.ensureSchema()
        return {
          store,
          transaction: (work) => inTransaction(pool!, work),
          close: async () => {
            await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          },
        }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
  describeInboxStoreConformance(
    {
      name: 'PostgresInboxStore',
      features: { concurrentTransactions: true },
      create: async () => {
        const schema = uniqueSchema()
        const store = new PostgresInboxStore({ pool: pool!, schema })
        await store.ensureSchema()
        return {
          store,
          transaction: (work) => inTransaction(pool!, work),
          close: async () => {
            await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          },
        }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
})
