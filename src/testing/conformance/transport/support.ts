/**
 * What the transport conformance scenarios share: the configuration types, the context each
 * scenario runs in, and small helpers (unique names, messages, a recording handler, `waitUntil`).
 */
import assert from 'node:assert/strict'
import type {
  DeadLetter,
  DeadLetterOutcome,
  Delivery,
  DeliveryHandler,
  Publisher,
  Subscriber,
  TransportMessage,
} from '../../../index.js'
import type { SuiteRunner } from '../suite-runner.js'

/**
 * What a transport guarantees. Scenarios that need a flag the transport does not declare are
 * skipped, with the flag as the reason. The same names make up each adapter's docs
 * "Characteristics" table.
 */
export interface TransportFeatures {
  /** Published messages survive a broker restart (declared for the docs; no scenario restarts a broker). */
  readonly persistent: boolean
  /** Several subscriptions share a group's messages (competing consumers), and every group gets every message. */
  readonly consumerGroups: boolean
  /** A key's messages are handed out one at a time, in publish order, also across retries. */
  readonly orderedPerKey: boolean
  /** With one subscription at concurrency 1 and no failures, messages arrive in publish order, each after the previous settled. */
  readonly orderedWithSingleConsumer: boolean
  /** A rejected delivery comes back, with `attempt` + 1. */
  readonly redeliversOnNack: boolean
  /** A redelivery waits `retry.delayMs(attempt)` first. */
  readonly delayedRedelivery: boolean
  /** Messages that exhaust their attempts, or are refused with `{ deadLetter }`, go to a dead-letter place. */
  readonly deadLetter: boolean
  /** A new group also receives the messages published before it existed. */
  readonly replaysToNewGroup: boolean
  /** Publisher and subscribers live in one process: every `create()` is a world of its own. */
  readonly singleInstanceOnly: boolean
}

/** What `create` is told about the scenario it serves. */
export interface TransportContext {
  /** The scenario's unique prefix, `sy-<random>`; its topics and groups start with it. */
  readonly id: string
  /** The scenario's name. */
  readonly scenario: string
  /** True only for the scenario that calls `proxy.cut()`: connect through the fault proxy. */
  readonly viaProxy: boolean
}

/** One transport instance under test. */
export interface TransportHarness {
  readonly publisher: Publisher
  readonly subscriber: Subscriber
  /** Frees everything the harness made (closes the subscriber and the publisher). Idempotent. */
  close(): Promise<void>
  /** Reads a group's dead-letter place back, oldest first. Required when `features.deadLetter`. */
  deadLetters?(topic: string, group: string): Promise<readonly DeadLetter[]> | readonly DeadLetter[]
}

/** A fault proxy between the harnesses made with `viaProxy` and the broker. */
export interface TransportProxy {
  /** Resets every live connection through the proxy (both sides see a connection reset). */
  cut(): Promise<void> | void
}

/** The test-runner functions the suite uses; `describe.concurrent` (vitest) is used by stress runs. */
export interface TransportSuiteRunner extends SuiteRunner {
  describe: SuiteRunner['describe'] & {
    concurrent?: (name: string, body: () => void) => void
  }
}

/** The suite's configuration. */
export interface TransportConformance {
  readonly name: string
  readonly features: TransportFeatures
  /** A fresh transport instance (each scenario makes its own and closes it at the end). */
  readonly create: (ctx: TransportContext) => Promise<TransportHarness> | TransportHarness
  /** The fault proxy; without it the connection-cut scenario is skipped. */
  readonly proxy?: TransportProxy
  /** Scenarios not to run, each with the reason (required). */
  readonly skip?: readonly { readonly test: string; readonly reason: string }[]
  /** How long liveness waits ("until every message arrived") may take before failing, ms. Default 10 000. */
  readonly deadlineMs?: number
}

/** What one scenario runs with. */
export interface ScenarioContext {
  /** The scenario's transport instance. */
  readonly h: TransportHarness
  readonly features: TransportFeatures
  readonly proxy: TransportProxy | undefined
  /** The liveness deadline, ms. */
  readonly deadlineMs: number
  /** A unique topic name, `sy-<random>-<name>`. */
  topic(name?: string): string
  /** A unique group name. */
  group(name?: string): string
  /** A unique ordering key. */
  key(name?: string): string
  /** A message with a unique id and `{"n":…}` body; `overrides` replace its fields. */
  message(overrides?: Partial<TransportMessage>): TransportMessage
  /** Another instance of the transport (another process's connection), closed after the scenario. */
  another(): Promise<TransportHarness>
  /** Runs `cleanup` after the scenario, pass or fail (last registered first). */
  defer(cleanup: () => unknown): void
  /** `waitUntil` with the configured deadline. */
  eventually(what: string, check: () => boolean | Promise<boolean>): Promise<void>
  /** Reads the dead letters back (fails when the harness cannot). */
  deadLetters(topic: string, group: string): Promise<readonly DeadLetter[]>
}

/** One scenario: a guarantee and the features it needs. */
export interface Scenario {
  readonly name: string
  readonly needs?: readonly (keyof TransportFeatures)[]
  /** Needs `proxy`. */
  readonly needsProxy?: boolean
  /** Needs several instances sharing one broker (not `singleInstanceOnly`). */
  readonly needsSharedBroker?: boolean
  readonly run: (s: ScenarioContext) => Promise<void>
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms))

/** A random whole number in [0, max). */
export const random = (max: number): number => Math.floor(Math.random() * max)

/**
 * Polls `check` every few ms until it holds; fails with an `AssertionError` naming `what` after
 * `ms`. For liveness only: the deadline is generous and says nothing about speed.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  ms: number,
  what = 'the condition',
): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) assert.fail(`Timed out after ${ms} ms waiting for ${what}`)
    await sleep(5)
  }
}

/** A promise to resolve or reject from outside: a handler waits on it until the test lets it go. */
export interface Gate {
  readonly promise: Promise<void>
  open(): void
  fail(error: Error): void
}

export function gate(): Gate {
  let open!: () => void
  let fail!: (error: Error) => void
  const promise = new Promise<void>((resolve, reject) => {
    open = resolve
    fail = reject
  })
  promise.catch(() => undefined) // a failed gate nobody waits on is not an unhandled rejection
  return { promise, open, fail }
}

/** What a recording handler does with one delivery (default: acknowledge at once). */
export type Behaviour = (
  delivery: Delivery,
  signal: AbortSignal,
) => Promise<void | DeadLetterOutcome> | void | DeadLetterOutcome

/** A handler that records every delivery and every acknowledgement. */
export class Recorder {
  /** Every delivery, in the order the handler was called. */
  readonly deliveries: Delivery[] = []
  /** Times each id was handled successfully (the handler resolved without a dead-letter outcome). */
  readonly handled = new Map<string, number>()
  /** Handlers running now, and the most that ever ran at once. */
  running = 0
  maxRunning = 0

  constructor(readonly behaviour: Behaviour = () => undefined) {}

  readonly handler: DeliveryHandler = async (delivery, signal) => {
    this.deliveries.push(delivery)
    this.running++
    this.maxRunning = Math.max(this.maxRunning, this.running)
    try {
      const outcome = await this.behaviour(delivery, signal)
      if (outcome === undefined)
        this.handled.set(delivery.id, (this.handled.get(delivery.id) ?? 0) + 1)
      return outcome
    } finally {
      this.running--
    }
  }

  /** True when every id was handled at least once. */
  hasHandled(ids: Iterable<string>): boolean {
    for (const id of ids) if (!this.handled.has(id)) return false
    return true
  }

  /** The deliveries of one id. */
  of(id: string): Delivery[] {
    return this.deliveries.filter((d) => d.id === id)
  }
}

/** The ids of messages. */
export const ids = (messages: readonly TransportMessage[]): string[] => messages.map((m) => m.id)

/** Asserts a message arrived (or was dead-lettered) with id, key, body and headers intact. */
export function assertIntact(
  actual: TransportMessage,
  expected: TransportMessage,
  allowedExtraHeaders: readonly string[] = [],
): void {
  assert.equal(actual.id, expected.id)
  assert.equal(actual.key, expected.key, `the key of ${expected.id}`)
  assert.ok(actual.body instanceof Uint8Array, `the body of ${expected.id} is a Uint8Array`)
  assert.equal(
    actual.body.byteLength,
    expected.body.byteLength,
    `the body length of ${expected.id}`,
  )
  assert.ok(
    Buffer.from(actual.body.buffer, actual.body.byteOffset, actual.body.byteLength).equals(
      Buffer.from(expected.body.buffer, expected.body.byteOffset, expected.body.byteLength),
    ),
    `the body bytes of ${expected.id} arrive unchanged`,
  )
  const headers: Record<string, string> = { ...actual.headers }
  for (const name of allowedExtraHeaders) if (!(name in expected.headers)) delete headers[name]
  assert.deepEqual(headers, { ...expected.headers }, `the headers of ${expected.id}`)
}
