/**
 * The in-memory unit of work, for tests, demos and single-process services with nothing to
 * persist. An `InMemoryCollection` holds the committed aggregates (share one per aggregate type,
 * for the life of the app); each `InMemoryUnitOfWork` works on copies of them, so rolled-back
 * changes never leak, and commits all its changes at once with an optimistic version check.
 */
import { ConcurrencyError } from '../errors.js'
import { type AggregateRoot, RECORDED } from './aggregate.js'
import { TrackingRepository } from './repository.js'
import { UnitOfWork } from './unit-of-work.js'

/** Options of an {@link InMemoryCollection}. */
export interface InMemoryCollectionOptions<A, Id> {
  /** The id of an aggregate. */
  readonly id: (aggregate: A) => Id
  /**
   * Makes an independent copy. Default: a deep copy that keeps prototypes, own properties (symbol
   * keys too), arrays, Maps, Sets and Dates. Pass your own for aggregates with `#private` fields,
   * which no generic copy can reach.
   */
  readonly clone?: (aggregate: A) => A
}

/** The committed aggregates of one type. */
export class InMemoryCollection<A extends AggregateRoot, Id> {
  readonly #stored = new Map<Id, A>()
  readonly idOf: (aggregate: A) => Id
  readonly clone: (aggregate: A) => A

  constructor(options: InMemoryCollectionOptions<A, Id>) {
    this.idOf = options.id
    this.clone = options.clone ?? cloneDeep
  }

  /** Stores aggregates directly, as committed (test set-up). */
  seed(...aggregates: A[]): this {
    for (const aggregate of aggregates)
      this.#store(this.idOf(aggregate), aggregate, Math.max(1, aggregate.version))
    return this
  }

  /** A copy of the committed aggregate with this id. */
  find(id: Id): A | undefined {
    const stored = this.#stored.get(id)
    if (stored === undefined) return undefined
    const copy = this.clone(stored)
    copy.version = stored.version // a custom clone need not copy it
    return copy
  }

  /** Copies of every committed aggregate. */
  all(): A[] {
    return [...this.#stored.values()].map((a) => this.clone(a))
  }

  /** How many aggregates are committed. */
  get size(): number {
    return this.#stored.size
  }

  /** @internal The committed version of an id (0 when absent). */
  versionOf(id: Id): number {
    return this.#stored.get(id)?.version ?? 0
  }

  /** @internal Stores a committed copy. */
  put(id: Id, aggregate: A): void {
    this.#store(id, aggregate, aggregate.version)
  }

  // Stored copies never carry recorded events: those belong to the unit of work that recorded
  // them, and a later unit of work loading the copy must not release them again.
  #store(id: Id, aggregate: A, version: number): void {
    const copy = this.clone(aggregate)
    copy[RECORDED] = []
    copy.version = version
    this.#stored.set(id, copy)
  }
}

/** One unit of work's view of a collection. */
export class InMemoryRepository<A extends AggregateRoot, Id> extends TrackingRepository<A, Id> {
  readonly #added = new Set<A>()
  constructor(readonly collection: InMemoryCollection<A, Id>) {
    super()
  }

  protected idOf(aggregate: A): Id {
    return this.collection.idOf(aggregate)
  }

  protected load(id: Id): Promise<A | undefined> {
    return Promise.resolve(this.collection.find(id))
  }

  protected insert(aggregate: A): Promise<void> {
    this.#added.add(aggregate)
    return Promise.resolve()
  }

  /** @internal Throws ConcurrencyError when a seen aggregate's stored version moved. */
  check(): void {
    for (const aggregate of this.seen) {
      const id = this.idOf(aggregate)
      const stored = this.collection.versionOf(id)
      const expected = this.#added.has(aggregate) ? 0 : aggregate.version
      if (stored !== expected) {
        throw new ConcurrencyError(
          this.#added.has(aggregate)
            ? `An aggregate with id ${String(id)} already exists`
            : `Aggregate ${String(id)} changed since it was loaded (version ${expected}, now ${stored})`,
          { details: { id: String(id), expectedVersion: expected, actualVersion: stored } },
        )
      }
    }
  }

  /** @internal Stores every seen aggregate with its version moved on by one. */
  apply(): void {
    for (const aggregate of this.seen) {
      aggregate.version += 1
      this.collection.put(this.idOf(aggregate), aggregate)
    }
  }
}

/** What the in-memory unit of work accepts as a collection (any `InMemoryCollection<A, Id>`). */
export interface CollectionLike {
  readonly idOf: (aggregate: never) => unknown
  find(id: never): unknown
}

/** The repositories of an in-memory unit of work, one per collection. */
export type InMemoryRepositories<C extends Record<string, CollectionLike>> = {
  readonly [K in keyof C]: C[K] extends InMemoryCollection<infer A, infer Id>
    ? InMemoryRepository<A, Id>
    : never
}

/**
 * A unit of work over in-memory collections.
 *
 * @example
 * const products = new InMemoryCollection<Product, string>({ id: (p) => p.sku })
 * await using uow = new InMemoryUnitOfWork({ products })
 * const product = await uow.repositories.products.get('LAMP')
 */
export class InMemoryUnitOfWork<
  C extends Record<string, CollectionLike> = Record<string, CollectionLike>,
> extends UnitOfWork {
  /** One repository per collection, named as the collections were. */
  readonly repositories: InMemoryRepositories<C>
  readonly #list: InMemoryRepository<AggregateRoot, unknown>[]

  constructor(collections: C) {
    super()
    const repositories: Record<string, InMemoryRepository<AggregateRoot, unknown>> = {}
    for (const [name, collection] of Object.entries(collections)) {
      const repository = new InMemoryRepository(
        collection as unknown as InMemoryCollection<AggregateRoot, unknown>,
      )
      repository.onTrack = (aggregate) => this.tracked(aggregate)
      repositories[name] = repository
    }
    this.repositories = repositories as InMemoryRepositories<C>
    this.#list = Object.values(repositories)
  }

  protected override *participants(): Iterable<InMemoryRepository<AggregateRoot, unknown>> {
    yield* this.#list
  }

  // Check and apply in one synchronous step: no other unit of work can commit in between.
  protected commitTransaction(): Promise<void> {
    for (const repository of this.#list) repository.check()
    for (const repository of this.#list) repository.apply()
    return Promise.resolve()
  }

  protected rollbackTransaction(): Promise<void> {
    return Promise.resolve()
  }
}

/** A deep copy that keeps prototypes (class instances stay instances). */
export function cloneDeep<T>(value: T, seen = new Map<object, unknown>()): T {
  if (typeof value !== 'object' || value === null) return value
  const known = seen.get(value)
  if (known !== undefined) return known as T
  if (value instanceof Date) return new Date(value.getTime()) as T
  if (Array.isArray(value)) {
    const copy: unknown[] = []
    seen.set(value, copy)
    for (const item of value) copy.push(cloneDeep(item, seen))
    return copy as T
  }
  if (value instanceof Map) {
    const copy = new Map<unknown, unknown>()
    seen.set(value, copy)
    for (const [k, v] of value) copy.set(cloneDeep(k, seen), cloneDeep(v, seen))
    return copy as T
  }
  if (value instanceof Set) {
    const copy = new Set<unknown>()
    seen.set(value, copy)
    for (const v of value) copy.add(cloneDeep(v, seen))
    return copy as T
  }
  const copy = Object.create(Object.getPrototypeOf(value) as object | null) as Record<
    PropertyKey,
    unknown
  >
  seen.set(value, copy)
  for (const key of Reflect.ownKeys(value)) {
    const descriptor = Object.getOwnPropertyDescriptor(value, key)!
    if ('value' in descriptor) descriptor.value = cloneDeep(descriptor.value as unknown, seen)
    Object.defineProperty(copy, key, descriptor)
  }
  return copy as T
}
