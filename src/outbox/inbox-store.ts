/**
 * The inbox store port: how a consumer applies each message exactly once in effect.
 *
 * Contract: `tryRecord(tx, consumer, messageId)` runs inside the consumer's transaction (the one
 * that holds the handler's effects). It answers true the first time a (consumer, message id) pair
 * is recorded and false after that; a rollback forgets the record; when duplicates race in
 * concurrent transactions, exactly one gets true (the others wait for it: false if it commits,
 * true for one of them if it rolls back). Records are per consumer. Exactly-once holds as long as
 * the records are kept: `cleanup` must not remove them sooner than any redelivery or replay.
 */
import type { SqlExecutor } from '../sql/sql-executor.js'

export interface InboxStore {
  /** Creates the table if missing. Idempotent, safe to run concurrently. */
  ensureSchema(): Promise<void>
  tryRecord(tx: SqlExecutor, consumer: string, messageId: string): Promise<boolean>
  /** Deletes records older than `olderThanMs`, `batchSize` at a time; returns how many. */
  cleanup(olderThanMs: number, batchSize?: number): Promise<number>
}
