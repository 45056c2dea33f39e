/**
 * Aggregates record domain events as they change; the unit of work collects them and, only once
 * the work committed, releases them to the bus. `version` is the optimistic-concurrency token: a
 * repository that finds it moved between load and save raises `ConcurrencyError` (retryable).
 */
import type { Event } from './message.js'

/** @internal Where an aggregate keeps its recorded events (a symbol, so it never clashes). */
export const RECORDED: unique symbol = Symbol('switchyard.recorded')

/** @internal A recorded event and its place in the order of recording across aggregates. */
export interface Recorded<E extends Event = Event> {
  readonly sequence: number
  readonly event: E
}

let sequence = 0

/** The base of aggregates. Subclasses call `this.record(event)` whenever something happened. */
export abstract class AggregateRoot<E extends Event = Event> {
  /** The version loaded from storage (0 for an aggregate not stored yet). */
  version = 0;
  /** @internal */
  [RECORDED]: Recorded<E>[] = []

  /** Records a domain event; it is published only if the unit of work commits. */
  protected record(event: E): void {
    this[RECORDED].push({ sequence: ++sequence, event })
  }

  /** Events recorded and not yet collected, oldest first. */
  get pendingEvents(): readonly E[] {
    return this[RECORDED].map((r) => r.event)
  }
}

/** @internal Takes the recorded events out of the given aggregates, in recording order. */
export function drainRecorded(aggregates: Iterable<AggregateRoot>): Event[] {
  const all: Recorded[] = []
  for (const aggregate of aggregates) {
    const recorded = aggregate[RECORDED]
    if (recorded.length === 0) continue
    for (const r of recorded) all.push(r)
    aggregate[RECORDED] = []
  }
  if (all.length > 1) all.sort((a, b) => a.sequence - b.sequence)
  return all.map((r) => r.event)
}

/** @internal Reads the recorded events of the given aggregates without taking them. */
export function peekRecorded(aggregates: Iterable<AggregateRoot>): Event[] {
  const all: Recorded[] = []
  for (const aggregate of aggregates) for (const r of aggregate[RECORDED]) all.push(r)
  all.sort((a, b) => a.sequence - b.sequence)
  return all.map((r) => r.event)
}
