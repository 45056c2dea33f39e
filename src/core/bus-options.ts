/**
 * The options of a MessageBus, their defaults (applied here, in one place) and their validation
 * (every problem reported at once).
 */
import { ConfigurationError } from '../errors.js'
import type { NoDependencies } from './context.js'
import type { Dependencies } from './dependencies.js'
import { type Logger, type LogLevel, silentLogger } from './logger.js'
import type { Event, Message } from './message.js'
import type { Middleware } from './middleware/middleware.js'
import { HandlerRegistry } from './registry.js'

/** What the `onHandlerError` hook learns about a failure. */
export interface HandlerErrorInfo {
  readonly message: Message
  readonly handler: string
}

/** Options of a {@link MessageBus}. */
export interface MessageBusOptions<D extends object = NoDependencies> {
  /** Registries to take handlers from, besides the bus's own `handle()` calls. */
  readonly handlers?: HandlerRegistry<D> | readonly HandlerRegistry<D>[]
  /** The dependencies handlers may declare: values, or `singleton()` / `scoped()` / `transient()` providers. */
  readonly dependencies?: Dependencies<D>
  /** Middleware around every handler, outermost first. */
  readonly middleware?: readonly Middleware[]
  /** A pino-compatible logger. Default: silent. */
  readonly logger?: Logger
  /** Levels the bus logs at: `activity` (dispatch details, default 'debug'), `errors` (default 'error'). */
  readonly logLevels?: { readonly activity?: LogLevel; readonly errors?: LogLevel }
  /** Most messages one top-level dispatch may handle before `LoopDetectedError`. Default 1,000. */
  readonly maxIterations?: number
  /** Called with each event-handler failure (after the handler's retries). */
  readonly onHandlerError?: (error: unknown, info: HandlerErrorInfo) => void | Promise<void>
  /** `'isolate'` (default): log and go on. `'reject'`: go on, then reject with an `AggregateError`. */
  readonly eventHandlerErrors?: 'isolate' | 'reject'
}

/** Sees what the bus does; for test tooling such as `BusRecorder`. */
export interface BusObserver {
  /** Every message the bus is about to handle: roots, follow-up events (handled or not), nested calls. */
  onMessage?(message: Message): void
  /**
   * The events a unit of work committed, in recording order, linked to the message being handled.
   * Reported at commit: if the handler then fails, the bus does not release them.
   */
  onCommit?(events: readonly Event[]): void
}

/** @internal The options with defaults applied. */
export interface ResolvedOptions {
  readonly registries: readonly HandlerRegistry<object>[]
  readonly dependencies: object
  readonly middleware: readonly Middleware[]
  readonly logger: Logger
  readonly activityLevel: LogLevel
  readonly errorLevel: LogLevel
  readonly maxIterations: number
  readonly onHandlerError: MessageBusOptions['onHandlerError']
  readonly rejectEventErrors: boolean
}

const LEVELS = new Set(['debug', 'info', 'warn', 'error', 'silent'])

/** @internal Applies defaults and reports every invalid option at once. */
export function resolveOptions<D extends object>(options: MessageBusOptions<D>): ResolvedOptions {
  const problems: string[] = []
  const handlers = options.handlers
  const registries =
    handlers === undefined ? [] : handlers instanceof HandlerRegistry ? [handlers] : [...handlers]
  if (registries.some((r) => !(r instanceof HandlerRegistry)))
    problems.push('handlers must be HandlerRegistry instances')
  const middleware = options.middleware ?? []
  if (!Array.isArray(middleware) || middleware.some((m) => typeof m !== 'function')) {
    problems.push('middleware must be an array of functions (ctx, next) => Promise')
  }
  const dependencies = options.dependencies ?? {}
  if (typeof dependencies !== 'object' || dependencies === null)
    problems.push('dependencies must be an object')
  const maxIterations = options.maxIterations ?? 1000
  if (!Number.isSafeInteger(maxIterations) || maxIterations < 1) {
    problems.push(`maxIterations must be a whole number ≥ 1; got ${String(maxIterations)}`)
  }
  const mode = options.eventHandlerErrors ?? 'isolate'
  if (mode !== 'isolate' && mode !== 'reject')
    problems.push(`eventHandlerErrors must be 'isolate' or 'reject'; got ${String(mode)}`)
  if (options.onHandlerError !== undefined && typeof options.onHandlerError !== 'function') {
    problems.push('onHandlerError must be a function')
  }
  const activityLevel = options.logLevels?.activity ?? 'debug'
  const errorLevel = options.logLevels?.errors ?? 'error'
  for (const level of [activityLevel, errorLevel]) {
    if (!LEVELS.has(level))
      problems.push(`log levels must be one of ${[...LEVELS].join(', ')}; got ${String(level)}`)
  }
  if (problems.length > 0) {
    throw new ConfigurationError(`Invalid MessageBus options: ${problems.join('; ')}`, { problems })
  }
  return {
    registries,
    dependencies,
    middleware: [...middleware],
    logger: options.logger ?? silentLogger,
    activityLevel,
    errorLevel,
    maxIterations,
    onHandlerError: options.onHandlerError,
    rejectEventErrors: mode === 'reject',
  }
}
