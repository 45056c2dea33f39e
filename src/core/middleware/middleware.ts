/**
 * Middleware is onion-shaped: `(ctx, next) => Promise`. Code before `await next()` runs before the
 * handler, code after it runs after. Bus middleware wraps every handler; handler middleware (given
 * at registration) sits inside it.
 *
 * `next()` may be called again only after the previous call rejected — that is how `retry()` works.
 * Calling it while an earlier call is still pending, or after one succeeded, would run the handler
 * twice; it rejects with `SWITCHYARD_NEXT_CALLED_TWICE` instead.
 */
import type { MiddlewareContext } from '../context.js'

/** A middleware: wraps a handler invocation. */
export type Middleware = (ctx: MiddlewareContext, next: () => Promise<unknown>) => Promise<unknown>
