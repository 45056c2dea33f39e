/** A pg pool per test file, and a unique schema per test (dropped afterwards). */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import { fromPg } from '../../src/postgres/index.js'
import type { SqlExecutor } from '../../src/index.js'

export function uniqueSchema(prefix = 'sy'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`
}

export function createPool(url: string, max = 10): pg.Pool {
  return new pg.Pool({ connectionString: url, max })
}

/** Runs `work` with a pool of its own (`max` connections), ended afterwards. */
export async function withPool<T>(
  url: string,
  max: number,
  work: (pool: pg.Pool) => Promise<T>,
): Promise<T> {
  const pool = createPool(url, max)
  try {
    return await work(pool)
  } finally {
    await pool.end()
  }
}

/** Runs `work` in a transaction on its own pooled connection. */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (tx: SqlExecutor) => Promise<T>,
): Promise<T> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    const result = await work(fromPg(client))
    await client.query('COMMIT')
    return result
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  } finally {
    client.release()
  }
}
