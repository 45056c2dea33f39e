/**
 * @internal The routing table a bus compiles when it starts: one route per command or query type,
 * a list per event type, each with its middleware chain resolved once.
 */
import { ConfigurationError, ErrorCode } from '../errors.js'
import type { DispatchContext } from './context.js'
import { missingDependency } from './dependencies.js'
import type { AnyDefinition, Message, MessageKind } from './message.js'
import { runChain } from './middleware/compose.js'
import type { Middleware } from './middleware/middleware.js'
import { duplicateType, type HandlerEntry, type HandlerRegistry } from './registry.js'

export type Call = (message: Message, ctx: DispatchContext) => unknown

export interface Route {
  readonly kind: MessageKind
  readonly name: string
  readonly call: Call
  /** Undefined when there is no middleware: the handler is called directly. */
  readonly chain: readonly Middleware[] | undefined
}

export function invoke(route: Route, message: Message, ctx: DispatchContext): unknown {
  return route.chain === undefined
    ? route.call(message, ctx)
    : runChain(route.chain, ctx, route.call)
}

export interface RoutingTable {
  readonly single: Map<string, Route>
  readonly events: Map<string, Route[]>
}

export interface RoutingInput {
  /** The bus's own registrations first, then each registry's, in the order given. */
  readonly registries: readonly HandlerRegistry<object>[]
  readonly middleware: readonly Middleware[]
  readonly hasDependency: (name: string) => boolean
  /** The call for a handler that declared dependencies. */
  readonly withDependencies: (entry: HandlerEntry) => Call
}

/** Builds the table, or throws one ConfigurationError listing every problem. */
export function compileRoutes(input: RoutingInput): RoutingTable {
  const problems: ConfigurationError[] = []
  const definitions = new Map<string, AnyDefinition>()
  const single = new Map<string, Route>()
  const events = new Map<string, Route[]>()
  for (const registry of input.registries) {
    for (const [type, definition] of registry.definitions) {
      const known = definitions.get(type)
      if (known === undefined) definitions.set(type, definition)
      else if (known !== definition) problems.push(duplicateType(definition, known))
    }
    for (const entry of registry.entries) {
      for (const name of entry.deps) {
        if (!input.hasDependency(name))
          problems.push(missingDependency(name, `The handler "${entry.name}" of "${entry.type}"`))
      }
      const chain = [...input.middleware, ...entry.middleware]
      let route: Route = {
        kind: entry.kind,
        name: entry.name,
        call: entry.deps.length === 0 ? (entry.fn as Call) : input.withDependencies(entry),
        chain: chain.length === 0 ? undefined : chain,
      }
      if (entry.kind === 'event') {
        const list = events.get(entry.type)
        if (list === undefined) events.set(entry.type, [route])
        else {
          // The name identifies the handler in logs and in a consumer's inbox records, so the
          // handlers of one event need distinct names. A name taken from the function (or the
          // default) gets the handler's position; two handlers given one `{ name }` are refused,
          // or they would share inbox records.
          if (list.some((other) => other.name === route.name)) {
            if (!entry.named) route = { ...route, name: `${route.name} #${list.length + 1}` }
            else
              problems.push(
                new ConfigurationError(
                  `The event "${entry.type}" has two handlers named "${entry.name}"; give each its own name with { name }`,
                  {
                    code: ErrorCode.DuplicateHandler,
                    details: { messageType: entry.type, handler: entry.name },
                  },
                ),
              )
          }
          list.push(route)
        }
      } else if (single.has(entry.type)) {
        const first = single.get(entry.type)!.name
        problems.push(
          new ConfigurationError(
            `The ${entry.kind} "${entry.type}" has two handlers ("${first}" and "${entry.name}") across registries`,
            {
              code: ErrorCode.DuplicateHandler,
            },
          ),
        )
      } else {
        single.set(entry.type, route)
      }
    }
  }
  if (problems.length > 0) {
    const code = problems.every((p) => p.code === problems[0]!.code)
      ? problems[0]!.code
      : ErrorCode.Configuration
    throw new ConfigurationError(
      `The bus cannot start: ${problems.map((p) => p.message).join('; ')}`,
      {
        code,
        problems: problems.map((p) => p.message),
      },
    )
  }
  return { single, events }
}
