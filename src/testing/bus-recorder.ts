/**
 * Records everything a bus handles — every command, query and event, follow-ups included, and the
 * events units of work committed — with `expect…` helpers. Assertions use `node:assert`,
 * so they work under any test runner.
 *
 * @example
 * using recorder = BusRecorder.attach(bus)
 * await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
 * recorder.expectPublished(Allocated, { orderId: 'o1' })
 */
import assert from 'node:assert/strict'
import type { BusObserver, Event, EventDefinition, Message, MessageBus } from '../index.js'
import { type DeepPartial, matches, show } from './match.js'

export class BusRecorder implements BusObserver, Disposable {
  /** Every message the bus handled, in order. */
  readonly messages: Message[] = []
  /**
   * Events units of work committed (recorded by aggregates), in order, reported at commit: a
   * handler that commits and then throws has its events here, but not in `published`.
   */
  readonly recorded: Event[] = []
  #detach: Disposable | undefined

  /** Starts recording what `bus` handles. Dispose the recorder to stop. */
  static attach<D extends object>(bus: MessageBus<D>): BusRecorder {
    const recorder = new BusRecorder()
    recorder.#detach = bus.observe(recorder)
    return recorder
  }

  onMessage(message: Message): void {
    this.messages.push(message)
  }

  onCommit(events: readonly Event[]): void {
    this.recorded.push(...events)
  }

  /** Every event handled (published or released), in order. */
  get published(): Event[] {
    return this.messages.filter((m): m is Event => m.kind === 'event')
  }

  /** The events of one definition, typed. */
  eventsOf<T extends string, P, I>(definition: EventDefinition<T, P, I>): Event<T, P>[] {
    return this.published.filter((e): e is Event<T, P> => definition.is(e))
  }

  /** Asserts an event of this definition was published, whose payload matches `payload` (partially). */
  expectPublished<T extends string, P, I>(
    definition: EventDefinition<T, P, I>,
    payload?: DeepPartial<P>,
  ): Event<T, P> {
    const candidates = this.eventsOf(definition)
    const found = candidates.find((e) => payload === undefined || matches(e.payload, payload))
    assert.ok(
      found !== undefined,
      `expected a published "${definition.type}"${payload === undefined ? '' : ` matching ${show(payload)}`}; published: ${show(this.published.map((e) => ({ type: e.type, payload: e.payload })))}`,
    )
    return found
  }

  /** Asserts no event of this definition was published. */
  expectNotPublished<T extends string, P, I>(definition: EventDefinition<T, P, I>): void {
    const found = this.eventsOf(definition)
    assert.equal(
      found.length,
      0,
      `expected no "${definition.type}", but ${found.length} were published: ${show(found.map((e) => e.payload))}`,
    )
  }

  /** Asserts the published event types, in order, exactly. */
  expectPublishedTypes(...types: readonly (string | { readonly type: string })[]): void {
    assert.deepEqual(
      this.published.map((e) => e.type),
      types.map((t) => (typeof t === 'string' ? t : t.type)),
    )
  }

  /** Forgets what was recorded so far. */
  clear(): void {
    this.messages.length = 0
    this.recorded.length = 0
  }

  /** Stops recording. */
  [Symbol.dispose](): void {
    this.#detach?.[Symbol.dispose]()
    this.#detach = undefined
  }
}
