/**
 * Timing and heap helpers of the dispatch benchmark. No dependencies: `process.hrtime.bigint()`
 * for time, `process.memoryUsage().heapUsed` after a forced `global.gc()` for the heap.
 */

/** One benchmark case: a label and a loop that awaits `n` dispatches one after another. */
export interface BenchCase {
  readonly id: string
  readonly label: string
  /**
   * Runs `n` sequential dispatches. Each case has its own loop (not a shared loop calling a
   * closure), so every call site stays monomorphic and no case pays for another's shape.
   */
  readonly run: (n: number) => Promise<void>
  /** Whether the 1M-dispatch heap run is done for this case. */
  readonly heap: boolean
}

/** Timings of one case over all rounds. */
export interface CaseTimings {
  readonly nsPerOp: number[]
}

/** Heap figures of the long run of one case, in bytes. */
export interface HeapResult {
  readonly ops: number
  readonly before: number
  readonly mid: number
  readonly after: number
}

/** Forces a full collection when `--expose-gc` is on; returns whether it could. */
export function collect(): boolean {
  const gc = globalThis.gc
  if (gc === undefined) return false
  // Twice: the first pass may only queue finalisation work that the second one frees.
  gc()
  gc()
  return true
}

export function heapUsed(): number {
  return process.memoryUsage().heapUsed
}

/** Times `n` dispatches of a case, in nanoseconds per dispatch. */
export async function timeRound(c: BenchCase, n: number): Promise<number> {
  const start = process.hrtime.bigint()
  await c.run(n)
  const end = process.hrtime.bigint()
  return Number(end - start) / n
}

/**
 * Runs every case `rounds` times, interleaved: round r runs all cases in an order rotated by r,
 * so drift in machine load (thermal, other processes) is spread over every case instead of
 * landing on whichever case runs last. A full GC precedes each timed round (outside the timing),
 * so no case pays for collecting another's garbage; then untimed dispatches for `rewarmMs`,
 * because a full (mark-compact) GC clears the hidden classes of objects that are all dead at that
 * moment, and V8 deoptimises the code that embedded them ("weak objects"): a case that allocates
 * per dispatch would otherwise time its own re-optimisation (TurboFan recompiles on a background
 * thread, 5–25 ms here), which is why the re-warm is measured in time, not in dispatches.
 */
export async function timeInterleaved(
  cases: readonly BenchCase[],
  rounds: number,
  n: number,
  rewarmMs: number,
  onRound?: (round: number) => void,
): Promise<Map<string, CaseTimings>> {
  const results = new Map<string, CaseTimings>(cases.map((c) => [c.id, { nsPerOp: [] }]))
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < cases.length; k++) {
      const c = cases[(k + r) % cases.length]!
      collect()
      await rewarm(c, rewarmMs)
      results.get(c.id)!.nsPerOp.push(await timeRound(c, n))
    }
    onRound?.(r)
  }
  return results
}

/** Runs untimed dispatches, in chunks of 1,000, for at least `ms` milliseconds. */
export async function rewarm(c: BenchCase, ms: number): Promise<void> {
  const until = performance.now() + ms
  do await c.run(1000)
  while (performance.now() < until)
}

/**
 * The long heap run: GC, read heapUsed, `ops` dispatches in two halves with a GC and a reading
 * in between, GC, read again. Only live (retained) memory survives a full GC, so the deltas are
 * what the dispatches leave behind, not garbage waiting for collection.
 */
export async function heapRun(c: BenchCase, ops: number): Promise<HeapResult> {
  const half = Math.floor(ops / 2)
  collect()
  const before = heapUsed()
  await c.run(half)
  collect()
  const mid = heapUsed()
  await c.run(ops - half)
  collect()
  const after = heapUsed()
  return { ops, before, mid, after }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Median absolute deviation relative to the median, in percent: the spread of the rounds. */
export function spreadPercent(values: readonly number[]): number {
  const m = median(values)
  return m === 0 ? 0 : (median(values.map((v) => Math.abs(v - m))) / m) * 100
}

export const MB = 1024 * 1024

/** Formats a table with a header row: left-aligned first column, right-aligned others. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [header, ...rows]
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)))
  const line = (row: readonly string[]): string =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), rule, ...rows.map(line)].join('\n')
}

export function fmt(value: number, digits = 1): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  })
}
