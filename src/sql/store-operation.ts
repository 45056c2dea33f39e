/**
 * @internal Runs one store operation and turns a driver's error into an `OutboxStoreError` that
 * names the store, the operation and the table (the driver's error stays the `cause`). Errors that
 * are already Switchyard's pass through unchanged, so nothing is wrapped twice.
 */
import { ErrorCode, isSwitchyardError, OutboxStoreError } from '../errors.js'
import type { OutboxStatus } from '../outbox/outbox-store.js'

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
