/**
 * What one case of the RabbitMQ benchmark records per round: messages per second, and this
 * process's CPU time per message (user + system, `process.cpuUsage`): the work the library or the
 * bare code does in Node, apart from what PostgreSQL and RabbitMQ do in their own processes.
 */
import { collect } from '../dispatch/harness.js'

export interface Samples {
  readonly perSecond: number[]
  /** Microseconds of this process's CPU per message. */
  readonly cpuMicros: number[]
}

export const samples = (): Samples => ({ perSecond: [], cpuMicros: [] })

/**
 * Runs `work` (which handles `messages` messages) after a full GC, and adds its rate and CPU per
 * message to `into`. Resolves with the wall time, ms.
 */
export async function timeCase(
  into: Samples,
  messages: number,
  work: () => Promise<void>,
): Promise<number> {
  collect()
  const cpu = process.cpuUsage()
  const start = performance.now()
  await work()
  const ms = performance.now() - start
  const used = process.cpuUsage(cpu)
  into.perSecond.push(messages / (ms / 1000))
  into.cpuMicros.push((used.user + used.system) / messages)
  return ms
}
