/**
 * The in-memory transport: a publisher for one process (the embedded default, tests and demos).
 * Keeps what was published per topic, in order, and tells listeners. Nothing survives the process.
 */
import { ErrorCode, TransportError } from '../errors.js'
import type { Publisher, TransportMessage } from './publisher.js'

/** A listener of published messages. */
export type PublishListener = (topic: string, message: TransportMessage) => void

export class InMemoryTransport implements Publisher, AsyncDisposable {
  readonly #topics = new Map<string, TransportMessage[]>()
  readonly #listeners = new Set<PublishListener>()
  #closed = false

  async publish(topic: string, messages: readonly TransportMessage[]): Promise<void> {
    if (this.#closed)
      throw new TransportError(
        `The in-memory transport is closed; nothing was published to "${topic}"`,
        {
          code: ErrorCode.TransportClosed,
          retryable: false,
          details: { topic },
        },
      )
    let list = this.#topics.get(topic)
    if (list === undefined) this.#topics.set(topic, (list = []))
    for (const message of messages) {
      list.push(message)
      for (const listener of this.#listeners) listener(topic, message)
    }
    return Promise.resolve()
  }

  /** Everything published to a topic, in order. */
  published(topic: string): readonly TransportMessage[] {
    return this.#topics.get(topic) ?? []
  }

  /** Calls `listener` for every message published from now on; returns a handle to stop. */
  onPublish(listener: PublishListener): Disposable {
    this.#listeners.add(listener)
    return { [Symbol.dispose]: () => void this.#listeners.delete(listener) }
  }

  async close(): Promise<void> {
    this.#closed = true
    return Promise.resolve()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}
