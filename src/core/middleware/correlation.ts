/**
 * `correlation()`: while a handler runs, the message it handles is the current cause, so messages
 * created anywhere in that call tree — domain code calling a definition, not only `ctx.publish` —
 * carry its correlation id and take its id as causation id. The handler's logger is bound to the
 * correlation id and the message id (through `logger.child`, when the logger has it).
 */
import { runWithCause } from '../correlation-scope.js'
import type { DispatchContext } from '../context.js'
import type { Middleware } from './middleware.js'

/** Propagates correlation and causation ids to every message created during a handler. */
export function correlation(): Middleware {
  return (ctx, next) => {
    const context = ctx as DispatchContext
    if (ctx.logger.child !== undefined) {
      context.logger = ctx.logger.child({
        correlationId: ctx.message.correlationId,
        messageId: ctx.message.id,
      })
    }
    return runWithCause(ctx.message, next)
  }
}
