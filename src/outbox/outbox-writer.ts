/**
 * Joins units of work to the outbox: in the `beforeCommit` phase — inside the still-open business
 * transaction — the events that recorded aggregates produced and that belong to an integration
 * event definition (one with a `topic`) are encoded and appended to the outbox. They are stored if
 * and only if the business transaction commits.
 */
import { ConfigurationError } from '../errors.js'
import type { AnyEventDefinition, Event } from '../core/message.js'
import type { UnitOfWork } from '../core/unit-of-work.js'
import type { SqlExecutor } from '../sql/sql-executor.js'
import { encodeEnvelope } from './envelope.js'
import type { OutboxAppend, OutboxStore } from './outbox-store.js'

/** Options of {@link OutboxWriter}. */
export interface OutboxWriterOptions {
  readonly store: OutboxStore
  /** The integration events: definitions with a `topic` (and usually a `key`). */
  readonly events: readonly AnyEventDefinition[]
  /** The CloudEvents `source` of this service, e.g. `/allocation`. */
  readonly source: string
}

export class OutboxWriter {
  readonly #store: OutboxStore
  readonly #byType = new Map<string, AnyEventDefinition>()
  readonly #source: string

  constructor(options: OutboxWriterOptions) {
    const problems: string[] = []
    for (const definition of options.events) {
      if (definition.kind !== 'event')
        problems.push(`"${String(definition.type)}" is not an event definition`)
      else if (definition.topic === undefined)
        problems.push(
          `the event "${definition.type}" has no topic; define it with { topic } to send it through the outbox`,
        )
      else this.#byType.set(definition.type, definition)
    }
    if (typeof options.source !== 'string' || options.source === '')
      problems.push('source must be a non-empty string (the CloudEvents source)')
    if (problems.length > 0)
      throw new ConfigurationError(`Invalid OutboxWriter options: ${problems.join('; ')}`, {
        problems,
      })
    this.#store = options.store
    this.#source = options.source
  }

  /** The outbox records for the integration events among `events`, in order. */
  recordsFor(events: readonly Event[]): OutboxAppend[] {
    const records: OutboxAppend[] = []
    for (const event of events) {
      const definition = this.#byType.get(event.type)
      if (definition === undefined) continue
      const key = definition.keyOf?.(event.payload as never)
      records.push({
        id: event.id,
        topic: definition.topic!,
        key,
        type: event.type,
        body: encodeEnvelope(event, { source: this.#source, key }),
        headers: event.headers,
      })
    }
    return records
  }

  /** Appends the integration events of `unitOfWork` to the outbox through `tx` when it commits. */
  attach(unitOfWork: UnitOfWork, tx: SqlExecutor): void {
    unitOfWork.on('beforeCommit', async ({ events }) => {
      const records = this.recordsFor(events)
      if (records.length > 0) await this.#store.append(tx, records)
    })
  }
}
