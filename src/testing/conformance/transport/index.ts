/**
 * The transport conformance suite: the guarantees of the publisher and subscriber ports
 * (`src/transport/*.ts`), checked against one transport, runnable under any test runner (you pass
 * `describe`/`it`/hooks; assertions use `node:assert`). Shipped in `switchyard-bus/testing`, as
 * Watermill ships `pubsub/tests`, so third-party transports can certify themselves.
 *
 * Each scenario lives in its own file, named after its guarantee, makes its own transport
 * instance with `create`, and uses topic, group and key names with a prefix `sy-<random>-` of its
 * own, so scenarios may run concurrently and against a shared broker. Liveness waits ("until every
 * message arrived") fail after `deadlineMs` (default 10 s); nothing asserts speed. Give the
 * runner's tests a longer timeout than that (vitest: `describe(name, { timeout: 30_000 }, …)`
 * around the call), or a slow transport's failure shows as a bare runner timeout.
 *
 * Stress: with `SWITCHYARD_STRESS=N` in the environment the whole suite is registered N times,
 * inside one `describe.concurrent` when the runner's `describe` has it (vitest: the copies then
 * run concurrently, up to vitest's `maxConcurrency`, default 5). Runners without it (jest,
 * node:test, mocha) run the N copies one after another; to run them concurrently under node:test,
 * pass a `describe` whose `concurrent` is `(name, body) => describe(name, { concurrency: true }, body)`.
 */
import { register } from '../suite-runner.js'
import { closeIsIdempotent } from './close-is-idempotent.js'
import { competingConsumers, competingInstances } from './competing-consumers.js'
import { correlationSurvivesRoundTrip } from './correlation-survives-round-trip.js'
import { deadLetterAfterMaxAttempts, deadLetterOutcome } from './dead-letter.js'
import { everyGroupReceivesEverything } from './every-group-receives-everything.js'
import { keyWaitsForSettlement } from './key-waits-for-settlement.js'
import { messagesAreValues } from './messages-are-values.js'
import { noLossWhenSubscriptionCloses } from './no-loss-when-subscription-closes.js'
import { perKeyOrderUnderConcurrency } from './per-key-order-under-concurrency.js'
import { publishSubscribeIntact } from './publish-subscribe-intact.js'
import { publisherCloseFlushes } from './publisher-close-flushes.js'
import { recoveryAfterConnectionCut } from './recovery-after-connection-cut.js'
import { delayedRedelivery, redeliveryAfterRejection } from './redelivery-after-rejection.js'
import { replaysToNewGroup } from './replays-to-new-group.js'
import { singleConsumerOrder } from './single-consumer-order.js'
import { rejectedWhileClosing } from './rejected-while-closing.js'
import { subscriptionEndsOnAbort } from './subscription-ends-on-abort.js'
import { topicIsolation } from './topic-isolation.js'
import {
  waitUntil,
  type Scenario,
  type ScenarioContext,
  type TransportConformance,
  type TransportHarness,
  type TransportSuiteRunner,
} from './support.js'

export type {
  TransportConformance,
  TransportContext,
  TransportFeatures,
  TransportHarness,
  TransportProxy,
  TransportSuiteRunner,
} from './support.js'
export { waitUntil } from './support.js'

/** Every scenario, in the order they are registered. */
export const TRANSPORT_SCENARIOS: readonly Scenario[] = [
  publishSubscribeIntact,
  messagesAreValues,
  topicIsolation,
  competingConsumers,
  competingInstances,
  everyGroupReceivesEverything,
  redeliveryAfterRejection,
  delayedRedelivery,
  keyWaitsForSettlement,
  singleConsumerOrder,
  perKeyOrderUnderConcurrency,
  noLossWhenSubscriptionCloses,
  closeIsIdempotent,
  subscriptionEndsOnAbort,
  rejectedWhileClosing,
  publisherCloseFlushes,
  recoveryAfterConnectionCut,
  deadLetterAfterMaxAttempts,
  deadLetterOutcome,
  correlationSurvivesRoundTrip,
  replaysToNewGroup,
]

const DEFAULT_DEADLINE_MS = 10_000

/** Why `scenario` does not run against `config`, or undefined when it does. */
function skipReason(config: TransportConformance, scenario: Scenario): string | undefined {
  const skipped = config.skip?.find((s) => s.test === scenario.name)
  if (skipped !== undefined) return skipped.reason
  const missing = scenario.needs?.find((flag) => !config.features[flag])
  if (missing !== undefined) return `the transport does not declare ${missing}`
  if (scenario.needsProxy === true && config.proxy === undefined)
    return 'no fault proxy was given (proxy)'
  if (scenario.needsSharedBroker === true && config.features.singleInstanceOnly)
    return 'the transport declares singleInstanceOnly'
  return undefined
}

/** Runs one scenario on a fresh instance, then its cleanups and the instances' close, pass or fail. */
async function run(config: TransportConformance, scenario: Scenario): Promise<void> {
  const id = `sy-${Math.random().toString(36).slice(2, 10)}`
  const ctx = { id, scenario: scenario.name, viaProxy: scenario.needsProxy === true }
  const cleanups: (() => unknown)[] = []
  const h = await config.create(ctx)
  cleanups.push(() => h.close())
  const deadlineMs = config.deadlineMs ?? DEFAULT_DEADLINE_MS
  let n = 0
  const s: ScenarioContext = {
    h,
    features: config.features,
    proxy: config.proxy,
    deadlineMs,
    topic: (name = 'topic') => `${id}-${name}`,
    group: (name = 'group') => `${id}-${name}-${++n}`,
    key: (name = 'key') => `${id}-${name}`,
    message: (overrides = {}) => {
      const seq = ++n
      return {
        id: `${id}-m${seq}`,
        key: undefined,
        headers: { 'x-seq': String(seq) },
        body: new TextEncoder().encode(JSON.stringify({ n: seq })),
        ...overrides,
      }
    },
    another: async () => {
      const other: TransportHarness = await config.create(ctx)
      cleanups.push(() => other.close())
      return other
    },
    defer: (cleanup) => void cleanups.push(cleanup),
    eventually: (what, check) => waitUntil(check, deadlineMs, what),
    deadLetters: async (topic, group) => {
      if (h.deadLetters === undefined)
        throw new Error(
          `${config.name} declares deadLetter but its harness has no deadLetters(topic, group)`,
        )
      return h.deadLetters(topic, group)
    },
  }
  let failure: { error: unknown } | undefined
  try {
    await scenario.run(s)
  } catch (error) {
    failure = { error }
  }
  for (const cleanup of cleanups.reverse()) {
    try {
      await cleanup()
    } catch (error) {
      failure ??= { error }
    }
  }
  if (failure !== undefined) throw failure.error
}

/** Registers every scenario once. */
function registerAll(config: TransportConformance, t: TransportSuiteRunner): void {
  for (const scenario of TRANSPORT_SCENARIOS)
    register(t, scenario.name, () => run(config, scenario), skipReason(config, scenario))
}

/** The number of copies `SWITCHYARD_STRESS` asks for (1 without it). */
function stressCopies(): number {
  const raw = process.env.SWITCHYARD_STRESS
  if (raw === undefined || raw === '') return 1
  const copies = Number(raw)
  if (!Number.isSafeInteger(copies) || copies < 1)
    throw new Error(`SWITCHYARD_STRESS must be a whole number ≥ 1, not "${raw}"`)
  return copies
}

/**
 * Registers the transport conformance scenarios for one transport.
 *
 * @example
 * describeTransportConformance(
 *   {
 *     name: 'InMemoryTransport',
 *     features: { persistent: false, consumerGroups: true, ... },
 *     create: () => {
 *       const transport = new InMemoryTransport()
 *       return { publisher: transport, subscriber: transport, close: () => transport.close() }
 *     },
 *   },
 *   { describe, it, beforeEach, afterEach },
 * )
 */
export function describeTransportConformance(
  config: TransportConformance,
  t: TransportSuiteRunner,
): void {
  const names = new Set(TRANSPORT_SCENARIOS.map((s) => s.name))
  for (const entry of config.skip ?? []) {
    if (!names.has(entry.test))
      throw new Error(`skip names no transport conformance scenario: "${entry.test}"`)
    if (typeof entry.reason !== 'string' || entry.reason.trim() === '')
      throw new Error(`skip of "${entry.test}" needs a reason`)
  }
  const copies = stressCopies()
  const title = `transport conformance: ${config.name}`
  if (copies === 1) {
    t.describe(title, () => registerAll(config, t))
    return
  }
  const describeConcurrently = t.describe.concurrent ?? t.describe
  describeConcurrently(`${title} (SWITCHYARD_STRESS=${copies})`, () => {
    for (let copy = 1; copy <= copies; copy++)
      t.describe(`copy ${copy} of ${copies}`, () => registerAll(config, t))
  })
}
