/**
 * `logging()`: one log line per handled message (type, id, handler, duration) and one per failure.
 * Uses the bus logger unless given one; costs a level check when the level is disabled.
 */
import { isLogEnabled, type Logger, type LogLevel, logAt } from '../logger.js'
import type { Middleware } from './middleware.js'

/** Options of {@link logging}. */
export interface LoggingOptions {
  /** Logger to use instead of the bus's. */
  readonly logger?: Logger
  /** Level for handled messages. Default 'debug'. */
  readonly level?: LogLevel
  /** Level for failures. Default 'error'. */
  readonly errorLevel?: LogLevel
}

/** Logs every handler invocation and its outcome. */
export function logging(options: LoggingOptions = {}): Middleware {
  const level = options.level ?? 'debug'
  const errorLevel = options.errorLevel ?? 'error'
  return async (ctx, next) => {
    const logger = options.logger ?? ctx.logger
    const timed = isLogEnabled(logger, level)
    const started = timed ? performance.now() : 0
    try {
      const result = await next()
      if (timed) {
        logAt(
          logger,
          level,
          {
            messageType: ctx.message.type,
            messageId: ctx.message.id,
            correlationId: ctx.message.correlationId,
            handler: ctx.handlerName,
            attempt: ctx.attempt,
            durationMs: performance.now() - started,
          },
          'message handled',
        )
      }
      return result
    } catch (error) {
      logAt(
        logger,
        errorLevel,
        {
          err: error,
          messageType: ctx.message.type,
          messageId: ctx.message.id,
          correlationId: ctx.message.correlationId,
          handler: ctx.handlerName,
          attempt: ctx.attempt,
        },
        'handler failed',
      )
      throw error
    }
  }
}
