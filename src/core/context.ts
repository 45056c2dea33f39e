/**
 * What a handler receives besides its message: metadata, an AbortSignal, a logger, and the roles
 * it may use for follow-ups. Query handlers get the narrower {@link QueryContext}: they cannot
 * publish or execute.
 */
import { ErrorCode, SwitchyardError } from '../errors.js'
import type { Logger } from './logger.js'
import type { Command, Event, Message, Query } from './message.js'
import type { DispatchScope } from './dispatch-scope.js'
import { LazyAbort, type SignalSource, signalOf } from './lazy-abort.js'

/** Runs queries. */
export interface QueryExecutor {
  /** Runs the query's handler now and resolves with its result. */
  query<R>(query: Query<string, unknown, R>): Promise<R>
}

/** Executes commands. */
export interface CommandSender {
  /** Runs the command's handler now and resolves with its result; its follow-up events are queued. */
  execute<R>(command: Command<string, unknown, R>): Promise<R>
}

/** Publishes events. */
export interface EventPublisher {
  /**
   * Queues an event as a follow-up. It is released to the bus's FIFO queue only when this handler
   * succeeds, and handled before the outer `execute`/`publish` resolves. Linked to the message being
   * handled: same correlation id, causation id = that message's id.
   */
  publish(event: Event): void
}

/** The dependencies of a handler that declared none. */
export type NoDependencies = Record<never, never>

/** The context of a query handler. */
export interface QueryContext<
  M extends Message = Message,
  Deps = NoDependencies,
> extends QueryExecutor {
  /** The dependencies the handler declared (`deps` at registration), resolved for this invocation. */
  readonly deps: Deps
  /** The message being handled (its metadata included). */
  readonly message: M
  /** Aborted when the handler should stop (a `timeout()` expired, or the caller's signal aborted). */
  readonly signal: AbortSignal
  /** 1 on the first try; counts up under the `retry()` middleware. */
  readonly attempt: number
  /** The bus's logger (bound to the correlation id under `correlation()`). */
  readonly logger: Logger
  /** The handler's name, for logs. */
  readonly handlerName: string
}

/** The context of a command or event handler. */
export interface HandlerContext<M extends Message = Message, Deps = NoDependencies>
  extends QueryContext<M, Deps>, CommandSender, EventPublisher {}

/** The context a middleware sees: the handler's context, whatever the message kind. */
export type MiddlewareContext = HandlerContext

/** The bus operations a context delegates nested work to. */
export interface NestedDispatcher {
  readonly logger: Logger
  newScope(root: Message, signal: AbortSignal | undefined): DispatchScope
  runNested(
    message: Command | Query,
    kind: 'command' | 'query',
    parent: DispatchContext,
  ): Promise<unknown>
}

let neverAborted: AbortSignal | undefined
const NO_DEPENDENCIES: NoDependencies = Object.freeze({})

/** @internal The one context class; cheap to create (no controller or array until asked for). */
export class DispatchContext implements HandlerContext {
  attempt = 1
  deps: NoDependencies = NO_DEPENDENCIES
  logger: Logger
  /** Follow-up events staged by the current attempt; released when the handler succeeds. */
  pending: Event[] | undefined = undefined
  closed = false
  #signal: SignalSource

  /** The attempt context handed to the handler, when middleware runs it (see `forAttempt`). */
  currentAttempt: DispatchContext | undefined = undefined

  constructor(
    readonly dispatcher: NestedDispatcher,
    readonly message: Message,
    readonly handlerName: string,
    public scope: DispatchScope | undefined,
    /** The caller's signal for the whole top-level dispatch. */
    readonly rootSignal: AbortSignal | undefined,
    signal: SignalSource = rootSignal,
  ) {
    this.logger = dispatcher.logger
    this.#signal = signal
  }

  /**
   * A fresh context for one attempt of the handler (under middleware such as `retry()`), so that an
   * attempt abandoned by `timeout()` but still running cannot publish into a later attempt: the
   * previous attempt is closed, and only the current one's follow-ups are kept (`adopt`).
   */
  forAttempt(): DispatchContext {
    if (this.currentAttempt !== undefined) this.currentAttempt.closed = true
    // Every attempt shares one dispatch scope, so scoped values made by any attempt are disposed.
    this.scope ??= this.dispatcher.newScope(this.message, this.rootSignal)
    const attempt = new DispatchContext(
      this.dispatcher,
      this.message,
      this.handlerName,
      this.scope,
      this.rootSignal,
      this.#signal,
    )
    attempt.attempt = this.attempt
    attempt.logger = this.logger
    this.currentAttempt = attempt
    return attempt
  }

  /** Takes the follow-ups of a finished attempt, if it succeeded and is still the current one. */
  adopt(attempt: DispatchContext, succeeded: boolean): void {
    attempt.closed = true
    if (
      !succeeded ||
      this.closed ||
      this.currentAttempt !== attempt ||
      attempt.pending === undefined
    )
      return
    const pending = (this.pending ??= [])
    for (const event of attempt.pending) pending.push(event)
  }

  /** Ends the handler invocation: the context (and its current attempt) refuse further use. */
  close(): void {
    this.closed = true
    if (this.currentAttempt !== undefined) this.currentAttempt.closed = true
  }

  get signal(): AbortSignal {
    const source = this.#signal
    if (source instanceof LazyAbort) return source.signal
    if (source !== undefined) return source
    return (this.#signal = neverAborted ??= new AbortController().signal)
  }

  /** The signal if one was set (a lazy one is made), without falling back to the never-aborted one. */
  get signalIfSet(): AbortSignal | undefined {
    return signalOf(this.#signal)
  }

  /** Where the signal comes from, without making it. */
  get signalSource(): SignalSource {
    return this.#signal
  }

  /** Installs the signal the handler sees (the timeout middleware's, for one attempt). */
  setSignal(signal: SignalSource): void {
    this.#signal = signal
  }

  publish(event: Event): void {
    this.#assertCanAct('publish')
    if (event === null || typeof event !== 'object' || event.kind !== 'event') {
      throw new SwitchyardError(
        ErrorCode.WrongMessageKind,
        `ctx.publish() takes an event; got ${describeKind(event)}`,
        {
          details: { handler: this.handlerName },
        },
      )
    }
    ;(this.pending ??= []).push(linkTo(event, this.message))
  }

  async execute<R>(command: Command<string, unknown, R>): Promise<R> {
    this.#assertCanAct('execute')
    return (await this.dispatcher.runNested(linkTo(command, this.message), 'command', this)) as R
  }

  async query<R>(query: Query<string, unknown, R>): Promise<R> {
    this.#assertOpen('query')
    return (await this.dispatcher.runNested(linkTo(query, this.message), 'query', this)) as R
  }

  #assertCanAct(method: string): void {
    this.#assertOpen(method)
    if (this.message.kind === 'query') {
      throw new SwitchyardError(
        ErrorCode.QuerySideEffect,
        `The handler of query "${this.message.type}" called ctx.${method}(); queries read, they cannot publish events or execute commands`,
        { details: { messageType: this.message.type, handler: this.handlerName } },
      )
    }
  }

  #assertOpen(method: string): void {
    if (this.closed) {
      throw new SwitchyardError(
        ErrorCode.ContextClosed,
        `ctx.${method}() was called after the handler "${this.handlerName}" of "${this.message.type}" had finished (or timed out); await follow-ups inside the handler`,
        { details: { messageType: this.message.type, handler: this.handlerName } },
      )
    }
  }
}

function describeKind(value: unknown): string {
  if (value === null || typeof value !== 'object') return String(value)
  const kind = (value as { kind?: unknown }).kind
  return typeof kind === 'string' ? `a ${kind}` : 'something that is not a message'
}

/**
 * Links a follow-up to its cause: same correlation id, causation id = the cause's id, and the
 * cause's W3C trace context (`traceparent`, `tracestate`) when the follow-up carries none, so one
 * trace follows a request through the outbox and the brokers.
 */
export function linkTo<M extends Message>(message: M, cause: Message): M {
  if (message === null || typeof message !== 'object') return message
  const trace = inheritedTrace(message, cause)
  if (
    trace === undefined &&
    message.causationId === cause.id &&
    message.correlationId === cause.correlationId
  )
    return message
  return {
    ...message,
    correlationId: cause.correlationId,
    causationId: cause.id,
    ...(trace === undefined ? {} : { headers: { ...message.headers, ...trace } }),
  }
}

/** The cause's trace headers, when it has them and the message has none of its own. */
function inheritedTrace(message: Message, cause: Message): Record<string, string> | undefined {
  const parent = cause.headers?.traceparent
  if (parent === undefined || message.headers?.traceparent !== undefined) return undefined
  const state = cause.headers.tracestate
  return state === undefined ? { traceparent: parent } : { traceparent: parent, tracestate: state }
}
