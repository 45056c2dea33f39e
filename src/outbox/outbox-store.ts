/**
 * The outbox store port.
 *
 * Contract:
 * - `append(tx, records)` writes inside the caller's open transaction (through its executor): the
 *   rows exist if and only if that transaction commits. Records with a `key` get a gapless per-key
 *   sequence number in commit order (a counter row locked until commit).
 * - `claim` takes due rows under a lease measured in database time, and returns each with a fencing
 *   `token`. A keyed row is claimable only when no earlier row of its key is pending, in flight, or
 *   (under the default `deadLetters: 'block'` policy) dead: a key is published strictly in order.
 *   Several claimers at once never get the same row (`FOR UPDATE SKIP LOCKED` where available).
 * - Every mark is a compare-and-set on the token: a claimer whose lease expired and whose rows were
 *   claimed again cannot change them (`markPublished` counts only accepted rows; `markFailed`
 *   answers `'stale'`).
 * - Due times and leases come from the database clock, never the caller's.
 */
import type { SqlExecutor } from '../sql/sql-executor.js'

/** A message to append. */
export interface OutboxAppend {
  /** The message id; a duplicate of it is the same message. */
  readonly id: string
  readonly topic: string
  /** Ordering key: records of one key are published in commit order. */
  readonly key?: string | undefined
  readonly type: string
  /** The encoded envelope. */
  readonly body: Uint8Array
  readonly headers?: Readonly<Record<string, string>>
}

/** A claimed row. */
export interface ClaimedRecord {
  readonly id: string
  readonly topic: string
  readonly key: string | undefined
  readonly keySeq: number | undefined
  readonly type: string
  readonly body: Uint8Array
  readonly headers: Readonly<Record<string, string>>
  /** Attempts so far, this one included. */
  readonly attempts: number
  /**
   * The fencing token of this claim: opaque, pass it back as it is (a store may put in it what
   * it needs to find the row). A token the store never handed out matches no row.
   */
  readonly token: string
}

/** A claim to mark. */
export interface ClaimRef {
  readonly id: string
  readonly token: string
}

/** Options of `claim`. */
export interface ClaimOptions {
  /** Most rows to take. */
  readonly limit: number
  /** How long the claim holds, in ms of database time. */
  readonly leaseMs: number
  /** Who claims (for `status` and debugging). */
  readonly owner?: string
}

/** Options of `markFailed`. */
export interface FailureOptions {
  /** Wait before the next attempt, in ms of database time. */
  readonly retryInMs: number
  /** Attempts after which the row is dead. */
  readonly maxAttempts: number
}

/** What became of a failed row. */
export type FailureOutcome = 'retry' | 'dead' | 'stale'

/** The five operations a relay needs. */
export interface OutboxStore {
  /** Creates the schema, tables and indexes if missing. Idempotent, safe to run concurrently. */
  ensureSchema(): Promise<void>
  append(tx: SqlExecutor, records: readonly OutboxAppend[]): Promise<void>
  claim(options: ClaimOptions): Promise<ClaimedRecord[]>
  /** Marks claimed rows published; returns how many the fence accepted. Idempotent. */
  markPublished(claims: readonly ClaimRef[]): Promise<number>
  markFailed(claim: ClaimRef, error: string, options: FailureOptions): Promise<FailureOutcome>
}

/** What `markAndClaim` did. */
export interface MarkAndClaimResult {
  /** How many of the rows to mark the fence accepted, as `markPublished` answers. */
  readonly accepted: number
  readonly claimed: ClaimedRecord[]
}

/**
 * Optional: one round trip per batch instead of two. A store that has it marks the rows of the
 * previous batch published and claims the next batch in one statement (one transaction); the claim
 * treats the rows it just marked as published, so their keys' next rows are claimable at once.
 */
export interface MarkAndClaim {
  markAndClaim(published: readonly ClaimRef[], options: ClaimOptions): Promise<MarkAndClaimResult>
}

/** Counts for monitoring. */
export interface OutboxStatus {
  readonly pending: number
  readonly inflight: number
  readonly dead: number
  readonly published: number
  /** Age of the oldest unpublished row, ms (0 when none). */
  readonly oldestPendingMs: number
}

/** Operations for maintenance and the CLI. */
export interface OutboxMaintenance {
  /** Deletes published rows older than `olderThanMs`, `batchSize` at a time; returns how many. */
  cleanup(olderThanMs: number, batchSize?: number): Promise<number>
  /** Makes dead rows pending again with their attempts reset; returns how many. */
  retry(ids: readonly string[]): Promise<number>
  /** Gives up on dead rows without publishing them, unblocking their keys; returns how many. */
  skip(ids: readonly string[]): Promise<number>
  /** Puts claimed rows back without counting the attempt (graceful stop). */
  release(claims: readonly ClaimRef[]): Promise<number>
  status(): Promise<OutboxStatus>
}
