/**
 * Partial deep matching for test assertions: every property named in `expected` must match;
 * others are ignored. Arrays match element by element and must have the same length.
 */
export function matches(actual: unknown, expected: unknown): boolean {
  if (Object.is(actual, expected)) return true
  if (typeof expected !== 'object' || expected === null) return false
  if (typeof actual !== 'object' || actual === null) return false
  if (expected instanceof Date)
    return actual instanceof Date && actual.getTime() === expected.getTime()
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) &&
      actual.length === expected.length &&
      expected.every((item, i) => matches(actual[i], item))
    )
  }
  return Object.entries(expected).every(([key, value]) =>
    matches((actual as Record<string, unknown>)[key], value),
  )
}

/** A short rendering of a value for assertion messages. */
export function show(value: unknown): string {
  try {
    const text = JSON.stringify(value)
    return text.length > 300 ? `${text.slice(0, 300)}…` : text
  } catch {
    return String(value)
  }
}

/** Every property optional, all the way down. */
export type DeepPartial<T> = T extends object ? { readonly [K in keyof T]?: DeepPartial<T[K]> } : T
