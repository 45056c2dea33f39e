/**
 * @internal The state of one top-level dispatch: the FIFO queue of follow-up events, the message
 * count for the loop guard, and the event-handler failures collected on the way.
 */
import type { SwitchyardError } from '../errors.js'
import { LoopDetectedError } from '../errors.js'
import type { ScopeCache } from './container.js'
import type { Event, Message } from './message.js'

export class DispatchScope implements ScopeCache {
  /** Scoped dependency values of this dispatch, and what to dispose when it ends. */
  scoped: ScopeCache['scoped'] = undefined
  disposables: unknown[] | undefined = undefined
  /** Follow-up events in release order; `head` is the next to handle. Never shifted. */
  readonly queue: Event[] = []
  head = 0
  /** Messages handled so far in this dispatch, the root included. */
  count = 1
  /** Nested commands and queries, kept for the loop report. */
  nested: Message[] | undefined = undefined
  failures: SwitchyardError[] | undefined = undefined
  /** Collect event-handler failures and reject the dispatch with them (else: isolate and log). */
  rejectEventErrors = false
  /** Set once the loop guard fired: the dispatch stops, whatever handlers catch. */
  loopError: LoopDetectedError | undefined = undefined

  constructor(
    readonly root: Message,
    readonly signal: AbortSignal | undefined,
    readonly maxIterations: number,
  ) {}

  release(events: readonly Event[]): void {
    for (const event of events) this.queue.push(event)
  }

  /** Counts one more handled message; throws the loop error past the limit. */
  count1(message: Message): void {
    if (this.loopError !== undefined) throw this.loopError
    if (++this.count > this.maxIterations) {
      this.loopError = this.#loopError(message)
      throw this.loopError
    }
  }

  #loopError(current: Message): LoopDetectedError {
    const byId = new Map<string, Message>([[this.root.id, this.root]])
    for (const m of this.queue) byId.set(m.id, m)
    for (const m of this.nested ?? []) byId.set(m.id, m)
    const chain: string[] = []
    let at: Message | undefined = current
    while (at !== undefined && chain.length <= this.maxIterations) {
      chain.push(at.type)
      at = at.causationId === undefined ? undefined : byId.get(at.causationId)
    }
    chain.reverse()
    const cycle = firstCycle(chain)
    const cycleText =
      cycle.length > 0
        ? `the cycle is ${cycle.join(' → ')}`
        : `no cycle in the causation chain (${chain.slice(-5).join(' → ')}); a handler fans out too many messages`
    return new LoopDetectedError(
      `Loop detected: dispatching "${this.root.type}" handled more than ${this.maxIterations} messages; ${cycleText}. Break the cycle, or raise maxIterations if this many messages are intended`,
      cycle,
      { details: { rootType: this.root.type, maxIterations: this.maxIterations, cycle } },
    )
  }
}

/** The first repetition in a causation chain, from where it entered: [A, B, C, B, C] → [B, C, B]. */
function firstCycle(chain: readonly string[]): string[] {
  for (let i = 0; i < chain.length; i++) {
    const again = chain.indexOf(chain[i]!, i + 1)
    if (again >= 0) return chain.slice(i, again + 1)
  }
  return []
}
