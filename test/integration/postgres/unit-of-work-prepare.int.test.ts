/**
 * A PostgresUnitOfWork runs the stores' named statements (an append, here) as pg named statements,
 * parsed and planned once per connection, as `fromPg` does; `prepare: false` sends them as text.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { uuidv7 } from '../../../src/index.js'
import { PostgresOutboxStore, PostgresUnitOfWork } from '../../../src/postgres/index.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null

describe.skipIf(url === null)('PostgresUnitOfWork and named statements', () => {
  // One connection, so the check below runs on the connection the unit of work used.
  const pool = url === null ? undefined : createPool(url, 1)
  afterAll(async () => {
    await pool?.end()
  })

  it.each([
    [undefined, 1],
    [false, 0],
  ] as const)('with prepare %s, the append is prepared on %i statement(s)', async (prepare, n) => {
    const schema = uniqueSchema()
    const store = new PostgresOutboxStore({ pool: pool!, schema, notify: false })
    await store.ensureSchema()
    try {
      await pool!.query('DEALLOCATE ALL')
      for (let i = 0; i < 3; i++) {
        const uow = await PostgresUnitOfWork.begin({
          pool: pool!,
          repositories: () => ({}),
          ...(prepare === undefined ? {} : { prepare }),
        })
        await store.append(uow.tx, [
          { id: uuidv7(), topic: 't', key: 'k', type: 'T', body: new Uint8Array([123, 125]) },
        ])
        await uow.commit()
      }
      const { rows } = await pool!.query<{ statement: string }>(
        `SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1`,
        [`%"${schema}"."outbox_ids"%`],
      )
      expect(rows).toHaveLength(n)
      const stored = await pool!.query(`SELECT key_seq FROM "${schema}".outbox ORDER BY seq`)
      expect(stored.rows.map((r: { key_seq: string }) => Number(r.key_seq))).toEqual([1, 2, 3])
    } finally {
      await pool!.query(`DROP SCHEMA "${schema}" CASCADE`)
    }
  })
})
