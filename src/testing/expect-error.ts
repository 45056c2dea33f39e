/**
 * Error assertions by `code`, not `instanceof` (so they work across package copies), written with
 * `node:assert` so they work under any test runner.
 */
import assert from 'node:assert/strict'
import { type ErrorCode, isSwitchyardError, type SwitchyardError } from '../index.js'

/**
 * Asserts that `action` (a promise, or a function returning a value or a promise) fails with a
 * Switchyard error of the given code, and returns that error for further checks.
 *
 * @example
 * const error = await expectSwitchyardError(bus.execute(Unknown()), 'SWITCHYARD_NO_HANDLER')
 */
export async function expectSwitchyardError(
  action: Promise<unknown> | (() => unknown),
  code: ErrorCode,
): Promise<SwitchyardError> {
  let failure: unknown
  let failed = false
  try {
    await (typeof action === 'function' ? action() : action)
  } catch (error) {
    failure = error
    failed = true
  }
  assert.ok(failed, `expected a failure with code ${code}, but it succeeded`)
  assert.ok(
    isSwitchyardError(failure, code),
    `expected a Switchyard error with code ${code}; got ${describe(failure)}`,
  )
  return failure
}

function describe(failure: unknown): string {
  if (!(failure instanceof Error)) return String(failure)
  const code = (failure as { code?: unknown }).code
  return `${failure.name}${typeof code === 'string' ? ` (${code})` : ''}: ${failure.message}`
}
