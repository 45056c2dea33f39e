/**
 * @internal Resolves providers by lifetime, applies test overrides, and disposes what it made.
 */
import { ConfigurationError } from '../errors.js'
import {
  type AnyProvider,
  dependencyCycle,
  type Factory,
  isProvider,
  missingDependency,
  normalise,
  type Provider,
} from './dependencies.js'

/** Per top-level dispatch: scoped values and what to dispose at its end. */
export interface ScopeCache {
  scoped: Map<AnyProvider, Promise<unknown>> | undefined
  disposables: unknown[] | undefined
}

/** Per handler invocation: transient values to dispose at its end. */
export interface InvocationCache {
  readonly transients: unknown[]
}

export class DependencyContainer {
  readonly #providers: Map<string, AnyProvider>
  readonly #overrides = new Map<string, AnyProvider>()
  readonly #singletons = new Map<AnyProvider, Promise<unknown>>()
  readonly #made: unknown[] = []

  constructor(dependencies: object) {
    this.#providers = normalise(dependencies)
  }

  has(name: string): boolean {
    return this.#overrides.has(name) || this.#providers.has(name)
  }

  /** Replaces a dependency until the returned handle is disposed. */
  override(
    name: string,
    replacement: Factory<unknown, unknown> | Provider<unknown, unknown>,
  ): Disposable {
    const current = this.#overrides.get(name) ?? this.#providers.get(name)
    if (current === undefined) throw missingDependency(name, 'bus.override()')
    let next: AnyProvider
    if (isProvider(replacement)) next = replacement
    else if (typeof replacement === 'function') next = { ...current, factory: replacement }
    else
      throw new ConfigurationError(
        `bus.override("${name}", …) takes a factory function or a provider`,
      )
    const previous = this.#overrides.get(name)
    this.#overrides.set(name, next)
    let undone = false
    return {
      [Symbol.dispose]: () => {
        if (undone) return
        undone = true
        if (this.#overrides.get(name) !== next) return // a later override is in force; leave it
        if (previous === undefined) this.#overrides.delete(name)
        else this.#overrides.set(name, previous)
      },
    }
  }

  resolve(
    name: string,
    scope: ScopeCache,
    invocation: InvocationCache,
    path: readonly string[] = [],
  ): Promise<unknown> {
    if (path.includes(name)) return Promise.reject(dependencyCycle([...path, name]))
    const provider = this.#overrides.get(name) ?? this.#providers.get(name)
    if (provider === undefined)
      return Promise.reject(missingDependency(name, path.at(-1) ?? 'a handler'))
    const chain = [...path, name]
    const make = async (): Promise<unknown> =>
      await provider.factory({
        get: (other: string) => this.resolve(other, scope, invocation, chain),
      } as never)
    switch (provider.lifetime) {
      case 'singleton': {
        let value = this.#singletons.get(provider)
        if (value === undefined) {
          value = make().then((made) => {
            this.#made.push(made)
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
          value = make().then((made) => {
            ;(scope.disposables ??= []).push(made)
            return made
          })
          cache.set(provider, value)
        }
        return value
      }
      case 'transient':
        return make().then((made) => {
          invocation.transients.push(made)
          return made
        })
    }
  }

  /** Disposes every singleton made, newest first. */
  async close(onError: (error: unknown) => void): Promise<void> {
    const made = this.#made.splice(0)
    this.#singletons.clear()
    await disposeAll(made, onError)
  }
}

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
