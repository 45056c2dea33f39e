/**
 * Repositories load and add aggregates and remember every one they handed out (`seen`), so the
 * unit of work can check and save them and collect their events.
 */
import type { AggregateRoot } from './aggregate.js'

/** What the unit of work needs from a repository. */
export interface Repository<A extends AggregateRoot = AggregateRoot> {
  /** Every aggregate loaded or added through this repository in its unit of work. */
  readonly seen: ReadonlySet<A>
  /**
   * Writes the changes of the seen aggregates inside the open transaction, checking their
   * `version` (throw `ConcurrencyError` when it moved). The unit of work calls it before commit.
   */
  flush?(): Promise<void>
}

/** A repository of aggregates addressed by id. */
export interface AggregateRepository<A extends AggregateRoot, Id> extends Repository<A> {
  /** The aggregate with this id, or undefined. Loading it twice gives the same instance. */
  get(id: Id): Promise<A | undefined>
  /** Adds a new aggregate, saved when the unit of work commits. */
  add(aggregate: A): Promise<void>
}

/**
 * A base for your own repositories: implement `load` and `insert`, and `get`/`add` keep `seen`
 * and an identity map (one instance per id per unit of work) for you.
 */
export abstract class TrackingRepository<
  A extends AggregateRoot,
  Id,
> implements AggregateRepository<A, Id> {
  readonly #seen = new Set<A>()
  readonly #byId = new Map<Id, A>()
  /**
   * Called (and awaited) for each aggregate the repository starts tracking. A unit of work sets it
   * to run its `added` hooks: `repository.onTrack = (a) => this.tracked(a)`.
   */
  onTrack: ((aggregate: A) => void | Promise<void>) | undefined

  get seen(): ReadonlySet<A> {
    return this.#seen
  }

  async get(id: Id): Promise<A | undefined> {
    const known = this.#byId.get(id)
    if (known !== undefined) return known
    const aggregate = await this.load(id)
    if (aggregate !== undefined) await this.#track(id, aggregate)
    return aggregate
  }

  async add(aggregate: A): Promise<void> {
    await this.insert(aggregate)
    await this.#track(this.idOf(aggregate), aggregate)
  }

  /** The id of an aggregate. */
  protected abstract idOf(aggregate: A): Id
  /** Loads an aggregate from storage, with its stored `version`. */
  protected abstract load(id: Id): Promise<A | undefined>
  /** Prepares a new aggregate for saving (or writes it inside the open transaction). */
  protected abstract insert(aggregate: A): Promise<void>

  async #track(id: Id, aggregate: A): Promise<void> {
    this.#byId.set(id, aggregate)
    if (!this.#seen.has(aggregate)) {
      this.#seen.add(aggregate)
      await this.onTrack?.(aggregate)
    }
  }
}
