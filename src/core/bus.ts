/**
 * The in-process message bus.
 *
 * - `execute(command)` runs the command's one handler, then drains the FIFO queue of follow-up
 *   events before it resolves with the handler's result.
 * - `publish(event)` runs every handler of the event (in registration order), then drains.
 * - `query(query)` runs the query's one handler and resolves with its result.
 * - Follow-ups a handler stages (`ctx.publish`, and the events its unit of work releases on commit)
 *   join the queue only when that handler succeeds.
 * - An event handler's failure never stops its siblings or the queue: it goes to the logger and the
 *   `onHandlerError` hook, and with `eventHandlerErrors: 'reject'` the outer call rejects with an
 *   `AggregateError` of them once the queue is drained.
 *
 * Every method that returns a Promise reports every error through it; none throws synchronously.
 */
import { ErrorCode, HandlerNotFoundError, isRetryable, SwitchyardError } from '../errors.js'
import {
  type BusObserver,
  type HandlerErrorInfo,
  type MessageBusOptions,
  type ResolvedOptions,
  resolveOptions,
} from './bus-options.js'
import { DependencyContainer, disposeAll } from './container.js'
import { DispatchContext, linkTo, type NestedDispatcher, type NoDependencies } from './context.js'
import { isMessage, notAMessage } from './define.js'
import type { Factory, Provider } from './dependencies.js'
import { DispatchScope } from './dispatch-scope.js'
import { type Logger, logAt } from './logger.js'
import type { Command, Event, Message, MessageKind, Query, ResultOf } from './message.js'
import { HandlerRegistry } from './registry.js'
import { compileRoutes, invoke, type Route } from './routes.js'
import { type DependencyRuntime, invokeWithDependencies } from './with-dependencies.js'

export type { HandlerErrorInfo, MessageBusOptions, BusObserver }

/** Options of one dispatch. */
export interface DispatchOptions {
  /** Passed to handlers as `ctx.signal`. An already aborted signal rejects before any handler runs. */
  readonly signal?: AbortSignal
  /**
   * For `publish` (and `dispatch` of an event): overrides the bus's `eventHandlerErrors` for this
   * dispatch. The consumer uses `'reject'`, so a failed handler gets the message redelivered.
   */
  readonly eventHandlerErrors?: 'isolate' | 'reject'
}

/** The in-process bus. Register handlers with `handle()`, then dispatch. */
export class MessageBus<D extends object = NoDependencies>
  extends HandlerRegistry<D>
  implements NestedDispatcher, AsyncDisposable
{
  readonly logger: Logger
  readonly #options: ResolvedOptions
  readonly #container: DependencyContainer
  readonly #single = new Map<string, Route>()
  readonly #events = new Map<string, Route[]>()
  readonly #observers: BusObserver[] = []
  #started = false
  #closed = false
  readonly #runtime: DependencyRuntime

  constructor(options: MessageBusOptions<D> = {}) {
    super()
    this.#options = resolveOptions(options)
    this.logger = this.#options.logger
    this.#container = new DependencyContainer(this.#options.dependencies)
    this.#runtime = {
      container: this.#container,
      logger: this.logger,
      activityLevel: this.#options.activityLevel,
      newScope: (root, signal) => this.newScope(root, signal),
      committed: (ctx, events) => this.#committed(ctx, events),
      disposeFailed: (error) => this.#disposeFailed(error),
    }
  }

  /**
   * Freezes registration and checks it (handlers, dependencies), reporting every problem at once.
   * The first dispatch calls it if you did not. Idempotent.
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
      ctx.close()
      // Nested commands that succeeded before the failure committed: their events still go out.
      if (ctx.scope !== undefined) await this.#end(ctx.scope, false)
      this.#handlerFailed(error, command, route)
      throw error
    }
    ctx.close()
    if (ctx.pending !== undefined || ctx.scope !== undefined) {
      const scope = (ctx.scope ??= this.newScope(command, ctx.rootSignal))
      if (ctx.pending !== undefined) scope.release(ctx.pending)
      await this.#end(scope, true)
    }
    return result as R
  }

  /** Runs every handler of the event, drains the follow-ups, and resolves when all is handled. */
  async publish(event: Event, options?: DispatchOptions): Promise<void> {
    this.#check(event, 'event', 'publish', options)
    const scope = this.newScope(event, options?.signal)
    if (options?.eventHandlerErrors !== undefined)
      scope.rejectEventErrors = options.eventHandlerErrors === 'reject'
    try {
      await this.#handleEvent(event, scope)
    } catch (error) {
      await this.#end(scope, false)
      throw error
    }
    // Most publishes have nothing left to drain, dispose or report: skip the extra await.
    if (scope.queue.length !== 0 || scope.disposables !== undefined || scope.failures !== undefined)
      await this.#end(scope, true)
  }

  /** Runs the query's handler and resolves with its result. */
  async query<R>(query: Query<string, unknown, R>, options?: DispatchOptions): Promise<R> {
    const route = this.#route(query, 'query', 'query', options)
    const ctx = new DispatchContext(this, query, route.name, undefined, options?.signal)
    try {
      return (await invoke(route, query, ctx)) as R
    } catch (error) {
      this.#handlerFailed(error, query, route)
      throw error
    } finally {
      ctx.close()
      if (ctx.scope !== undefined) await this.#end(ctx.scope, false)
    }
  }

  /** Routes any message by its kind to `execute`, `publish` or `query`. */
  dispatch<M extends Message>(message: M, options?: DispatchOptions): Promise<ResultOf<M>> {
    // Not async: the promise of the method it routes to is returned as it is (no extra wait).
    try {
      if (!isMessage(message)) throw notAMessage(message, 'dispatch')
      switch (message.kind) {
        case 'command':
          return this.execute(message as Command, options) as Promise<ResultOf<M>>
        case 'query':
          return this.query(message as Query, options) as Promise<ResultOf<M>>
        case 'event':
          return this.publish(message as Event, options) as Promise<ResultOf<M>>
      }
    } catch (error) {
      return Promise.reject(error)
    }
  }

  /**
   * Replaces a dependency until the returned handle is disposed (`using _ = bus.override(…)`), like
   * FastAPI's dependency_overrides. A factory keeps the original's lifetime; a provider brings its own.
   */
  override<K extends keyof D & string>(
    name: K,
    replacement: Factory<D[K], D> | Provider<D[K], D>,
  ): Disposable {
    return this.#container.override(name, replacement as Factory<unknown, unknown>)
  }

  /** Watches what the bus handles (test tooling); returns a handle that stops watching. */
  observe(observer: BusObserver): Disposable {
    this.#observers.push(observer)
    return {
      [Symbol.dispose]: () => {
        const at = this.#observers.indexOf(observer)
        if (at >= 0) this.#observers.splice(at, 1)
      },
    }
  }

  /** Disposes the singletons the bus made; later dispatches reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#container.close((error) =>
      logAt(this.logger, this.#options.errorLevel, { err: error }, 'disposing a singleton failed'),
    )
  }

  /** `await using bus = …` closes the bus. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** @internal Runs a command or query from inside a handler (`ctx.execute` / `ctx.query`). */
  async runNested(
    message: Command | Query,
    kind: 'command' | 'query',
    parent: DispatchContext,
  ): Promise<unknown> {
    const route = this.#route(message, kind, kind === 'command' ? 'execute' : 'query', undefined)
    const scope = (parent.scope ??= this.newScope(parent.message, parent.rootSignal))
    scope.count1(message)
    ;(scope.nested ??= []).push(message)
    // A nested call runs under its caller's current signal (a timeout's, say).
    const ctx = new DispatchContext(
      this,
      message,
      route.name,
      scope,
      scope.signal,
      parent.signalSource,
    )
    try {
      const result = await invoke(route, message, ctx)
      if (ctx.pending !== undefined) scope.release(ctx.pending)
      return result
    } finally {
      ctx.close()
    }
  }

  /** @internal A new top-level dispatch scope. */
  newScope(root: Message, signal: AbortSignal | undefined): DispatchScope {
    const scope = new DispatchScope(root, signal, this.#options.maxIterations)
    scope.rejectEventErrors = this.#options.rejectEventErrors
    return scope
  }

  /** Drains the queue, disposes the scope's values, and (on success) reports collected failures. */
  async #end(scope: DispatchScope, succeeded: boolean): Promise<void> {
    try {
      while (scope.head < scope.queue.length) {
        const event = scope.queue[scope.head++]!
        scope.count1(event)
        await this.#handleEvent(event, scope)
      }
    } finally {
      if (scope.disposables !== undefined)
        await disposeAll(scope.disposables.splice(0), (error) => this.#disposeFailed(error))
    }
    if (succeeded && scope.failures !== undefined) {
      const failures = scope.failures
      throw new AggregateError(
        failures,
        `${failures.length} event handler${failures.length === 1 ? '' : 's'} failed while dispatching "${scope.root.type}": ${failures.map((f) => f.message).join('; ')}`,
      )
    }
  }

  async #handleEvent(event: Event, scope: DispatchScope): Promise<void> {
    if (this.#observers.length !== 0) this.#notify(event)
    const routes = this.#events.get(event.type)
    if (routes === undefined) return
    for (const route of routes) {
      const ctx = new DispatchContext(this, event, route.name, scope, scope.signal)
      try {
        await invoke(route, event, ctx)
        ctx.close()
        if (ctx.pending !== undefined) scope.release(ctx.pending)
      } catch (error) {
        ctx.close()
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
    logAt(this.logger, this.#options.errorLevel, fields, 'event handler failed')
    const hook = this.#options.onHandlerError
    if (hook !== undefined) {
      try {
        await hook(error, { message: event, handler: route.name })
      } catch (hookError) {
        logAt(
          this.logger,
          this.#options.errorLevel,
          { ...fields, err: hookError },
          'onHandlerError hook threw',
        )
      }
    }
    if (scope.rejectEventErrors) {
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

  #committed(ctx: DispatchContext, events: readonly Event[]): void {
    if (events.length === 0) return
    const linked = events.map((event) => linkTo(event, ctx.message))
    for (const observer of this.#observers) observer.onCommit?.(linked)
    const pending = (ctx.pending ??= [])
    for (const event of linked) pending.push(event)
  }

  /** A command or query failed: the caller gets the error; the log gets it at the activity level. */
  #handlerFailed(error: unknown, message: Message, route: Route): void {
    const fields = {
      err: error,
      messageType: message.type,
      messageId: message.id,
      handler: route.name,
    }
    logAt(this.logger, this.#options.activityLevel, fields, `${message.kind} handler failed`)
  }

  #disposeFailed(error: unknown): void {
    logAt(this.logger, this.#options.errorLevel, { err: error }, 'disposing a dependency failed')
  }

  #notify(message: Message): void {
    for (const observer of this.#observers) observer.onMessage?.(message)
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
    if (this.#closed) {
      throw new SwitchyardError(
        ErrorCode.BusClosed,
        `The bus is closed; "${message.type}" was not dispatched`,
        { details: { messageType: message.type } },
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
    if (this.#observers.length !== 0) this.#notify(message)
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
    const table = compileRoutes({
      registries: [this, ...this.#options.registries] as HandlerRegistry<object>[],
      middleware: this.#options.middleware,
      hasDependency: (name) => this.#container.has(name),
      withDependencies: (entry) => (message, ctx) =>
        invokeWithDependencies(this.#runtime, entry, message, ctx),
    })
    for (const [type, route] of table.single) this.#single.set(type, route)
    for (const [type, list] of table.events) this.#events.set(type, list)
    this.#started = true
    this.freeze('bus started')
    for (const registry of this.#options.registries)
      registry.freeze('a bus using this registry started')
  }
}
