/**
 * @internal Runs one store operation and turns a driver's error into an `OutboxStoreError` that
 * names the store, the operation and the table (the driver's error stays the `cause`). Errors that
 * are already Switchyard's pass through unchanged, so nothing is wrapped twice.
 */
import { ErrorCode, isSwitchyardError, OutboxStoreError } from '../errors.js'

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
