/**
 * @internal Resolves providers by lifetime, applies test overrides, and disposes what it made.
 *
 * Rules it enforces at resolution:
 * - a factory may not depend on something that lives shorter than itself (a singleton on a
 *   scoped or transient value, a scoped one on a transient): it would keep a disposed value;
 * - a unit of work comes only from a transient provider (each handler invocation needs its own);
 * - values the bus did not make (plain values, values from your container) are never disposed by it.
 */
import { ConfigurationError, ErrorCode } from '../errors.js'
import {
  type AnyProvider,
  dependencyCycle,
  type Factory,
  isProvider,
  isUnowned,
  type Lifetime,
  missingDependency,
  normalise,
  type Provider,
} from './dependencies.js'
import { isUnitOfWork, UnitOfWork } from './unit-of-work.js'

/** Per top-level dispatch: scoped values and what to dispose at its end. */
export interface ScopeCache {
  scoped: Map<AnyProvider, Promise<unknown>> | undefined
  disposables: unknown[] | undefined
}

/** Per handler invocation: transient values (to dispose at its end) and its units of work. */
export interface InvocationCache {
  readonly transients: unknown[]
}

const RANK: Record<Lifetime, number> = { transient: 0, scoped: 1, singleton: 2 }

interface Step {
  readonly name: string
  readonly lifetime: Lifetime
}

export class DependencyContainer {
  readonly #providers: Map<string, AnyProvider>
  /** Overrides per name, newest last; the last one is in force. */
  readonly #overrides = new Map<string, AnyProvider[]>()
  readonly #singletons = new Map<AnyProvider, Promise<unknown>>()
  readonly #made: unknown[] = []

  constructor(dependencies: object) {
    this.#providers = normalise(dependencies)
  }

  has(name: string): boolean {
    return this.#providers.has(name) || (this.#overrides.get(name)?.length ?? 0) > 0
  }

  #current(name: string): AnyProvider | undefined {
    return this.#overrides.get(name)?.at(-1) ?? this.#providers.get(name)
  }

  /** Replaces a dependency until the returned handle is disposed (in any order). */
  override(
    name: string,
    replacement: Factory<unknown, unknown> | Provider<unknown, unknown>,
  ): Disposable {
    const current = this.#current(name)
    if (current === undefined) throw missingDependency(name, 'bus.override()')
    let next: AnyProvider
    if (isProvider(replacement)) next = replacement
    else if (typeof replacement === 'function') next = { ...current, factory: replacement }
    else
      throw new ConfigurationError(
        `bus.override("${name}", …) takes a factory function or a provider`,
      )
    const stack = this.#overrides.get(name) ?? []
    stack.push(next)
    this.#overrides.set(name, stack)
    return {
      [Symbol.dispose]: () => {
        const at = stack.indexOf(next)
        if (at >= 0) stack.splice(at, 1)
      },
    }
  }

  resolve(
    name: string,
    scope: ScopeCache,
    invocation: InvocationCache,
    path: readonly Step[] = [],
  ): Promise<unknown> {
    if (path.some((step) => step.name === name))
      return Promise.reject(dependencyCycle([...path.map((s) => s.name), name]))
    const provider = this.#current(name)
    const parent = path.at(-1)
    if (provider === undefined)
      return Promise.reject(
        missingDependency(
          name,
          parent === undefined ? 'a handler' : `the factory of "${parent.name}"`,
        ),
      )
    if (parent !== undefined && RANK[provider.lifetime] < RANK[parent.lifetime]) {
      return Promise.reject(
        new ConfigurationError(
          `The ${parent.lifetime} dependency "${parent.name}" asks for the ${provider.lifetime} "${name}", which would be disposed while "${parent.name}" still holds it; make "${name}" live at least as long, or resolve it in the handler`,
          {
            code: ErrorCode.CaptiveDependency,
            details: {
              dependency: parent.name,
              lifetime: parent.lifetime,
              needs: name,
              needsLifetime: provider.lifetime,
            },
          },
        ),
      )
    }
    const context = { get: this.#getter(scope, invocation, path, name, provider.lifetime) } as never
    switch (provider.lifetime) {
      case 'singleton': {
        let value = this.#singletons.get(provider)
        if (value === undefined) {
          const owned = !isUnowned(provider)
          value = makeShared(provider, context, name).then((made) => {
            if (owned) this.#made.push(made)
            return made
          })
          // A failed factory is not cached: the next dispatch tries again.
          value.catch(() => this.#singletons.delete(provider))
          this.#singletons.set(provider, value)
        }
        return value
      }
      case 'scoped': {
        const cache = (scope.scoped ??= new Map<AnyProvider, Promise<unknown>>())
        let value = cache.get(provider)
        if (value === undefined) {
          const owned = !isUnowned(provider)
          value = makeShared(provider, context, name).then((made) => {
            if (owned) (scope.disposables ??= []).push(made)
            return made
          })
          cache.set(provider, value)
        }
        return value
      }
      case 'transient':
        return makeTransient(provider, context, invocation)
    }
  }

  /** The `get` a factory is given: resolves what it asks for as a step after `name`. */
  #getter(
    scope: ScopeCache,
    invocation: InvocationCache,
    path: readonly Step[],
    name: string,
    lifetime: Lifetime,
  ): (other: string) => Promise<unknown> {
    let chain: readonly Step[] | undefined // made on the first call: most factories never call it
    return (other) =>
      this.resolve(other, scope, invocation, (chain ??= [...path, { name, lifetime }]))
  }

  /** Disposes every singleton the bus made, newest first. */
  async close(onError: (error: unknown) => void): Promise<void> {
    const made = this.#made.splice(0)
    this.#singletons.clear()
    await disposeAll(made, onError)
  }
}

/** Makes a singleton or scoped value: never a unit of work, which must be transient. */
async function makeShared(provider: AnyProvider, context: never, name: string): Promise<unknown> {
  const made = await provider.factory(context)
  if (isUnitOfWork(made)) {
    throw new ConfigurationError(
      `The unit of work "${name}" must be provided with transient(): each handler invocation needs its own`,
      {
        details: { dependency: name, lifetime: provider.lifetime },
      },
    )
  }
  return made
}

/** Makes a transient value and keeps it for disposal at the end of the invocation. */
async function makeTransient(
  provider: AnyProvider,
  context: never,
  invocation: InvocationCache,
): Promise<unknown> {
  const made = await provider.factory(context)
  invocation.transients.push(made)
  return made
}

/**
 * True when disposing `value` would do something: it has `Symbol.asyncDispose` or
 * `Symbol.dispose`, and is not a unit of work that already ended (whose own dispose only rolls
 * back open work).
 */
export function needsDisposal(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const asyncDispose = (value as Partial<AsyncDisposable>)[Symbol.asyncDispose]
  if (typeof asyncDispose === 'function')
    return !(asyncDispose === UNIT_OF_WORK_DISPOSE && (value as UnitOfWork).state !== 'open')
  return typeof (value as Partial<Disposable>)[Symbol.dispose] === 'function'
}

const UNIT_OF_WORK_DISPOSE = UnitOfWork.prototype[Symbol.asyncDispose]

/** Disposes values that have `Symbol.asyncDispose` or `Symbol.dispose`, newest first. */
export async function disposeAll(
  values: readonly unknown[],
  onError: (error: unknown) => void,
): Promise<void> {
  for (let i = values.length - 1; i >= 0; i--) {
    const value = values[i]
    if (typeof value !== 'object' || value === null) continue
    try {
      const asyncDispose = (value as Partial<AsyncDisposable>)[Symbol.asyncDispose]
      if (typeof asyncDispose === 'function') await asyncDispose.call(value)
      else {
        const dispose = (value as Partial<Disposable>)[Symbol.dispose]
        if (typeof dispose === 'function') dispose.call(value)
      }
    } catch (error) {
      onError(error)
    }
  }
}
