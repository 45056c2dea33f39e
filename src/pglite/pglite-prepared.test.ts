import { PGlite } from '@electric-sql/pglite'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SqlExecutor } from '../index.js'
import { fromPglite } from './pglite-client.js'
import { preparedPglite } from './pglite-prepared.js'

/** Statements run with values as literals must read back exactly what parameters would. */
describe('preparedPglite', () => {
  let db: PGlite
  beforeAll(async () => {
    db = new PGlite()
    await db.query('CREATE TABLE t (id bigint, note text, tags text[], nums bigint[], data bytea)')
  })
  afterAll(() => db.close())

  const hostile = [
    "it's",
    'a\\b\\\\c',
    "x'); DROP TABLE t; --",
    '$$ -- /* */ ; "q" $1',
    'line\nnext\ttab\r',
    'ünïcode 😀 עברית',
    '{}, "NULL" NULL',
    '',
  ]
  const insert = 'INSERT INTO t (id, note, tags, nums, data) VALUES ($1, $2, $3, $4, $5)'
  const select =
    'SELECT id, note, tags, nums, data FROM t WHERE id = $1 AND note = $2 AND tags = $3::text[]'

  it.each(hostile.map((text, i) => [i, text] as const))(
    'round-trips text %i through a prepared statement exactly: %j',
    async (i, text) => {
      const sql = preparedPglite(db)
      const params = [
        i,
        text,
        [text, null, 'b"c\\d'],
        ['12', 34, null],
        new Uint8Array([0, 39, 92, 255]),
      ]
      await sql.query(insert, params, { name: 'switchyard_test_insert' })
      const { rows } = await sql.query<Record<string, unknown>>(
        select,
        [String(i), text, [text, null, 'b"c\\d']],
        { name: 'switchyard_test_select' },
      )
      expect(rows).toHaveLength(1)
      const row = rows[0]!
      expect(row.note).toBe(text)
      expect(row.tags).toEqual([text, null, 'b"c\\d'])
      expect(row.nums).toEqual([12, 34, null])
      expect([...(row.data as Uint8Array)]).toEqual([0, 39, 92, 255])
      const prepared = await db.query<{ name: string }>(
        `SELECT name FROM pg_prepared_statements WHERE name LIKE 'switchyard_test_%' ORDER BY name`,
      )
      expect(prepared.rows.map((r) => r.name)).toEqual([
        'switchyard_test_insert',
        'switchyard_test_select',
      ])
    },
  )

  it('prepares again after DEALLOCATE ALL, and shares a name another executor prepared', async () => {
    const a = preparedPglite(db)
    const b = preparedPglite(db)
    const count = 'SELECT count(*)::int AS n FROM t WHERE id >= $1'
    const n = async (sql: typeof a): Promise<unknown> =>
      (await sql.query<{ n: number }>(count, [0], { name: 'switchyard_test_count' })).rows[0]?.n
    expect(await n(a)).toBe(hostile.length)
    expect(await n(b)).toBe(hostile.length) // b's PREPARE finds the name taken: same text
    await db.query('DEALLOCATE ALL')
    expect(await n(a)).toBe(hostile.length)
  })

  it('runs text holding NUL as a plain query, so the error is the driver’s own', async () => {
    const sql = preparedPglite(db)
    await expect(
      sql.query('SELECT $1::text AS v', ['a\u0000b'], { name: 'switchyard_test_nul' }),
    ).rejects.toThrow(/0x00|null character|invalid byte sequence/i)
    const prepared = await db.query(
      `SELECT 1 FROM pg_prepared_statements WHERE name = 'switchyard_test_nul'`,
    )
    expect(prepared.rows).toHaveLength(0)
  })

  describe('within a transaction', () => {
    const insert = 'INSERT INTO t (id, note) VALUES ($1, $2)'
    const name = 'switchyard_test_within'

    /** The transaction's executor, recording the SQL it is sent. */
    const recording = (tx: SqlExecutor, sent: string[]): SqlExecutor => ({
      query: (sql, params, options) => {
        sent.push(sql)
        return tx.query(sql, params, options)
      },
    })

    it('runs plain until the statement is prepared after a transaction, then EXECUTE', async () => {
      const sql = preparedPglite(db)
      const sent: string[] = []
      const append = (id: number, rollback = false): Promise<void> =>
        db
          .transaction(async (tx) => {
            await sql
              .within(recording(fromPglite(tx), sent))
              .query(insert, [id, `n${id}`], { name })
            // Prepared only after the transaction, whichever way it ends.
            const inside = await tx.query(`SELECT 1 FROM pg_prepared_statements WHERE name = $1`, [
              name,
            ])
            if (sent.length === 1) expect(inside.rows).toHaveLength(0)
            if (rollback) await tx.rollback()
          })
          .then(() => undefined)
      await append(100, true)
      await append(101)
      await append(102)
      expect(sent).toEqual([
        insert,
        `EXECUTE ${name}(101, E'n101')`,
        `EXECUTE ${name}(102, E'n102')`,
      ])
      const { rows } = await db.query<{ id: number }>(
        'SELECT id::int FROM t WHERE id >= 100 ORDER BY id',
      )
      expect(rows.map((r) => r.id)).toEqual([101, 102])
    })

    it('fails the one append whose statement went missing, then runs plain', async () => {
      const sql = preparedPglite(db)
      const sent: string[] = []
      const append = (id: number): Promise<unknown> =>
        db.transaction((tx) =>
          sql.within(recording(fromPglite(tx), sent)).query(insert, [id, 'x'], { name }),
        )
      await append(200)
      await db.query('SELECT 1') // the queued PREPARE has run
      await db.query('DEALLOCATE ALL')
      await expect(append(201)).rejects.toMatchObject({ code: '26000' })
      await append(202)
      await db.query('SELECT 1')
      await append(203)
      expect(sent.slice(1)).toEqual([`EXECUTE ${name}(201, E'x')`, insert, insert])
      const { rows } = await db.query<{ id: number }>(
        'SELECT id::int FROM t WHERE id >= 200 ORDER BY id',
      )
      expect(rows.map((r) => r.id)).toEqual([200, 202, 203])
    })
  })
})
