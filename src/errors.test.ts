import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  ConcurrencyError,
  ConfigurationError,
  ErrorCode,
  HandlerNotFoundError,
  HandlerTimeoutError,
  isRetryable,
  isSwitchyardError,
  LoopDetectedError,
  MessageValidationError,
  SwitchyardError,
} from './index.js'

describe('the error model', () => {
  it('gives every error a name, a stable code, retryable, cause and plain details', () => {
    const cause = new Error('driver said no')
    const error = new HandlerTimeoutError('too slow', {
      cause,
      details: { messageType: 'Allocate' },
    })
    expect(error.name).toBe('HandlerTimeoutError')
    expect(error.code).toBe('SWITCHYARD_HANDLER_TIMEOUT')
    expect(error.retryable).toBe(true)
    expect(error.cause).toBe(cause)
    expect(error.details).toEqual({ messageType: 'Allocate' })
    expect(JSON.parse(JSON.stringify(error.details))).toEqual(error.details)
    expect(error.stack).toContain('errors.test.ts')
  })

  it('marks each class retryable or not by what the caller can do next', () => {
    expect(new ConcurrencyError('moved').retryable).toBe(true)
    expect(new HandlerTimeoutError('slow').retryable).toBe(true)
    expect(new ConfigurationError('bad').retryable).toBe(false)
    expect(new MessageValidationError('bad').retryable).toBe(false)
    expect(new HandlerNotFoundError('none').retryable).toBe(false)
    expect(new LoopDetectedError('loop', ['A', 'B', 'A']).retryable).toBe(false)
  })

  it('recognises Switchyard errors by shape, also from another copy of the package', () => {
    const foreign = Object.assign(new Error('from another copy'), {
      code: 'SWITCHYARD_NO_HANDLER',
      retryable: false,
    })
    expect(isSwitchyardError(foreign)).toBe(true)
    expect(isSwitchyardError(foreign, ErrorCode.NoHandler)).toBe(true)
    expect(isSwitchyardError(foreign, ErrorCode.LoopDetected)).toBe(false)
    expect(
      isSwitchyardError(Object.assign(new Error('x'), { code: 'ECONNRESET', retryable: true })),
    ).toBe(false)
    expect(isSwitchyardError({ code: 'SWITCHYARD_NO_HANDLER', retryable: false })).toBe(false)
    expect(isSwitchyardError(null)).toBe(false)
    expect(isSwitchyardError(new SwitchyardError(ErrorCode.Aborted, 'x'), ErrorCode.Aborted)).toBe(
      true,
    )
  })

  it('treats unknown errors as retryable unless they say otherwise', () => {
    expect(isRetryable(new Error('ECONNRESET'))).toBe(true)
    expect(isRetryable(Object.assign(new Error('x'), { retryable: false }))).toBe(false)
    expect(isRetryable(new MessageValidationError('bad'))).toBe(false)
    expect(isRetryable('a string')).toBe(true)
  })

  it('lists every code in docs/errors.md, and no code that does not exist', () => {
    const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
    const documented = new Set(doc.match(/`SWITCHYARD_[A-Z_]+`/g)?.map((c) => c.slice(1, -1)))
    expect([...documented].sort()).toEqual(Object.values(ErrorCode).sort())
  })
})
