/**
 * @internal Runs a middleware chain around a handler for one invocation.
 */
import { ErrorCode, SwitchyardError } from '../../errors.js'
import type { DispatchContext } from '../context.js'
import type { Middleware } from './middleware.js'

/** A handler reduced to a function of (message, context). */
export type HandlerFunction = (message: never, ctx: never) => unknown

export function runChain(
  middleware: readonly Middleware[],
  ctx: DispatchContext,
  handler: HandlerFunction,
): Promise<unknown> {
  const call = handler as (message: unknown, ctx: unknown) => unknown
  const dispatch = (index: number): Promise<unknown> => {
    if (index === middleware.length) {
      // Each attempt runs on its own context; see DispatchContext.forAttempt.
      const attempt = ctx.forAttempt()
      let result: unknown
      try {
        result = call(ctx.message, attempt)
      } catch (error) {
        ctx.adopt(attempt, false)
        return Promise.reject(error)
      }
      return Promise.resolve(result).then(
        (value) => {
          ctx.adopt(attempt, true)
          return value
        },
        (error: unknown) => {
          ctx.adopt(attempt, false)
          throw error
        },
      )
    }
    const layer = middleware[index]!
    let state: 'idle' | 'pending' | 'done' = 'idle'
    const next = (): Promise<unknown> => {
      if (state !== 'idle') {
        return Promise.reject(
          new SwitchyardError(
            ErrorCode.NextCalledTwice,
            `A middleware of handler "${ctx.handlerName}" called next() ${state === 'pending' ? 'while its earlier call was still running' : 'after it had already succeeded'}; that would run the handler twice`,
            { details: { handler: ctx.handlerName, messageType: ctx.message.type, layer: index } },
          ),
        )
      }
      state = 'pending'
      return dispatch(index + 1).then(
        (result) => {
          state = 'done'
          return result
        },
        (error: unknown) => {
          state = 'idle'
          throw error
        },
      )
    }
    try {
      return Promise.resolve(layer(ctx, next))
    } catch (error) {
      return Promise.reject(error)
    }
  }
  return dispatch(0)
}
