import { afterAll, afterEach, beforeEach, describe, inject, it } from 'vitest'
import { MysqlInboxStore, MysqlOutboxStore } from '../../src/mysql/index.js'
import {
  describeInboxStoreConformance,
  describeOutboxStoreConformance,
} from '../../src/testing/index.js'
import { createMysqlPool, inMysqlTransaction } from '../helpers/mysql.js'
import { uniqueSchema } from '../helpers/postgres.js'

const url = inject('services').mysql ?? null
const pool = url === null ? undefined : createMysqlPool(url)
afterAll(async () => {
  await pool?.end()
})

async function database(): Promise<{ name: string; drop: () => Promise<void> }> {
  const name = uniqueSchema()
  await pool!.query(`CREATE DATABASE \`${name}\``)
  return { name, drop: async () => void (await pool!.query(`DROP DATABASE IF EXISTS \`${name}\``)) }
}

describe.skipIf(pool === undefined)('MariaDB', () => {
  describeOutboxStoreConformance(
    {
      name: 'MysqlOutboxStore',
      features: { concurrentClaimers: true },
      create: async () => {
        const db = await database()
        const store = new MysqlOutboxStore({ pool: pool!, database: db.name })
        await store.ensureSchema()
        return { store, transaction: (work) => inMysqlTransaction(pool!, work), close: db.drop }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
  describeInboxStoreConformance(
    {
      name: 'MysqlInboxStore',
      features: { concurrentTransactions: true },
      create: async () => {
        const db = await database()
        const store = new MysqlInboxStore({ pool: pool!, database: db.name })
        await store.ensureSchema()
        return { store, transaction: (work) => inMysqlTransaction(pool!, work), close: db.drop }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
})
