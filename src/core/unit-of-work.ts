/**
 * The unit of work: one business transaction. Aggregates loaded or added through its repositories
 * are saved together on `commit()`, and their recorded events are released only then. Rollback
 * (explicit, on a failed commit, or on disposal of work never committed) discards them.
 *
 * Lifecycle hooks let integrations join the transaction: `beforeCommit` runs inside the still-open
 * transaction, after the repositories flushed, with the events about to be committed — the
 * outbox appends integration events there so they commit atomically with the business data.
 *
 * Commit sequence: flush repositories → `beforeCommit` hooks → commit the transaction → state
 * `committed` → collect the events → `committed` hooks. A failure before the transaction commits
 * rolls everything back and rethrows.
 */
import { ConfigurationError, ErrorCode } from '../errors.js'
import { type AggregateRoot, drainRecorded, peekRecorded, RECORDED } from './aggregate.js'
import type { Event } from './message.js'
import type { Repository } from './repository.js'
import { isThenable } from './thenable.js'

const UNIT_OF_WORK: unique symbol = Symbol.for('switchyard.unit-of-work')

/**
 * @internal Set by the bus on work linked to a handler invocation: links each event to the
 * handler's message (correlation and causation ids) before `beforeCommit`, so what the outbox
 * stores carries the same links as the events released in process.
 */
export const LINK_EVENTS: unique symbol = Symbol('switchyard.link-events')

/** Where a unit of work is in its life. */
export type UnitOfWorkState = 'open' | 'committed' | 'rolled-back'

/** What each lifecycle hook receives. */
export interface UnitOfWorkHooks {
  /** An aggregate was loaded or added. */
  added: { readonly aggregate: AggregateRoot }
  /** The transaction is still open; throw to abort the commit. */
  beforeCommit: { readonly events: readonly Event[] }
  /** The transaction committed; these are its events, in recording order. */
  committed: { readonly events: readonly Event[] }
  /** The work was rolled back; its events were discarded. */
  rolledBack: { readonly discarded: readonly Event[] }
}

/** A lifecycle hook. */
export type UnitOfWorkHook<P extends keyof UnitOfWorkHooks> = (
  info: UnitOfWorkHooks[P] & { readonly unitOfWork: UnitOfWork },
) => void | Promise<void>

/** True for a unit of work (checked by shape, across package copies). */
export function isUnitOfWork(value: unknown): value is UnitOfWork {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { [UNIT_OF_WORK]?: unknown })[UNIT_OF_WORK] === true
  )
}

/**
 * The base of every unit of work. Subclasses say which repositories take part and how to commit
 * and roll back the underlying transaction.
 */
export abstract class UnitOfWork implements AsyncDisposable {
  readonly [UNIT_OF_WORK] = true
  #state: UnitOfWorkState = 'open'
  /** @internal See {@link LINK_EVENTS}. */
  public [LINK_EVENTS]: ((event: Event) => Event) | undefined = undefined
  readonly #hooks: { [P in keyof UnitOfWorkHooks]: UnitOfWorkHook<P>[] } = {
    added: [],
    beforeCommit: [],
    committed: [],
    rolledBack: [],
  }

  /** The repositories whose `seen` aggregates belong to this work. */
  protected abstract participants(): Iterable<Repository>
  /** Writes pending changes inside the open transaction: by default, each repository's `flush()`. */
  protected async flush(): Promise<void> {
    for (const repository of this.participants()) await repository.flush?.()
  }
  /** Commits the underlying transaction. */
  protected abstract commitTransaction(): Promise<void>
  /** Rolls the underlying transaction back. */
  protected abstract rollbackTransaction(): Promise<void>

  /** `open`, `committed` or `rolled-back`. */
  get state(): UnitOfWorkState {
    return this.#state
  }

  /** Subscribes to a lifecycle hook; returns a function that unsubscribes. */
  on<P extends keyof UnitOfWorkHooks>(phase: P, hook: UnitOfWorkHook<P>): () => void {
    const list = this.#hooks[phase] as UnitOfWorkHook<P>[]
    list.push(hook)
    return () => {
      const at = list.indexOf(hook)
      if (at >= 0) list.splice(at, 1)
    }
  }

  /** Saves every change and releases the recorded events. Rolls back and rethrows on failure. */
  async commit(): Promise<void> {
    this.assertOpen('commit')
    try {
      if (this.#mayFlush()) await this.flush()
      const beforeCommit = this.#hooks.beforeCommit
      if (beforeCommit.length !== 0) {
        const events = this.#linked(peekRecorded(this.#seen()))
        for (const hook of beforeCommit) await hook({ events, unitOfWork: this })
      }
      await this.commitTransaction()
    } catch (error) {
      await this.#rollback()
      throw error
    }
    this.#state = 'committed'
    const events = this.#linked(drainRecorded(this.#seen()))
    const ran = this.#run('committed', { events, unitOfWork: this })
    if (ran !== undefined) await ran
  }

  /** Discards every change and every recorded event. Idempotent once rolled back. */
  async rollback(): Promise<void> {
    if (this.#state === 'rolled-back') return
    this.assertOpen('rollback')
    await this.#rollback()
  }

  /**
   * Takes the events recorded by the seen aggregates, in recording order, and clears them. The bus
   * does this for you on commit; call it yourself only when driving the work by hand.
   */
  collectNewEvents(): Event[] {
    return drainRecorded(this.#seen())
  }

  /** Runs `work`, commits when it resolves, rolls back when it throws. */
  async transaction<R>(work: (unitOfWork: this) => R | Promise<R>): Promise<R> {
    this.assertOpen('transaction')
    try {
      const result = await work(this)
      if (this.#state === 'open') await this.commit()
      return result
    } catch (error) {
      if (this.#state === 'open') await this.#rollback()
      throw error
    }
  }

  /** `await using uow = …`: rolls back whatever was not committed. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#state === 'open') await this.#rollback()
  }

  /** Subclasses call (and await) this when a repository of theirs tracks an aggregate. */
  protected async tracked(aggregate: AggregateRoot): Promise<void> {
    for (const hook of this.#hooks.added) await hook({ aggregate, unitOfWork: this })
  }

  /** Throws `SWITCHYARD_UNIT_OF_WORK_CLOSED` unless the work is open. */
  protected assertOpen(action: string): void {
    if (this.#state !== 'open') {
      throw new ConfigurationError(
        `Cannot ${action}: this unit of work already ${this.#state === 'committed' ? 'committed' : 'rolled back'}; start a new one for new work`,
        { code: ErrorCode.UnitOfWorkClosed, details: { state: this.#state } },
      )
    }
  }

  #linked(events: Event[]): Event[] {
    const link = this[LINK_EVENTS]
    return link === undefined ? events : events.map(link)
  }

  *#seen(): Iterable<AggregateRoot> {
    for (const repository of this.participants()) yield* repository.seen
  }

  async #rollback(): Promise<void> {
    this.#state = 'rolled-back'
    const discarded: Event[] = []
    for (const aggregate of this.#seen()) {
      for (const r of aggregate[RECORDED]) discarded.push(r.event)
      aggregate[RECORDED] = []
    }
    try {
      await this.rollbackTransaction()
    } finally {
      await this.#run('rolledBack', { discarded, unitOfWork: this })
    }
  }

  /**
   * Runs every hook of `phase`, each after the previous one settled, and throws what they threw
   * (one error, or an AggregateError). Synchronous hooks run without a wait: the result is a
   * promise only once a hook returned one.
   */
  #run<P extends 'committed' | 'rolledBack'>(
    phase: P,
    info: Parameters<UnitOfWorkHook<P>>[0],
  ): Promise<void> | undefined {
    const hooks = this.#hooks[phase] as UnitOfWorkHook<P>[]
    let errors: unknown[] | undefined
    for (let i = 0; i < hooks.length; i++) {
      let result: unknown
      try {
        result = hooks[i]!(info)
      } catch (error) {
        ;(errors ??= []).push(error)
        continue
      }
      if (isThenable(result)) return this.#runAsync(phase, info, hooks, i, result, errors)
    }
    return hookErrors(phase, errors)
  }

  async #runAsync<P extends 'committed' | 'rolledBack'>(
    phase: P,
    info: Parameters<UnitOfWorkHook<P>>[0],
    hooks: UnitOfWorkHook<P>[],
    at: number,
    pending: PromiseLike<unknown>,
    failed: unknown[] | undefined,
  ): Promise<void> {
    let errors = failed
    try {
      await pending
    } catch (error) {
      ;(errors ??= []).push(error)
    }
    for (let i = at + 1; i < hooks.length; i++) {
      try {
        await hooks[i]!(info)
      } catch (error) {
        ;(errors ??= []).push(error)
      }
    }
    hookErrors(phase, errors)
  }

  /** False when `flush()` is the default one and no participant has a `flush`: nothing to write. */
  #mayFlush(): boolean {
    if (this.flush !== DEFAULT_FLUSH) return true
    for (const repository of this.participants()) if (repository.flush !== undefined) return true
    return false
  }
}

/** Throws the errors of a phase's hooks, if any. */
function hookErrors(phase: string, errors: unknown[] | undefined): undefined {
  if (errors === undefined) return undefined
  if (errors.length === 1) throw errors[0]
  throw new AggregateError(errors, `${errors.length} ${phase} hooks of a unit of work failed`)
}

// eslint-disable-next-line @typescript-eslint/unbound-method -- compared, never called
const DEFAULT_FLUSH = UnitOfWork.prototype['flush']
