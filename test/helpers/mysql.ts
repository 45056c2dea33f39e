/** A mysql2 pool per test file, and a unique database per test (dropped afterwards). */
import mysql from 'mysql2/promise'
import { fromMysql2 } from '../../src/mysql/index.js'
import type { SqlExecutor } from '../../src/index.js'

export function createMysqlPool(url: string): mysql.Pool {
  return mysql.createPool({ uri: url, connectionLimit: 10, supportBigNumbers: true })
}

/** Runs `work` in a transaction on its own pooled connection. */
export async function inMysqlTransaction<T>(
  pool: mysql.Pool,
  work: (tx: SqlExecutor) => Promise<T>,
): Promise<T> {
  const connection = await pool.getConnection()
  try {
    await connection.beginTransaction()
    const result = await work(fromMysql2(connection))
    await connection.commit()
    return result
  } catch (error) {
    await connection.rollback().catch(() => undefined)
    throw error
  } finally {
    connection.release()
  }
}
