/**
 * Deterministic crash points for the fault tests (RELIABILITY.md §2.2), internal and never
 * exported. `SWITCHYARD_FAULT=name:nth` makes the nth pass through the point `name` kill its own
 * process with SIGKILL, exactly as a crash there would. With the variable unset every point is a
 * no-op that costs one comparison.
 *
 * Points: `relay.after-claim` (rows claimed, nothing published), `relay.after-publish` (a topic
 * group confirmed by the publisher, not yet marked), `relay.between-marks` (one topic group of a
 * batch marked, the next not yet published).
 */
const spec = /^([\w.-]+):(\d+)$/.exec(process.env.SWITCHYARD_FAULT ?? '')
const target = spec?.[1]
let remaining = spec === null ? 0 : Number(spec[2])

/** Passes through the fault point `name`. */
export function faultPoint(name: string): void {
  if (target === undefined || name !== target) return
  remaining--
  if (remaining === 0) process.kill(process.pid, 'SIGKILL')
}
