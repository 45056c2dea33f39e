/** @internal True for a promise or any object with a `then` method (what `await` would wait on). */
export const isThenable = (value: unknown): value is PromiseLike<unknown> =>
  typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
