/**
 * The logger port: pino-compatible (`logger.info({ ...fields }, 'text')`), so a pino, bunyan-style
 * or console adapter plugs in directly. Library code is silent by default.
 */

/** A structured logger. A pino instance satisfies it as is. */
export interface Logger {
  debug(fields: object, message?: string): void
  info(fields: object, message?: string): void
  warn(fields: object, message?: string): void
  error(fields: object, message?: string): void
  /** pino's level check; used, when present, to skip building log fields nobody reads. */
  isLevelEnabled?(level: string): boolean
  /** pino's child loggers; used, when present, to bind the correlation id. */
  child?(bindings: Record<string, unknown>): Logger
}

/** A level to log at, or `'silent'` for not at all. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

const noop = (): void => undefined

/** The default logger: prints nothing. */
export const silentLogger: Logger = Object.freeze({
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  isLevelEnabled: () => false,
})

/** Logs `fields` at `level` unless the level is silent or disabled in the logger. */
export function logAt(logger: Logger, level: LogLevel, fields: object, message: string): void {
  if (level === 'silent' || logger === silentLogger) return
  if (logger.isLevelEnabled !== undefined && !logger.isLevelEnabled(level)) return
  logger[level](fields, message)
}

/** True when a call at `level` would reach the logger (callers skip building fields otherwise). */
export function isLogEnabled(logger: Logger, level: LogLevel): boolean {
  if (level === 'silent' || logger === silentLogger) return false
  return logger.isLevelEnabled === undefined || logger.isLevelEnabled(level)
}
