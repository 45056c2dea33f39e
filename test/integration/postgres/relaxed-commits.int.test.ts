/**
 * `relaxedCommits`: the relay's claims and marks turn `synchronous_commit` off for their own
 * transaction only. The pool's sessions (they are the user's) keep their setting, and
 * `relaxedCommits: false` leaves the statements alone.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { uuidv7 } from '../../../src/index.js'
import { fromPg, PostgresOutboxStore } from '../../../src/postgres/index.js'
import { createPool, uniqueSchema } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null

describe.skipIf(url === null)('PostgresOutboxStore relaxedCommits', () => {
  // One connection: what the store's statements leave behind is what the next user of it sees.
  const pool = url === null ? undefined : createPool(url, 1)
  afterAll(async () => {
    await pool?.end()
  })

  it.each([
    [undefined, true],
    [false, false],
  ] as const)(
    'relaxedCommits %s: relaxed statements %s, the session keeps its own setting',
    async (relaxedCommits, relaxed) => {
      const schema = uniqueSchema()
      const store = new PostgresOutboxStore({
        pool: pool!,
        schema,
        notify: false,
        ...(relaxedCommits === undefined ? {} : { relaxedCommits }),
      })
      await store.ensureSchema()
      try {
        await pool!.query('DEALLOCATE ALL')
        await pool!.query(`SET synchronous_commit = 'remote_write'`)
        const client = await pool!.connect()
        try {
          await client.query('BEGIN')
          const records = [1, 2, 3].map((n) => ({
            id: uuidv7(),
            topic: 't',
            key: `k${n % 2}`,
            type: 'T',
            body: new Uint8Array([n]),
          }))
          await store.append(fromPg(client), records)
          await client.query('COMMIT')
        } finally {
          client.release()
        }
        const first = await store.claim({ limit: 10, leaseMs: 30_000 })
        const next = await store.markAndClaim(first, { limit: 10, leaseMs: 30_000 })
        expect(next.accepted).toBe(2)
        expect(await store.markPublished(next.claimed)).toBe(1)
        const setting = await pool!.query<{ synchronous_commit: string }>('SHOW synchronous_commit')
        expect(setting.rows[0]!.synchronous_commit).toBe('remote_write')
        const { rows } = await pool!.query<{ statement: string }>(
          // The relay's statements (the append is the caller's, and never relaxed).
          `SELECT statement FROM pg_prepared_statements WHERE statement LIKE $1 AND statement LIKE '%lease_token%'`,
          [`%"${schema}"."outbox"%`],
        )
        expect(rows.length).toBeGreaterThanOrEqual(3) // claim, markAndClaim, markPublished
        for (const { statement } of rows)
          expect(statement.includes("set_config('synchronous_commit', 'off', true)")).toBe(relaxed)
      } finally {
        await pool!.query('RESET synchronous_commit')
        await pool!.query(`DROP SCHEMA "${schema}" CASCADE`)
      }
    },
  )
})
