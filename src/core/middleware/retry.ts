/**
 * `retry()`: runs the handler again when it fails with a retryable error, waiting an exponential,
 * jittered backoff between attempts. The policy is cockatiel's (a small, well-kept, zero-dependency
 * resilience library), so the backoff and jitter maths are not ours to get wrong.
 *
 * Each attempt starts clean: follow-ups staged by a failed attempt are dropped. `ctx.attempt` tells
 * the handler which attempt it is. Put `timeout()` inside `retry()` for a time limit per attempt,
 * outside for one over all attempts.
 */
import {
  decorrelatedJitterGenerator,
  ExponentialBackoff,
  fullJitterGenerator,
  halfJitterGenerator,
  handleWhen,
  noJitterGenerator,
  retry as retryPolicy,
} from 'cockatiel'
import { ConfigurationError, isRetryable } from '../../errors.js'
import { logAt } from '../logger.js'
import type { DispatchContext } from '../context.js'
import type { Middleware } from './middleware.js'

/** How long to wait between attempts. */
export interface BackoffOptions {
  /** First delay, ms. Default 100. */
  readonly initialDelay?: number
  /** Largest delay, ms. Default 30,000. */
  readonly maxDelay?: number
  /** Growth factor per attempt. Default 2. */
  readonly factor?: number
  /** Jitter: 'decorrelated' (default), 'full', 'half' or 'none'. */
  readonly jitter?: 'decorrelated' | 'full' | 'half' | 'none'
}

/** Options of {@link retry}. */
export interface RetryOptions {
  /** Attempts in all, the first included. Default 3. */
  readonly attempts?: number
  /** Backoff between attempts. */
  readonly backoff?: BackoffOptions
  /**
   * Whether to retry after `error` on attempt `attempt` (1-based). Default: unless the error says
   * `retryable: false` (validation errors, for instance).
   */
  readonly retryOn?: (error: unknown, attempt: number) => boolean
}

/** Carries an error the policy must not retry through cockatiel and out again. */
class GiveUp extends Error {
  constructor(readonly error: unknown) {
    super('give up')
  }
}

const generators = {
  decorrelated: decorrelatedJitterGenerator,
  full: fullJitterGenerator,
  half: halfJitterGenerator,
  none: noJitterGenerator,
} as const

/** Retries a failing handler with exponential backoff and jitter. */
export function retry(options: RetryOptions = {}): Middleware {
  const attempts = options.attempts ?? 3
  const {
    initialDelay = 100,
    maxDelay = 30_000,
    factor = 2,
    jitter = 'decorrelated',
  } = options.backoff ?? {}
  const retryOn = options.retryOn ?? isRetryable
  const problems: string[] = []
  if (!Number.isSafeInteger(attempts) || attempts < 1)
    problems.push(`attempts must be a whole number ≥ 1; got ${String(attempts)}`)
  if (!(initialDelay >= 0) || !(maxDelay >= initialDelay))
    problems.push('backoff needs 0 ≤ initialDelay ≤ maxDelay')
  if (!(factor >= 1)) problems.push('backoff.factor must be ≥ 1')
  if (!(jitter in generators))
    problems.push(`backoff.jitter must be one of ${Object.keys(generators).join(', ')}`)
  if (problems.length > 0)
    throw new ConfigurationError(`Invalid retry() options: ${problems.join('; ')}`, { problems })

  const policy = retryPolicy(
    handleWhen((error) => !(error instanceof GiveUp)),
    {
      maxAttempts: attempts - 1,
      backoff: new ExponentialBackoff({
        initialDelay,
        maxDelay,
        exponent: factor,
        generator: generators[jitter] as typeof decorrelatedJitterGenerator,
      }),
    },
  )

  return async (ctx, next) => {
    const context = ctx as DispatchContext
    try {
      return await policy.execute(async ({ attempt }) => {
        context.attempt = attempt + 1
        try {
          return await next()
        } catch (error) {
          const again = context.attempt < attempts && retryOn(error, context.attempt)
          if (!again) throw new GiveUp(error)
          logAt(
            ctx.logger,
            'warn',
            {
              err: error,
              messageType: ctx.message.type,
              messageId: ctx.message.id,
              handler: ctx.handlerName,
              attempt: context.attempt,
            },
            'handler failed; retrying',
          )
          throw error
        }
      }, context.signalIfSet)
    } catch (error) {
      throw error instanceof GiveUp ? error.error : error
    }
  }
}
