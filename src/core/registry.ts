/**
 * The handler registry: which handler answers which message type. Commands and queries have
 * exactly one handler (a second one is an error at registration, never an override); events have
 * any number, run in registration order. Frozen once a bus using it starts.
 */
import { ConfigurationError, ErrorCode } from '../errors.js'
import type { HandlerContext, NoDependencies, QueryContext } from './context.js'
import type {
  AnyDefinition,
  Command,
  CommandDefinition,
  Event,
  EventDefinition,
  MessageKind,
  Query,
  QueryDefinition,
} from './message.js'
import type { Middleware } from './middleware/middleware.js'

/** A handler as a function. */
export type HandlerFn<M, R, C> = (message: M, ctx: C) => R | Promise<R>

/** A handler as an object (class instance constructed with its dependencies). */
export interface HandlerObject<M, R, C> {
  handle(message: M, ctx: C): R | Promise<R>
}

/** Handles one command type and returns its result. */
export type CommandHandler<M extends Command = Command, R = unknown, Deps = NoDependencies> =
  HandlerFn<M, R, HandlerContext<M, Deps>> | HandlerObject<M, R, HandlerContext<M, Deps>>

/** Handles one query type and returns its result; cannot publish or execute. */
export type QueryHandler<M extends Query = Query, R = unknown, Deps = NoDependencies> =
  HandlerFn<M, R, QueryContext<M, Deps>> | HandlerObject<M, R, QueryContext<M, Deps>>

/** Handles one event type. */
export type EventHandler<M extends Event = Event, Deps = NoDependencies> =
  HandlerFn<M, void, HandlerContext<M, Deps>> | HandlerObject<M, void, HandlerContext<M, Deps>>

/** Options of a registration. */
export interface HandleOptions<K extends string = never> {
  /** A name for logs and errors; defaults to the function's or class's name. */
  readonly name?: string
  /** Middleware for this handler only, inside the bus middleware. */
  readonly middleware?: readonly Middleware[]
  /**
   * The dependencies this handler uses, resolved before each invocation and typed in `ctx.deps`.
   * A name the bus does not provide is a ConfigurationError when the bus starts.
   */
  readonly deps?: readonly K[]
}

/** @internal One registration. */
export interface HandlerEntry {
  readonly kind: MessageKind
  readonly type: string
  readonly name: string
  /** True when the name came from `{ name }`, not from the function or a default. */
  readonly named: boolean
  readonly fn: (message: never, ctx: never) => unknown
  readonly middleware: readonly Middleware[]
  readonly deps: readonly string[]
}

const NO_MIDDLEWARE: readonly Middleware[] = Object.freeze([])
const NO_DEPS: readonly string[] = Object.freeze([])

/**
 * Collects definitions and handlers; give it to a `MessageBus`, or use the bus's own. `D` is the
 * type of the dependencies its handlers may declare.
 */
export class HandlerRegistry<D extends object = NoDependencies> {
  readonly #definitions = new Map<string, AnyDefinition>()
  readonly #entries: HandlerEntry[] = []
  readonly #single = new Map<string, HandlerEntry>()
  #frozenBy: string | undefined

  /** Makes definitions known without a handler (events nobody here handles, types a consumer decodes). */
  register(...definitions: AnyDefinition[]): this {
    this.#assertOpen()
    for (const definition of definitions) this.#define(definition)
    return this
  }

  /** Registers the handler of a command. */
  handle<T extends string, P, R, I, K extends keyof D & string = never>(
    definition: CommandDefinition<T, P, R, I>,
    handler: CommandHandler<Command<T, P, R>, R, Pick<D, K>>,
    options?: HandleOptions<K>,
  ): this
  /** Registers the handler of a query. */
  handle<T extends string, P, R, I, K extends keyof D & string = never>(
    definition: QueryDefinition<T, P, R, I>,
    handler: QueryHandler<Query<T, P, R>, R, Pick<D, K>>,
    options?: HandleOptions<K>,
  ): this
  /** Registers one more handler of an event. */
  handle<T extends string, P, I, K extends keyof D & string = never>(
    definition: EventDefinition<T, P, I>,
    handler: EventHandler<Event<T, P>, Pick<D, K>>,
    options?: HandleOptions<K>,
  ): this
  handle(definition: AnyDefinition, handler: unknown, options: HandleOptions<string> = {}): this {
    this.#assertOpen()
    this.#define(definition)
    const entry = toEntry(definition, handler, options)
    if (definition.kind !== 'event') {
      const existing = this.#single.get(definition.type)
      if (existing !== undefined) {
        throw new ConfigurationError(
          `The ${definition.kind} "${definition.type}" already has a handler ("${existing.name}"); a ${definition.kind} has exactly one handler, so "${entry.name}" was not registered`,
          {
            code: ErrorCode.DuplicateHandler,
            details: {
              messageType: definition.type,
              existing: existing.name,
              rejected: entry.name,
            },
          },
        )
      }
      this.#single.set(definition.type, entry)
    }
    this.#entries.push(entry)
    return this
  }

  /** Registrations in order. */
  get entries(): readonly HandlerEntry[] {
    return this.#entries
  }

  /** Known definitions by type. */
  get definitions(): ReadonlyMap<string, AnyDefinition> {
    return this.#definitions
  }

  /** @internal Rejects further registration; `by` says who froze it, for the error message. */
  freeze(by: string): void {
    this.#frozenBy ??= by
  }

  /** True once a bus using this registry has started. */
  get frozen(): boolean {
    return this.#frozenBy !== undefined
  }

  #define(definition: AnyDefinition): void {
    if (typeof definition !== 'function' || typeof definition.type !== 'string') {
      throw new ConfigurationError(
        `Expected a message definition (from defineCommand, defineEvent or defineQuery); got ${typeof definition}`,
      )
    }
    const known = this.#definitions.get(definition.type)
    if (known === undefined) this.#definitions.set(definition.type, definition)
    else if (known !== definition) throw duplicateType(definition, known)
  }

  #assertOpen(): void {
    if (this.#frozenBy !== undefined) {
      throw new ConfigurationError(
        `Handlers cannot be registered after the bus started (${this.#frozenBy}); register every handler before the first dispatch or start()`,
        { code: ErrorCode.RegistrationFrozen },
      )
    }
  }
}

/** The error for two different definitions sharing one type string. */
export function duplicateType(definition: AnyDefinition, known: AnyDefinition): ConfigurationError {
  return new ConfigurationError(
    `The message type "${definition.type}" is defined twice (as ${article(known.kind)} and as ${article(definition.kind)}); type strings are the routing key and must be unique across kinds: define each message once and import it`,
    {
      code: ErrorCode.DuplicateMessageType,
      details: { messageType: definition.type, kinds: [known.kind, definition.kind] },
    },
  )
}

function toEntry(
  definition: AnyDefinition,
  handler: unknown,
  options: HandleOptions<string>,
): HandlerEntry {
  let fn: HandlerEntry['fn']
  let inferred: string | undefined
  if (typeof handler === 'function') {
    fn = handler as HandlerEntry['fn']
    inferred = handler.name
  } else if (
    typeof handler === 'object' &&
    handler !== null &&
    typeof (handler as { handle?: unknown }).handle === 'function'
  ) {
    const object = handler as HandlerObject<never, unknown, never>
    fn = (message: never, ctx: never) => object.handle(message, ctx)
    inferred = (handler as { constructor?: { name?: string } }).constructor?.name
  } else {
    throw new ConfigurationError(
      `The handler of "${definition.type}" must be a function (message, ctx) => … or an object with handle(message, ctx)`,
      { details: { messageType: definition.type } },
    )
  }
  const name =
    options.name ??
    (inferred !== undefined && inferred !== '' && inferred !== 'Object'
      ? inferred
      : `${definition.type} handler`)
  const middleware =
    options.middleware === undefined || options.middleware.length === 0
      ? NO_MIDDLEWARE
      : [...options.middleware]
  const deps = options.deps === undefined ? NO_DEPS : [...new Set(options.deps)]
  if (deps.some((d) => typeof d !== 'string')) {
    throw new ConfigurationError(
      `The deps of handler "${name}" must be dependency names (strings)`,
      {
        details: { handler: name },
      },
    )
  }
  return {
    kind: definition.kind,
    type: definition.type,
    name,
    named: options.name !== undefined,
    fn,
    middleware,
    deps,
  }
}

function article(kind: string): string {
  return kind === 'event' ? 'an event' : `a ${kind}`
}
