import { PGlite } from '@electric-sql/pglite'
import { afterAll, afterEach, beforeEach, describe, it } from 'vitest'
import type { SqlExecutor } from '../../src/index.js'
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

/** A store in a fresh schema, dropped when the scenario ends. */
async function inFreshSchema<S extends { ensureSchema(): Promise<void> }>(
  make: (schema: string) => S,
) {
  const schema = uniqueSchema()
  const store = make(schema)
  await store.ensureSchema()
  return {
    store,
    transaction: <T>(work: (tx: SqlExecutor) => Promise<T>) =>
      db.transaction((tx) => work(fromPglite(tx))),
    close: async () => void (await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)),
  }
}

const runner = { describe, it, beforeEach, afterEach }

describe('PGlite', () => {
  describeOutboxStoreConformance(
    {
      name: 'PgliteOutboxStore',
      features: { concurrentClaimers: false, markAndClaim: true },
      skip: [
        {
          test: 'due times come from the database clock, not the caller',
          reason:
            'PGlite runs in this process (WASM): its now() reads the same Date.now(), so the database clock is the caller clock',
        },
      ],
      create: () => inFreshSchema((schema) => new PgliteOutboxStore({ db, schema })),
    },
    runner,
  )
  describeInboxStoreConformance(
    {
      name: 'PgliteInboxStore',
      features: { concurrentTransactions: false },
      create: () => inFreshSchema((schema) => new PgliteInboxStore({ db, schema })),
    },
    runner,
  )
})
