/**
 * `timeout(ms)`: rejects with `HandlerTimeoutError` when the handler takes longer than `ms`, and
 * aborts the handler's `ctx.signal` so cooperative code (fetch, database drivers, timers) stops.
 * JavaScript cannot stop a function that ignores its signal; such a handler runs on, but its
 * follow-ups are discarded and its context refuses further publishes.
 *
 * The signal is made only if the handler reads it (see lazy-abort.ts): a timeout that nobody
 * listens to costs a timer and a promise, not an AbortController per dispatch.
 */
import { ConfigurationError, HandlerTimeoutError } from '../../errors.js'
import type { DispatchContext } from '../context.js'
import { LazyAbort } from '../lazy-abort.js'
import type { Middleware } from './middleware.js'

/** Limits how long the inner chain (and handler) may run. */
export function timeout(ms: number): Middleware {
  if (!Number.isFinite(ms) || ms <= 0) {
    throw new ConfigurationError(
      `timeout(ms) needs a positive number of milliseconds; got ${String(ms)}`,
    )
  }
  return async (ctx, next) => {
    const context = ctx as DispatchContext
    const outer = context.signalSource
    const abort = new LazyAbort(outer)
    context.setSignal(abort)
    let timer: NodeJS.Timeout | undefined
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new HandlerTimeoutError(
          `Handler "${ctx.handlerName}" of "${ctx.message.type}" took longer than ${ms} ms; its signal was aborted`,
          {
            details: {
              handler: ctx.handlerName,
              messageType: ctx.message.type,
              messageId: ctx.message.id,
              timeoutMs: ms,
            },
          },
        )
        abort.abort(error)
        reject(error)
      }, ms)
    })
    try {
      return await Promise.race([next(), expired])
    } finally {
      clearTimeout(timer)
      abort.dispose()
      context.setSignal(outer)
    }
  }
}
