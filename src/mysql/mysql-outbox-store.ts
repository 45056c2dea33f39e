/**
 * The transactional outbox on MariaDB ≥ 10.6 and MySQL 8 through `mysql2`. Same guarantees as
 * the PostgreSQL store (see outbox-store.ts); what differs:
 *
 * - Claims run in a short READ COMMITTED transaction on one pooled connection:
 *   `SELECT … FOR UPDATE SKIP LOCKED` with the head-of-line condition, then `UPDATE` by primary key
 *   (no `UPDATE … RETURNING` here). READ COMMITTED avoids the gap locks REPEATABLE READ would take.
 * - The per-key counter uses `INSERT … ON DUPLICATE KEY UPDATE`, keys in sorted order.
 * - No LISTEN/NOTIFY: relays poll.
 * - SKIP LOCKED is unsafe for statement-based binary logging: use `binlog_format=ROW` (or MIXED).
 */
import { randomUUID } from 'node:crypto'
import {
  type ClaimedRecord,
  type ClaimOptions,
  type ClaimRef,
  type FailureOptions,
  type FailureOutcome,
  type InboxStore,
  type OutboxAppend,
  type OutboxMaintenance,
  type OutboxStatus,
  type OutboxStore,
  OutboxStoreError,
  type SqlExecutor,
} from '../index.js'
import {
  checkAppend,
  DEFAULT_MAX_MESSAGE_BYTES,
  statusFromRow,
  storeOperation,
} from '../sql/store-operation.js'
import { toBuffer } from '../core/bytes.js'
import { fromMysql2, type MysqlPool, type MysqlPoolConnection } from './mysql-client.js'
import {
  mysqlInboxSchemaSql,
  mysqlName,
  type MysqlNames,
  mysqlOutboxSchemaSql,
} from './mysql-schema.js'

/** Options of {@link MysqlOutboxStore}. */
export interface MysqlOutboxStoreOptions extends MysqlNames {
  /** Your mysql2/promise Pool. */
  readonly pool: MysqlPool
  /** What a dead row does to its key: `'block'` (default) or `'release'`. */
  readonly deadLetters?: 'block' | 'release'
  /**
   * Largest body `append` accepts, in bytes; a larger one fails the append (and so the producer's
   * transaction) with `SWITCHYARD_MESSAGE_TOO_LARGE`. Default 1 MiB, `decodeEnvelope`'s default.
   */
  readonly maxMessageBytes?: number
}

interface Row {
  seq: number | string
  id: Buffer | string
  topic: string
  msg_key: Buffer | string | null
  key_seq: number | string | null
  type: string
  body: Buffer
  headers: string
  attempts: number
}

const MICROS = 1000

/** Runs DDL on one connection under a named lock, so concurrent callers do not race. */
async function ensure(
  pool: MysqlPool,
  lockName: string,
  statements: readonly string[],
): Promise<void> {
  const connection = await pool.getConnection()
  try {
    await connection.query('SELECT GET_LOCK(?, 30)', [lockName])
    try {
      for (const statement of statements) await connection.query(statement)
    } finally {
      await connection.query('SELECT RELEASE_LOCK(?)', [lockName])
    }
  } finally {
    connection.release()
  }
}

export class MysqlOutboxStore implements OutboxStore, OutboxMaintenance {
  readonly #pool: MysqlPool
  readonly #maxMessageBytes: number
  readonly #db: SqlExecutor
  readonly #names: MysqlNames
  readonly #table: string
  readonly #keys: string
  readonly #blocking: string

  constructor(options: MysqlOutboxStoreOptions) {
    this.#pool = options.pool
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES
    this.#db = fromMysql2(options.pool)
    this.#names = options
    this.#table = mysqlName(options, 'outbox')
    this.#keys = mysqlName(options, 'outbox', '_keys')
    this.#blocking =
      options.deadLetters === 'release'
        ? `('pending', 'inflight')`
        : `('pending', 'inflight', 'dead')`
  }

  async ensureSchema(): Promise<void> {
    await storeOperation('Outbox', this.#table, 'ensureSchema', () =>
      ensure(this.#pool, `switchyard:${this.#table}`, mysqlOutboxSchemaSql(this.#names)),
    )
  }

  async append(tx: SqlExecutor, records: readonly OutboxAppend[]): Promise<void> {
    if (records.length === 0) return
    checkAppend(records, this.#maxMessageBytes)
    await storeOperation('Outbox', this.#table, 'append', async () => {
      const counts = new Map<string, number>()
      for (const r of records)
        if (r.key !== undefined) counts.set(r.key, (counts.get(r.key) ?? 0) + 1)
      const keys = [...counts.keys()].sort()
      const next = new Map<string, number>()
      if (keys.length > 0) {
        await tx.query(
          `INSERT INTO ${this.#keys} (msg_key, last_seq) VALUES ${keys.map(() => '(?, ?)').join(', ')}
           ON DUPLICATE KEY UPDATE last_seq = last_seq + VALUES(last_seq)`,
          keys.flatMap((k) => [k, counts.get(k)]),
        )
        const { rows } = await tx.query<{ msg_key: Buffer | string; last_seq: number | string }>(
          `SELECT msg_key, last_seq FROM ${this.#keys} WHERE msg_key IN (${keys.map(() => '?').join(', ')})`,
          keys,
        )
        for (const row of rows) {
          const key = text(row.msg_key)
          next.set(key, Number(row.last_seq) - counts.get(key)! + 1)
        }
        if (next.size !== keys.length)
          throw new OutboxStoreError(
            `Outbox append on ${this.#table} could not read back the sequence of every key`,
            { retryable: false, details: { keys: keys.length, read: next.size } },
          )
      }
      const values = records.map((r) => {
        let keySeq: number | null = null
        if (r.key !== undefined) {
          keySeq = next.get(r.key)!
          next.set(r.key, keySeq + 1)
        }
        return [
          r.id,
          r.topic,
          r.key ?? null,
          keySeq,
          r.type,
          toBuffer(r.body),
          JSON.stringify(r.headers ?? {}),
        ]
      })
      await tx.query(
        `INSERT INTO ${this.#table} (id, topic, msg_key, key_seq, type, body, headers, available_at, created_at) VALUES ${values.map(() => '(?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))').join(', ')}`,
        values.flat(),
      )
    })
  }

  async claim(options: ClaimOptions): Promise<ClaimedRecord[]> {
    return storeOperation('Outbox', this.#table, 'claim', async () => {
      const connection = await this.#pool.getConnection()
      let rows: Row[] = []
      const token = randomUUID()
      try {
        await connection.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED')
        await connection.beginTransaction()
        // Two ordered scans, each able to use the (state, seq) index without a filesort: a filesort
        // would read and lock every candidate row, so concurrent claimers would skip rows nobody takes.
        rows = await this.#select(
          connection,
          `o.state = 'inflight' AND o.lease_until <= UTC_TIMESTAMP(6)`,
          options.limit,
        )
        if (rows.length < options.limit) {
          rows.push(
            ...(await this.#select(
              connection,
              `o.state = 'pending' AND o.available_at <= UTC_TIMESTAMP(6)`,
              options.limit - rows.length,
            )),
          )
        }
        if (rows.length > 0) {
          await connection.query(
            `UPDATE ${this.#table}
             SET state = 'inflight', attempts = attempts + 1, lease_owner = ?, lease_token = ?,
                 lease_until = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND
             WHERE seq IN (${rows.map(() => '?').join(', ')})`,
            [
              options.owner ?? null,
              token,
              Math.round(options.leaseMs * MICROS),
              ...rows.map((r) => r.seq),
            ],
          )
        }
        await connection.commit()
      } catch (error) {
        await rollbackOrDestroy(connection)
        throw error
      }
      connection.release()
      rows.sort((x, y) => Number(x.seq) - Number(y.seq))
      return rows.map((r) => ({
        id: text(r.id),
        topic: r.topic,
        key: r.msg_key === null ? undefined : text(r.msg_key),
        keySeq: r.key_seq === null ? undefined : Number(r.key_seq),
        type: r.type,
        body: r.body,
        headers: JSON.parse(r.headers) as Record<string, string>,
        attempts: r.attempts + 1,
        token,
      }))
    })
  }

  async #select(connection: MysqlPoolConnection, due: string, limit: number): Promise<Row[]> {
    const [rows] = await connection.query(
      `SELECT o.seq, o.id, o.topic, o.msg_key, o.key_seq, o.type, o.body, o.headers, o.attempts
       FROM ${this.#table} o FORCE INDEX (ix_state_seq)
       WHERE ${due}
         AND (o.msg_key IS NULL OR NOT EXISTS (
           SELECT 1 FROM ${this.#table} e
           WHERE e.msg_key = o.msg_key AND e.key_seq < o.key_seq AND e.state IN ${this.#blocking}))
       ORDER BY o.seq
       LIMIT ?
       FOR UPDATE SKIP LOCKED`,
      [limit],
    )
    return rows as Row[]
  }

  async markPublished(claims: readonly ClaimRef[]): Promise<number> {
    return this.#fenced(
      'markPublished',
      `state = 'published', published_at = UTC_TIMESTAMP(6), lease_token = NULL, lease_until = NULL, last_error = NULL`,
      claims,
    )
  }

  async markFailed(
    claim: ClaimRef,
    error: string,
    options: FailureOptions,
  ): Promise<FailureOutcome> {
    return storeOperation('Outbox', this.#table, 'markFailed', async () => {
      const { rowCount } = await this.#db.query(
        `UPDATE ${this.#table}
         SET state = IF(attempts >= ?, 'dead', 'pending'), available_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND,
             last_error = ?, lease_token = NULL, lease_until = NULL
         WHERE id = ? AND lease_token = ? AND state = 'inflight'`,
        [
          options.maxAttempts,
          Math.round(options.retryInMs * MICROS),
          error.slice(0, 4000),
          claim.id,
          claim.token,
        ],
      )
      if (rowCount === 0) return 'stale'
      const { rows } = await this.#db.query<{ state: string }>(
        `SELECT state FROM ${this.#table} WHERE id = ?`,
        [claim.id],
      )
      return rows[0]?.state === 'dead' ? 'dead' : 'retry'
    })
  }

  async release(claims: readonly ClaimRef[]): Promise<number> {
    return this.#fenced(
      'release',
      `state = 'pending', attempts = GREATEST(attempts - 1, 0), lease_token = NULL, lease_until = NULL`,
      claims,
    )
  }

  /**
   * A compare-and-set on the claims' tokens. The rows are looked up through the id index (FORCE
   * INDEX): on a small table MariaDB otherwise scans the primary key and, under REPEATABLE READ,
   * waits on the uncommitted rows of every open producer transaction, whatever their key.
   */
  async #fenced(operation: string, set: string, claims: readonly ClaimRef[]): Promise<number> {
    if (claims.length === 0) return 0
    const { rowCount } = await storeOperation('Outbox', this.#table, operation, () =>
      this.#db.query(
        `UPDATE ${this.#table} FORCE INDEX (uq_id) SET ${set}
         WHERE id IN (${claims.map(() => '?').join(', ')}) AND state = 'inflight'
           AND (id, lease_token) IN (${claims.map(() => '(?, ?)').join(', ')})`,
        [...claims.map((c) => c.id), ...claims.flatMap((c) => [c.id, c.token])],
      ),
    )
    return rowCount
  }

  async cleanup(olderThanMs: number, batchSize = 1000): Promise<number> {
    return storeOperation('Outbox', this.#table, 'cleanup', async () => {
      let total = 0
      for (;;) {
        const { rowCount } = await this.#db.query(
          `DELETE FROM ${this.#table} WHERE state = 'published' AND published_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND ORDER BY seq LIMIT ?`,
          [Math.round(olderThanMs * MICROS), batchSize],
        )
        total += rowCount
        if (rowCount < batchSize) return total
      }
    })
  }

  async retry(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0
    const { rowCount } = await storeOperation('Outbox', this.#table, 'retry', () =>
      this.#db.query(
        `UPDATE ${this.#table} SET state = 'pending', attempts = 0, available_at = UTC_TIMESTAMP(6) WHERE state = 'dead' AND id IN (${ids.map(() => '?').join(', ')})`,
        ids,
      ),
    )
    return rowCount
  }

  async skip(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0
    const { rowCount } = await storeOperation('Outbox', this.#table, 'skip', () =>
      this.#db.query(
        `UPDATE ${this.#table} SET state = 'skipped' WHERE state = 'dead' AND id IN (${ids.map(() => '?').join(', ')})`,
        ids,
      ),
    )
    return rowCount
  }

  async status(): Promise<OutboxStatus> {
    const { rows } = await storeOperation('Outbox', this.#table, 'status', () =>
      this.#db.query<Record<string, string | number | null>>(
        `SELECT SUM(state = 'pending') AS pending, SUM(state = 'inflight') AS inflight, SUM(state = 'dead') AS dead,
                SUM(state = 'published') AS published,
                TIMESTAMPDIFF(MICROSECOND, MIN(CASE WHEN state IN ('pending', 'inflight') THEN created_at END), UTC_TIMESTAMP(6)) / 1000 AS oldest
         FROM ${this.#table}`,
      ),
    )
    return statusFromRow(rows[0])
  }
}

async function rollbackOrDestroy(connection: MysqlPoolConnection): Promise<void> {
  try {
    await connection.rollback()
    connection.release()
  } catch {
    connection.destroy()
  }
}

/** Options of {@link MysqlInboxStore}. */
export interface MysqlInboxStoreOptions extends MysqlNames {
  readonly pool: MysqlPool
}

/** The inbox on MariaDB / MySQL. Record inside the consumer's transaction. */
export class MysqlInboxStore implements InboxStore {
  readonly #pool: MysqlPool
  readonly #names: MysqlNames
  readonly #table: string

  constructor(options: MysqlInboxStoreOptions) {
    this.#pool = options.pool
    this.#names = options
    this.#table = mysqlName(options, 'inbox')
  }

  async ensureSchema(): Promise<void> {
    await storeOperation('Inbox', this.#table, 'ensureSchema', () =>
      ensure(this.#pool, `switchyard:${this.#table}`, mysqlInboxSchemaSql(this.#names)),
    )
  }

  async tryRecord(tx: SqlExecutor, consumer: string, messageId: string): Promise<boolean> {
    if (consumer.length > 255 || messageId.length > 255) {
      throw new OutboxStoreError('Inbox consumer and message id are limited to 255 characters', {
        retryable: false,
        details: { consumer: consumer.slice(0, 40) },
      })
    }
    // A plain INSERT: the duplicate key (ER_DUP_ENTRY) means "already recorded", and InnoDB rolls
    // back only that statement. INSERT IGNORE would also hide conversion warnings.
    return storeOperation('Inbox', this.#table, 'tryRecord', async () => {
      try {
        await tx.query(
          `INSERT INTO ${this.#table} (consumer, message_id, recorded_at) VALUES (?, ?, UTC_TIMESTAMP(6))`,
          [consumer, messageId],
        )
        return true
      } catch (error) {
        if ((error as { errno?: unknown }).errno === 1062) return false
        throw error
      }
    })
  }

  async cleanup(olderThanMs: number, batchSize = 1000): Promise<number> {
    return storeOperation('Inbox', this.#table, 'cleanup', async () => {
      let total = 0
      for (;;) {
        const { rowCount } = await fromMysql2(this.#pool).query(
          `DELETE FROM ${this.#table} WHERE recorded_at < UTC_TIMESTAMP(6) - INTERVAL ? MICROSECOND LIMIT ?`,
          [Math.round(olderThanMs * MICROS), batchSize],
        )
        total += rowCount
        if (rowCount < batchSize) return total
      }
    })
  }
}

/** VARBINARY columns come back as Buffers: the UTF-8 text they hold. */
function text(value: Buffer | string): string {
  return typeof value === 'string' ? value : value.toString('utf8')
}
