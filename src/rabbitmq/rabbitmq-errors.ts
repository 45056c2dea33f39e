/** How the RabbitMQ adapter words and wraps the failures it reports. */
import { isSwitchyardError, type SwitchyardError, TransportError } from '../index.js'
import type { RabbitMqTopology } from './rabbitmq-topology.js'

/** Longest failure reason carried in a dead letter's header (headers share a 64 KiB table). */
export const MAX_REASON_LENGTH = 2000

/** An error's message (or the thrown value as text), cut to {@link MAX_REASON_LENGTH}. */
export function reasonOf(error: unknown): string {
  const text =
    error instanceof Error ? error.message : typeof error === 'string' ? error : String(error)
  return text.length > MAX_REASON_LENGTH ? `${text.slice(0, MAX_REASON_LENGTH - 1)}…` : text
}

/** Wraps a broker failure; refusals (4xx: arguments differ, access denied) are not retryable. */
export function brokerError(
  doing: string,
  error: unknown,
  topology: RabbitMqTopology,
): SwitchyardError {
  if (isSwitchyardError(error)) return error
  const code = (error as { code?: unknown } | null)?.code
  const refused = typeof code === 'number' && code >= 400 && code < 500
  const hint = refused
    ? ' (RabbitMQ refused: a queue or exchange may exist with other arguments, compare with transport.topology(), or access is denied)'
    : ''
  return new TransportError(`${doing}: ${reasonOf(error)}${hint}`, {
    cause: error,
    retryable: !refused,
    details: { topic: topology.topic, group: topology.group, queue: topology.queue },
  })
}
