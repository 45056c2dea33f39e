/**
 * A logger for tests: keeps every entry in memory so a test can assert what was logged.
 */
import type { Logger, LogLevel } from '../index.js'

/** One captured log call. */
export interface LogEntry {
  readonly level: Exclude<LogLevel, 'silent'>
  readonly fields: Readonly<Record<string, unknown>>
  readonly message: string | undefined
}

const ORDER = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const

/** Captures log entries at or above `level` (default 'debug'). */
export class RecordingLogger implements Logger {
  readonly entries: LogEntry[] = []
  readonly #bindings: Readonly<Record<string, unknown>>

  constructor(
    readonly level: LogLevel = 'debug',
    bindings: Readonly<Record<string, unknown>> = {},
    entries?: LogEntry[],
  ) {
    this.#bindings = bindings
    if (entries !== undefined) this.entries = entries
  }

  debug(fields: object, message?: string): void {
    this.#add('debug', fields, message)
  }
  info(fields: object, message?: string): void {
    this.#add('info', fields, message)
  }
  warn(fields: object, message?: string): void {
    this.#add('warn', fields, message)
  }
  error(fields: object, message?: string): void {
    this.#add('error', fields, message)
  }

  isLevelEnabled(level: string): boolean {
    return (
      level in ORDER && ORDER[level as LogLevel] >= ORDER[this.level] && this.level !== 'silent'
    )
  }

  /** A child that shares this logger's entries and adds `bindings` to each. */
  child(bindings: Record<string, unknown>): RecordingLogger {
    return new RecordingLogger(this.level, { ...this.#bindings, ...bindings }, this.entries)
  }

  /** Entries at one level. */
  at(level: LogEntry['level']): LogEntry[] {
    return this.entries.filter((entry) => entry.level === level)
  }

  #add(level: LogEntry['level'], fields: object, message: string | undefined): void {
    if (!this.isLevelEnabled(level)) return
    this.entries.push({ level, fields: { ...this.#bindings, ...fields }, message })
  }
}
