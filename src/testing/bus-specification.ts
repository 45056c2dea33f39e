/**
 * Given/when/then for handlers, on a fresh bus per scenario (Emmett's specification style):
 *
 * ```ts
 * const spec = BusSpecification.for(() => createBus())
 * await spec
 *   .given(CreateBatch({ ref: 'b1', sku: 'LAMP', qty: 10 }))
 *   .when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 2 }))
 *   .thenPublished(Allocated, { orderId: 'o1', batchRef: 'b1' })
 * ```
 *
 * `given` takes messages to dispatch first (commands, events, queries) and set-up functions that
 * receive the bus; what they publish is not part of the outcome. `when` dispatches one message and
 * records its result or error, everything it published, and the events its units of work recorded.
 */
import assert from 'node:assert/strict'
import {
  type ErrorCode,
  type Event,
  type EventDefinition,
  isSwitchyardError,
  type Message,
  type MessageBus,
  type ResultOf,
} from '../index.js'
import { BusRecorder } from './bus-recorder.js'
import { type DeepPartial, matches, show } from './match.js'

/** What a `when` produced. */
export interface Outcome<M extends Message, D extends object> {
  /** The bus the scenario ran on (to query read models, say). */
  readonly bus: MessageBus<D>
  /** The dispatch result, when it succeeded. */
  readonly result: ResultOf<M> | undefined
  /** The error, when it failed. */
  readonly error: unknown
  readonly failed: boolean
  /** Events handled during `when`, follow-ups included, in order. */
  readonly published: readonly Event[]
  /** Events units of work committed during `when` (even if the handler then failed). */
  readonly recorded: readonly Event[]
}

/** A set-up step: a message to dispatch, or a function of the bus. */
export type GivenStep<D extends object> = Message | ((bus: MessageBus<D>) => unknown)

/** The `then` part of a scenario. */
export interface Then<M extends Message, D extends object> {
  /** Runs the scenario and hands its outcome to your assertions. */
  then(assertion: (outcome: Outcome<M, D>) => void | Promise<void>): Promise<void>
  /** Asserts the dispatch succeeded with this result (deep equality). */
  thenReturns(expected: ResultOf<M>): Promise<void>
  /** Asserts the dispatch succeeded and published an event of this definition matching `payload`. */
  thenPublished<T extends string, P, I>(
    definition: EventDefinition<T, P, I>,
    payload?: DeepPartial<P>,
  ): Promise<void>
  /** Asserts the dispatch succeeded and published nothing. */
  thenPublishedNothing(): Promise<void>
  /** Asserts the dispatch failed with a Switchyard error of this code. */
  thenFails(code: ErrorCode): Promise<void>
}

class Scenario<M extends Message, D extends object> implements Then<M, D> {
  constructor(
    private readonly createBus: () => MessageBus<D> | Promise<MessageBus<D>>,
    private readonly steps: readonly GivenStep<D>[],
    private readonly message: M,
  ) {}

  async then(assertion: (outcome: Outcome<M, D>) => void | Promise<void>): Promise<void> {
    await assertion(await this.#run())
  }

  thenReturns(expected: ResultOf<M>): Promise<void> {
    return this.then((outcome) => {
      assertSucceeded(outcome)
      assert.deepEqual(outcome.result, expected)
    })
  }

  thenPublished<T extends string, P, I>(
    definition: EventDefinition<T, P, I>,
    payload?: DeepPartial<P>,
  ): Promise<void> {
    return this.then((outcome) => {
      assertSucceeded(outcome)
      const found = outcome.published.some(
        (e) => definition.is(e) && (payload === undefined || matches(e.payload, payload)),
      )
      assert.ok(
        found,
        `expected "${definition.type}"${payload === undefined ? '' : ` matching ${show(payload)}`}; published: ${show(outcome.published.map((e) => ({ type: e.type, payload: e.payload })))}`,
      )
    })
  }

  thenPublishedNothing(): Promise<void> {
    return this.then((outcome) => {
      assertSucceeded(outcome)
      assert.deepEqual(
        outcome.published.map((e) => e.type),
        [],
      )
    })
  }

  thenFails(code: ErrorCode): Promise<void> {
    return this.then((outcome) => {
      assert.ok(
        outcome.failed,
        `expected a failure with code ${code}, but it succeeded with ${show(outcome.result)}`,
      )
      assert.ok(
        isSwitchyardError(outcome.error, code),
        `expected code ${code}; got ${outcome.error instanceof Error ? outcome.error.message : show(outcome.error)}`,
      )
    })
  }

  async #run(): Promise<Outcome<M, D>> {
    const bus = await this.createBus()
    for (const step of this.steps) {
      if (typeof step === 'function') await step(bus)
      else await bus.dispatch(step)
    }
    using recorder = BusRecorder.attach(bus)
    let result: ResultOf<M> | undefined
    let error: unknown
    let failed = false
    try {
      result = await bus.dispatch(this.message)
    } catch (caught) {
      error = caught
      failed = true
    }
    const published = recorder.published.filter((m) => m !== this.message)
    return { bus, result, error, failed, published, recorded: [...recorder.recorded] }
  }
}

function assertSucceeded(outcome: { readonly failed: boolean; readonly error: unknown }): void {
  if (outcome.failed) {
    const error = outcome.error
    assert.fail(
      `expected success, but the dispatch failed: ${error instanceof Error ? `${error.name}: ${error.message}` : show(error)}`,
    )
  }
}

/** Builds scenarios on a fresh bus each. */
export class BusSpecification<D extends object> {
  private constructor(
    private readonly createBus: () => MessageBus<D> | Promise<MessageBus<D>>,
    private readonly steps: readonly GivenStep<D>[],
  ) {}

  /** Scenarios on buses made by `createBus` (called once per scenario, for isolation). */
  static for<D extends object>(
    createBus: () => MessageBus<D> | Promise<MessageBus<D>>,
  ): BusSpecification<D> {
    return new BusSpecification(createBus, [])
  }

  /** Set-up: messages to dispatch and functions of the bus, run in order before `when`. */
  given(...steps: readonly GivenStep<D>[]): BusSpecification<D> {
    return new BusSpecification(this.createBus, [...this.steps, ...steps])
  }

  /** The message under test. */
  when<M extends Message>(message: M): Then<M, D> {
    return new Scenario(this.createBus, this.steps, message)
  }
}
