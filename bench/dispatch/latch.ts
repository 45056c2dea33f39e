/**
 * What every event handler of the benchmark does, in both buses: add the payload to a total and
 * count the call. When an awaiter is armed, the `expected`-th call releases it — that is how the
 * @nestjs/cqrs EventBus case waits for its three handlers (its `publish()` is fire-and-forget).
 * Our bus's `publish()` already waits, so there nothing is armed and `hit()` only counts; the
 * handler bodies stay identical on both sides.
 */
export class Latch {
  /** Calls since the last release. */
  count = 0
  /** Every call ever made, for the sanity checks. */
  calls = 0
  /** Sum of payloads seen, so the work cannot be optimised away. */
  total = 0
  #release: (() => void) | undefined = undefined

  constructor(readonly expected: number) {}

  /** Arms the latch: `release` is called once `expected` more handlers have run. */
  arm(release: () => void): void {
    this.#release = release
  }

  hit(n: number): void {
    this.total += n
    this.calls++
    if (++this.count === this.expected) {
      this.count = 0
      const release = this.#release
      if (release !== undefined) {
        this.#release = undefined
        release()
      }
    }
  }
}

/** Consumes results so that no engine can drop the work that produced them. */
export const sink = { value: 0 }
