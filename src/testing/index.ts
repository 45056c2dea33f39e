// switchyard-bus/testing: helpers for testing code built on Switchyard. Re-exports only.
export { RecordingLogger } from './recording-logger.js'
export type { LogEntry } from './recording-logger.js'
export { expectSwitchyardError } from './expect-error.js'
export { BusRecorder } from './bus-recorder.js'
export { BusSpecification } from './bus-specification.js'
export type { GivenStep, Outcome, Then } from './bus-specification.js'
export { describeOutboxStoreConformance } from './conformance/outbox-store/index.js'
export type {
  OutboxStoreConformance,
  OutboxStoreFeatures,
  OutboxStoreHarness,
  SuiteRunner,
} from './conformance/outbox-store/index.js'
export { describeInboxStoreConformance } from './conformance/inbox-store/index.js'
export type { InboxStoreConformance, InboxStoreHarness } from './conformance/inbox-store/index.js'
export { describeTransportConformance, waitUntil } from './conformance/transport/index.js'
export type {
  TransportConformance,
  TransportContext,
  TransportFeatures,
  TransportHarness,
  TransportProxy,
  TransportSuiteRunner,
} from './conformance/transport/index.js'
