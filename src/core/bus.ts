/**
 * The in-process message bus.
 *
 * - `execute(command)` runs the command's one handler, then drains the FIFO queue of follow-up
 *   events before it resolves with the handler's result.
 * - `publish(event)` runs every handler of the event (in registration order), then drains.
 * - `query(query)` runs the query's one handler and resolves with its result.
 * - Follow-ups staged by a handler (`ctx.publish`) are released only when that handler succeeds.
 * - An event handler's failure never stops its siblings or the queue: it goes to the logger and the
 *   `onHandlerError` hook, and with `eventHandlerErrors: 'reject'` the outer call rejects with an
 *   `AggregateError` of them once the queue is drained.
 *
 * Every method that returns a Promise reports every error through it; none throws synchronously.
 */
import {
  ConfigurationError,
  ErrorCode,
  HandlerNotFoundError,
  isRetryable,
  SwitchyardError,
} from '../errors.js'
import { DispatchContext, type NestedDispatcher } from './context.js'
import { isMessage, notAMessage } from './define.js'
import { DispatchScope } from './dispatch-scope.js'
import { type Logger, type LogLevel, logAt, silentLogger } from './logger.js'
import type { Command, Event, Message, MessageKind, Query, ResultOf } from './message.js'
import { runChain } from './middleware/compose.js'
import type { Middleware } from './middleware/middleware.js'
import { duplicateType, type HandlerEntry, HandlerRegistry } from './registry.js'

/** What the `onHandlerError` hook learns about a failure. */
export interface HandlerErrorInfo {
  readonly message: Message
  readonly handler: string
}

/** Options of a {@link MessageBus}. Defaults are applied in one place, the constructor. */
export interface MessageBusOptions {
  /** Registries to take handlers from, besides the bus's own `handle()` calls. */
  readonly handlers?: HandlerRegistry | readonly HandlerRegistry[]
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

/** Options of one dispatch. */
export interface DispatchOptions {
  /** Passed to handlers as `ctx.signal`. An already aborted signal rejects before any handler runs. */
  readonly signal?: AbortSignal
}

interface Route {
  readonly kind: MessageKind
  readonly name: string
  readonly fn: (message: never, ctx: never) => unknown
  /** Undefined when there is no middleware: the handler is called directly. */
  readonly chain: readonly Middleware[] | undefined
}

function invoke(route: Route, message: Message, ctx: DispatchContext): unknown {
  return route.chain === undefined
    ? (route.fn as (m: Message, c: DispatchContext) => unknown)(message, ctx)
    : runChain(route.chain, ctx, route.fn)
}

/** The in-process bus. Register handlers with `handle()`, then dispatch. */
export class MessageBus extends HandlerRegistry implements NestedDispatcher {
  readonly logger: Logger
  readonly #registries: readonly HandlerRegistry[]
  readonly #middleware: readonly Middleware[]
  readonly #activityLevel: LogLevel
  readonly #errorLevel: LogLevel
  readonly #maxIterations: number
  readonly #onHandlerError: MessageBusOptions['onHandlerError']
  readonly #rejectEventErrors: boolean
  readonly #single = new Map<string, Route>()
  readonly #events = new Map<string, Route[]>()
  #started = false

  constructor(options: MessageBusOptions = {}) {
    super()
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
    if (problems.length > 0) {
      throw new ConfigurationError(`Invalid MessageBus options: ${problems.join('; ')}`, {
        problems,
      })
    }
    this.#registries = registries
    this.#middleware = [...middleware]
    this.logger = options.logger ?? silentLogger
    this.#activityLevel = options.logLevels?.activity ?? 'debug'
    this.#errorLevel = options.logLevels?.errors ?? 'error'
    this.#maxIterations = maxIterations
    this.#onHandlerError = options.onHandlerError
    this.#rejectEventErrors = mode === 'reject'
  }

  /**
   * Freezes registration and checks it, reporting every problem at once. Called by the first
   * dispatch if not called before. Idempotent.
   */
  async start(): Promise<void> {
    this.#compile()
    return Promise.resolve()
  }

  /** True once the bus started. */
  get started(): boolean {
    return this.#started
  }

  /** Runs the command's handler, drains its follow-ups, and resolves with the handler's result. */
  async execute<R>(command: Command<string, unknown, R>, options?: DispatchOptions): Promise<R> {
    const route = this.#route(command, 'command', 'execute', options)
    const ctx = new DispatchContext(this, command, route.name, undefined, options?.signal)
    let result: unknown
    try {
      result = await invoke(route, command, ctx)
    } catch (error) {
      ctx.closed = true
      // Nested commands that succeeded before the failure did commit: their events still go out.
      if (ctx.scope !== undefined) await this.#drain(ctx.scope)
      logAt(
        this.logger,
        this.#activityLevel,
        { err: error, messageType: command.type, messageId: command.id, handler: route.name },
        'command handler failed',
      )
      throw error
    }
    ctx.closed = true
    if (ctx.pending !== undefined || ctx.scope !== undefined) await this.#settle(ctx)
    return result as R
  }

  /** Runs every handler of the event, drains the follow-ups, and resolves when all is handled. */
  async publish(event: Event, options?: DispatchOptions): Promise<void> {
    this.#check(event, 'event', 'publish', options)
    const scope = new DispatchScope(event, options?.signal, this.#maxIterations)
    await this.#handleEvent(event, scope)
    await this.#drain(scope)
    this.#throwCollected(scope)
  }

  /** Runs the query's handler and resolves with its result. */
  async query<R>(query: Query<string, unknown, R>, options?: DispatchOptions): Promise<R> {
    const route = this.#route(query, 'query', 'query', options)
    const ctx = new DispatchContext(this, query, route.name, undefined, options?.signal)
    try {
      return (await invoke(route, query, ctx)) as R
    } finally {
      ctx.closed = true
    }
  }

  /** Routes any message by its kind to `execute`, `publish` or `query`. */
  async dispatch<M extends Message>(message: M, options?: DispatchOptions): Promise<ResultOf<M>> {
    if (!isMessage(message)) throw notAMessage(message, 'dispatch')
    switch (message.kind) {
      case 'command':
        return (await this.execute(message as Command, options)) as ResultOf<M>
      case 'query':
        return (await this.query(message as Query, options)) as ResultOf<M>
      case 'event':
        return (await this.publish(message as Event, options)) as ResultOf<M>
    }
  }

  /** @internal Runs a command or query from inside a handler (`ctx.execute` / `ctx.query`). */
  async runNested(
    message: Command | Query,
    kind: 'command' | 'query',
    parent: DispatchContext,
  ): Promise<unknown> {
    const route = this.#route(message, kind, kind === 'command' ? 'execute' : 'query', undefined)
    const scope = (parent.scope ??= new DispatchScope(
      parent.message,
      parent.signalIfSet,
      this.#maxIterations,
    ))
    scope.count1(message)
    ;(scope.nested ??= []).push(message)
    const ctx = new DispatchContext(this, message, route.name, scope, scope.signal)
    try {
      const result = await invoke(route, message, ctx)
      if (ctx.pending !== undefined) scope.release(ctx.pending)
      return result
    } finally {
      ctx.closed = true
    }
  }

  async #settle(ctx: DispatchContext): Promise<void> {
    const scope = (ctx.scope ??= new DispatchScope(
      ctx.message,
      ctx.signalIfSet,
      this.#maxIterations,
    ))
    if (ctx.pending !== undefined) scope.release(ctx.pending)
    await this.#drain(scope)
    this.#throwCollected(scope)
  }

  async #drain(scope: DispatchScope): Promise<void> {
    while (scope.head < scope.queue.length) {
      const event = scope.queue[scope.head++]!
      scope.count1(event)
      await this.#handleEvent(event, scope)
    }
  }

  async #handleEvent(event: Event, scope: DispatchScope): Promise<void> {
    const routes = this.#events.get(event.type)
    if (routes === undefined) return
    for (const route of routes) {
      const ctx = new DispatchContext(this, event, route.name, scope, scope.signal)
      try {
        await invoke(route, event, ctx)
        ctx.closed = true
        if (ctx.pending !== undefined) scope.release(ctx.pending)
      } catch (error) {
        ctx.closed = true
        if (scope.loopError !== undefined) throw scope.loopError
        await this.#eventFailed(error, event, route, scope)
      }
    }
  }

  async #eventFailed(
    error: unknown,
    event: Event,
    route: Route,
    scope: DispatchScope,
  ): Promise<void> {
    const fields = {
      err: error,
      messageType: event.type,
      messageId: event.id,
      correlationId: event.correlationId,
      handler: route.name,
    }
    logAt(this.logger, this.#errorLevel, fields, 'event handler failed')
    if (this.#onHandlerError !== undefined) {
      try {
        await this.#onHandlerError(error, { message: event, handler: route.name })
      } catch (hookError) {
        logAt(
          this.logger,
          this.#errorLevel,
          { ...fields, err: hookError },
          'onHandlerError hook threw',
        )
      }
    }
    if (this.#rejectEventErrors) {
      const reason = error instanceof Error ? error.message : String(error)
      ;(scope.failures ??= []).push(
        new SwitchyardError(
          ErrorCode.EventHandlerFailed,
          `Event handler "${route.name}" failed on "${event.type}": ${reason}`,
          {
            cause: error,
            retryable: isRetryable(error),
            details: { messageType: event.type, messageId: event.id, handler: route.name },
          },
        ),
      )
    }
  }

  #throwCollected(scope: DispatchScope): void {
    const failures = scope.failures
    if (failures === undefined) return
    throw new AggregateError(
      failures,
      `${failures.length} event handler${failures.length === 1 ? '' : 's'} failed while dispatching "${scope.root.type}": ${failures.map((f) => f.message).join('; ')}`,
    )
  }

  #check(
    message: unknown,
    kind: MessageKind,
    method: string,
    options: DispatchOptions | undefined,
  ): asserts message is Message {
    if (!this.#started) this.#compile()
    if (!isMessage(message)) throw notAMessage(message, method)
    if (message.kind !== kind) {
      throw new SwitchyardError(
        ErrorCode.WrongMessageKind,
        `bus.${method}() takes a ${kind}, but "${message.type}" is a ${message.kind}; use bus.${message.kind === 'command' ? 'execute' : message.kind === 'event' ? 'publish' : 'query'}() or bus.dispatch()`,
        { details: { messageType: message.type, expected: kind, actual: message.kind } },
      )
    }
    if (options?.signal?.aborted === true) {
      throw new SwitchyardError(
        ErrorCode.Aborted,
        `Dispatch of "${message.type}" was aborted before it started`,
        {
          cause: options.signal.reason,
          details: { messageType: message.type },
        },
      )
    }
  }

  #route(
    message: unknown,
    kind: MessageKind,
    method: string,
    options: DispatchOptions | undefined,
  ): Route {
    this.#check(message, kind, method, options)
    const route = this.#single.get(message.type)
    if (route === undefined || route.kind !== kind) {
      throw new HandlerNotFoundError(
        `No handler registered for ${kind} "${message.type}"; register one with bus.handle(${message.type}, handler) before the first dispatch`,
        { details: { messageType: message.type, kind } },
      )
    }
    return route
  }

  #compile(): void {
    if (this.#started) return
    const problems: string[] = []
    const definitions = new Map(this.definitions)
    const entries: HandlerEntry[] = [...this.entries]
    for (const registry of this.#registries) {
      for (const [type, definition] of registry.definitions) {
        const known = definitions.get(type)
        if (known === undefined) definitions.set(type, definition)
        else if (known !== definition) problems.push(duplicateType(definition, known).message)
      }
      entries.push(...registry.entries)
    }
    for (const entry of entries) {
      const route: Route = {
        kind: entry.kind,
        name: entry.name,
        fn: entry.fn,
        chain:
          this.#middleware.length + entry.middleware.length === 0
            ? undefined
            : [...this.#middleware, ...entry.middleware],
      }
      if (entry.kind === 'event') {
        const list = this.#events.get(entry.type)
        if (list === undefined) this.#events.set(entry.type, [route])
        else list.push(route)
      } else if (this.#single.has(entry.type)) {
        problems.push(
          `The ${entry.kind} "${entry.type}" has two handlers ("${this.#single.get(entry.type)!.name}" and "${entry.name}") across registries`,
        )
      } else {
        this.#single.set(entry.type, route)
      }
    }
    if (problems.length > 0) {
      this.#single.clear()
      this.#events.clear()
      throw new ConfigurationError(`The bus cannot start: ${problems.join('; ')}`, { problems })
    }
    this.#started = true
    this.freeze('bus started')
    for (const registry of this.#registries) registry.freeze('a bus using this registry started')
  }
}
