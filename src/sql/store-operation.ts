/**
 * @internal Runs one store operation and turns a driver's error into an `OutboxStoreError` that
 * names the store, the operation and the table (the driver's error stays the `cause`). Errors that
 * are already Switchyard's pass through unchanged, so nothing is wrapped twice.
 */
import { ErrorCode, isSwitchyardError, OutboxStoreError, SerializationError } from '../errors.js'
import type { OutboxAppend, OutboxStatus } from '../outbox/outbox-store.js'

export async function storeOperation<T>(
  store: 'Outbox' | 'Inbox',
  table: string,
  operation: string,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work()
  } catch (error) {
    if (isSwitchyardError(error)) throw error
    if (operation === 'append' && isUniqueViolation(error))
      // The counter rows are upserts, so the only unique key an append can hit is the message id.
      throw new OutboxStoreError(
        `${store} append failed on ${table}: a message with the same id is already stored`,
        {
          cause: error,
          code: ErrorCode.DuplicateMessageId,
          retryable: false,
          details: { operation, table },
        },
      )
    throw new OutboxStoreError(
      `${store} ${operation} failed on ${table}: ${(error as Error).message}`,
      {
        cause: error,
        details: { operation, table },
        code: ErrorCode.OutboxStore,
      },
    )
  }
}

/** PostgreSQL's SQLSTATE 23505, MySQL/MariaDB's ER_DUP_ENTRY (1062). */
function isUniqueViolation(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false
  const { code, errno } = error as { code?: unknown; errno?: unknown }
  return code === '23505' || errno === 1062
}

/** The row every SQL store's status query returns (counts may come back as strings or null). */
export type StatusRow = Partial<
  Record<'pending' | 'inflight' | 'dead' | 'published' | 'oldest', string | number | null>
>

/** @internal Turns a status row into `OutboxStatus`; the age is whole ms, never negative. */
export function statusFromRow(row: StatusRow | undefined): OutboxStatus {
  const r = row ?? {}
  return {
    pending: Number(r.pending ?? 0),
    inflight: Number(r.inflight ?? 0),
    dead: Number(r.dead ?? 0),
    published: Number(r.published ?? 0),
    oldestPendingMs: Math.max(0, Math.round(Number(r.oldest ?? 0))),
  }
}

/** The default largest body an outbox accepts: the same as `decodeEnvelope`'s default limit, so
 * anything the outbox takes, a consumer with default limits can read. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024

/**
 * @internal Refuses, at write time, records that could never be delivered, so they fail the
 * producer's transaction instead of becoming stuck rows: a body over `maxBytes`
 * (`SWITCHYARD_MESSAGE_TOO_LARGE`), or the same id twice in one append.
 */
export function checkAppend(records: readonly OutboxAppend[], maxBytes: number): void {
  const ids = new Set<string>()
  for (const record of records) {
    const bytes = record.body.byteLength
    if (bytes > maxBytes)
      throw new SerializationError(
        ErrorCode.MessageTooLarge,
        `The message ${record.id} (${record.type}) has ${bytes} bytes; the outbox takes at most ${maxBytes}`,
        { details: { messageId: record.id, type: record.type, bytes, maxBytes } },
      )
    if (ids.has(record.id))
      throw new OutboxStoreError(`The message id ${record.id} appears twice in one append`, {
        code: ErrorCode.DuplicateMessageId,
        retryable: false,
        details: { messageId: record.id },
      })
    ids.add(record.id)
  }
}
