/**
 * Dependencies: a typed map given to the bus. Each entry is a plain value (shared, like a
 * singleton) or a provider made by `singleton()`, `scoped()` or `transient()`:
 *
 * - `singleton`: made once per bus, on first use; disposed by `bus.close()`.
 * - `scoped`: made once per top-level dispatch and shared by every follow-up of that dispatch;
 *   disposed (`Symbol.asyncDispose` / `Symbol.dispose`) when the dispatch ends, even if it failed.
 * - `transient`: made for each handler invocation (each retry attempt gets its own); disposed when
 *   that invocation ends. Units of work are transient.
 *
 * Factories may be async and may ask for other dependencies with `get(name)`.
 */
import { ConfigurationError, ErrorCode } from '../errors.js'

/** How long a provided value lives. */
export type Lifetime = 'singleton' | 'scoped' | 'transient'

const PROVIDER: unique symbol = Symbol.for('switchyard.provider')

/** Resolves other dependencies from inside a factory. */
export interface Resolver<D> {
  /** Resolves another dependency (with its own lifetime). */
  readonly get: <K extends keyof D & string>(name: K) => Promise<D[K]>
}

/** Makes a dependency value. */
export type Factory<T, D = Record<string, unknown>> = (resolver: Resolver<D>) => T | Promise<T>

/** A factory with a lifetime. */
export interface Provider<T, D = Record<string, unknown>> {
  readonly [PROVIDER]: true
  readonly lifetime: Lifetime
  readonly factory: Factory<T, D>
}

/** The dependency map for the resolved types `D`: each entry a value or a provider. */
export type Dependencies<D> = { readonly [K in keyof D]: D[K] | Provider<D[K], D> }

function provider<T, D>(lifetime: Lifetime, factory: Factory<T, D>): Provider<T, D> {
  if (typeof factory !== 'function') {
    throw new ConfigurationError(`${lifetime}() needs a factory function`, {
      details: { lifetime },
    })
  }
  return { [PROVIDER]: true, lifetime, factory }
}

/** One value per bus, made on first use. */
export function singleton<T, D = Record<string, unknown>>(factory: Factory<T, D>): Provider<T, D> {
  return provider('singleton', factory)
}

/** One value per top-level dispatch, shared by its follow-ups, disposed when it ends. */
export function scoped<T, D = Record<string, unknown>>(factory: Factory<T, D>): Provider<T, D> {
  return provider('scoped', factory)
}

/** A new value for each handler invocation, disposed when the invocation ends. */
export function transient<T, D = Record<string, unknown>>(factory: Factory<T, D>): Provider<T, D> {
  return provider('transient', factory)
}

/** True for a provider made by `singleton`, `scoped` or `transient`. */
export function isProvider(value: unknown): value is Provider<unknown, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [PROVIDER]?: unknown })[PROVIDER] === true
  )
}

/** @internal A provider, or a plain value wrapped as one. */
export type AnyProvider = Provider<unknown, unknown>

/** Providers of values the bus did not make (plain values, your container's): never disposed by it. */
const unowned = new WeakSet<object>()

/** @internal True for a provider whose values the bus must not dispose. */
export function isUnowned(provider: AnyProvider): boolean {
  return unowned.has(provider)
}

/** @internal Turns the user's map into providers. */
export function normalise(dependencies: object): Map<string, AnyProvider> {
  const providers = new Map<string, AnyProvider>()
  for (const [name, entry] of Object.entries(dependencies)) {
    if (isProvider(entry)) {
      providers.set(name, entry)
      continue
    }
    const value = provider('singleton', () => entry as unknown)
    unowned.add(value)
    providers.set(name, value)
  }
  return providers
}

/**
 * Resolves dependencies from a container you already have (awilix, tsyringe, inversify, Nest).
 * `createScope` runs once per top-level dispatch, `resolve` once per name and scope, and
 * `disposeScope` when the dispatch ends.
 *
 * @example
 * const dependencies = fromContainer<AppDeps, AwilixContainer>({
 *   names: ['uow', 'clock'],
 *   createScope: () => container.createScope(),
 *   resolve: (scope, name) => scope.resolve(name),
 *   disposeScope: (scope) => scope.dispose(),
 * })
 */
let containerCount = 0

export function fromContainer<D, S>(adapter: {
  readonly names: readonly (keyof D & string)[]
  readonly createScope: () => S | Promise<S>
  readonly resolve: (scope: S, name: keyof D & string) => unknown
  readonly disposeScope?: (scope: S) => void | Promise<void>
}): Dependencies<D> {
  // A key of its own per adapter, so two containers in one map never share a scope.
  const scopeKey = `__switchyardContainerScope${++containerCount}`
  const map: Record<string, AnyProvider> = {
    [scopeKey]: provider('scoped', async () => {
      const scope = await adapter.createScope()
      const dispose = adapter.disposeScope
      return dispose === undefined
        ? scope
        : { scope, [Symbol.asyncDispose]: async () => dispose(scope) }
    }),
  }
  for (const name of adapter.names) {
    map[name] = provider('scoped', async ({ get }) => {
      const holder = (await (get as (name: string) => Promise<unknown>)(scopeKey)) as
        { scope?: S } | S
      const scope =
        adapter.disposeScope === undefined ? (holder as S) : (holder as { scope: S }).scope
      return adapter.resolve(scope, name)
    })
    unowned.add(map[name])
  }
  return map as unknown as Dependencies<D>
}

/** @internal The error for a name nobody provides. */
export function missingDependency(name: string, neededBy: string): ConfigurationError {
  return new ConfigurationError(
    `${neededBy} needs the dependency "${name}", which the bus does not provide; add it to the dependencies option`,
    { code: ErrorCode.MissingDependency, details: { dependency: name, neededBy } },
  )
}

/** @internal The error for factories that need each other. */
export function dependencyCycle(path: readonly string[]): ConfigurationError {
  return new ConfigurationError(`Dependency factories form a cycle: ${path.join(' → ')}`, {
    code: ErrorCode.DependencyCycle,
    details: { cycle: path },
  })
}
