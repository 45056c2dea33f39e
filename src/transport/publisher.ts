/**
 * The publisher port: how the relay (and anything else) hands messages to a broker.
 *
 * Contract:
 * - `publish(topic, messages)` resolves only when the broker took responsibility for every message
 *   (a publisher confirm, a stream append): that is what "published" means to the outbox. It rejects
 *   with a `TransportError` if it cannot say so for all of them; the caller then treats the whole
 *   batch as not published and retries it, so some messages may be delivered twice (at least once).
 * - Messages of one call are delivered in the order given when the transport orders at all.
 * - `close()` flushes what is in flight, then releases the connection; idempotent.
 */

/** A message as a transport carries it. */
export interface TransportMessage {
  /** The message id (the same on every delivery of it). */
  readonly id: string
  /** Ordering key. */
  readonly key?: string | undefined
  readonly headers: Readonly<Record<string, string>>
  /** The encoded envelope. */
  readonly body: Uint8Array
}

/** Hands messages to a broker. */
export interface Publisher {
  publish(topic: string, messages: readonly TransportMessage[]): Promise<void>
  close(): Promise<void>
}
