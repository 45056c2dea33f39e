import { afterAll, describe, expect, inject, it } from 'vitest'
import { PostgresInboxStore, PostgresOutboxStore } from '../../../src/postgres/index.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
})

describe.skipIf(pool === undefined)('ensureSchema on PostgreSQL', () => {
  it('lets the outbox and the inbox create one new schema at the same time', async () => {
    const schemas: string[] = []
    try {
      for (let i = 0; i < 10; i++) {
        const schema = uniqueSchema()
        schemas.push(schema)
        const outbox = new PostgresOutboxStore({ pool: pool!, schema })
        const inbox = new PostgresInboxStore({ pool: pool!, schema })
        await expect(
          Promise.all([outbox.ensureSchema(), inbox.ensureSchema(), outbox.ensureSchema()]),
        ).resolves.toBeDefined()
      }
    } finally {
      for (const schema of schemas) await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
    }
  })
})
