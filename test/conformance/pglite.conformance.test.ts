import { PGlite } from '@electric-sql/pglite'
import { afterAll, afterEach, beforeEach, describe, it } from 'vitest'
import { fromPglite, PgliteInboxStore, PgliteOutboxStore } from '../../src/pglite/index.js'
import {
  describeInboxStoreConformance,
  describeOutboxStoreConformance,
} from '../../src/testing/index.js'
import { uniqueSchema } from '../helpers/postgres.js'

// One embedded database for the file (starting PGlite takes a while); a schema per test.
const db = new PGlite()
afterAll(async () => {
  await db.close()
})

describe('PGlite', () => {
  describeOutboxStoreConformance(
    {
      name: 'PgliteOutboxStore',
      features: { concurrentClaimers: false },
      skip: [
        {
          test: 'due times come from the database clock, not the caller',
          reason:
            'PGlite runs in this process (WASM): its now() reads the same Date.now(), so the database clock is the caller clock',
        },
      ],
      create: async () => {
        const schema = uniqueSchema()
        const store = new PgliteOutboxStore({ db, schema })
        await store.ensureSchema()
        return {
          store,
          transaction: (work) => db.transaction((tx) => work(fromPglite(tx))),
          close: async () => {
            await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          },
        }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
  describeInboxStoreConformance(
    {
      name: 'PgliteInboxStore',
      features: { concurrentTransactions: false },
      create: async () => {
        const schema = uniqueSchema()
        const store = new PgliteInboxStore({ db, schema })
        await store.ensureSchema()
        return {
          store,
          transaction: (work) => db.transaction((tx) => work(fromPglite(tx))),
          close: async () => {
            await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
          },
        }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
})
