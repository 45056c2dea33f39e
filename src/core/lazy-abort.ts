/**
 * @internal An abort signal that costs nothing until someone reads it. `timeout()` installs one per
 * attempt: most handlers never look at `ctx.signal`, and an AbortController (an EventTarget) per
 * dispatch was most of the middleware's cost. The controller is made on first read, or when the
 * timeout fires and someone reads it afterwards; an outer signal's abort is honoured either way.
 */
export type SignalSource = AbortSignal | LazyAbort | undefined

/** The signal of a source, made if needed. */
export function signalOf(source: SignalSource): AbortSignal | undefined {
  return source instanceof LazyAbort ? source.signal : source
}

export class LazyAbort {
  #controller: AbortController | undefined
  #reason: unknown
  #aborted = false
  #outerSignal: AbortSignal | undefined
  #onOuterAbort: (() => void) | undefined

  constructor(private readonly outer: SignalSource) {}

  get signal(): AbortSignal {
    if (this.#controller !== undefined) return this.#controller.signal
    const controller = (this.#controller = new AbortController())
    const outer = signalOf(this.outer)
    if (this.#aborted) controller.abort(this.#reason)
    else if (outer?.aborted === true) controller.abort(outer.reason)
    else if (outer !== undefined) {
      this.#outerSignal = outer
      this.#onOuterAbort = () => controller.abort(outer.reason)
      outer.addEventListener('abort', this.#onOuterAbort, { once: true })
    }
    return controller.signal
  }

  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
  }

  /** Stops listening to the outer signal. */
  dispose(): void {
    if (this.#onOuterAbort !== undefined)
      this.#outerSignal?.removeEventListener('abort', this.#onOuterAbort)
    this.#onOuterAbort = undefined
  }
}
