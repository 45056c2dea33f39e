import { describe, expect, it } from 'vitest'
import { ConcurrencyError, ErrorCode, isSwitchyardError } from '../index.js'
import { storeOperation } from './store-operation.js'

describe('storeOperation', () => {
  it('wraps a driver error in a retryable OutboxStoreError naming store, operation and table', async () => {
    const driverError = Object.assign(new Error('connection terminated'), { code: '57P01' })
    const failure = await storeOperation('Inbox', '"s"."inbox"', 'tryRecord', () =>
      Promise.reject(driverError),
    ).catch((e: unknown) => e)
    expect(isSwitchyardError(failure, ErrorCode.OutboxStore)).toBe(true)
    expect((failure as Error).message).toBe(
      'Inbox tryRecord failed on "s"."inbox": connection terminated',
    )
    expect((failure as Error).cause).toBe(driverError)
    expect((failure as { retryable: boolean }).retryable).toBe(true)
  })

  it('lets a Switchyard error through unchanged, never wrapped twice', async () => {
    const conflict = new ConcurrencyError('moved')
    await expect(
      storeOperation('Outbox', 't', 'append', () => Promise.reject(conflict)),
    ).rejects.toBe(conflict)
  })
})
