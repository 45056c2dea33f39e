// The core public API. Re-exports only; no logic here.
export {
  ConcurrencyError,
  ConfigurationError,
  ErrorCode,
  HandlerNotFoundError,
  HandlerTimeoutError,
  isRetryable,
  isSwitchyardError,
  LoopDetectedError,
  MessageValidationError,
  OutboxStoreError,
  SerializationError,
  TransportError,
  SwitchyardError,
} from './errors.js'
export type { ErrorDetails, SwitchyardErrorOptions, ValidationIssue } from './errors.js'
export { defineCommand, defineEvent, defineQuery, isMessage } from './core/define.js'
export type {
  AnyDefinition,
  AnyEventDefinition,
  AnyMessage,
  Command,
  CommandDefinition,
  DefinitionBase,
  Event,
  EventDefinition,
  EventDefinitionOptions,
  Message,
  MessageKind,
  MessageMetadata,
  MessageOf,
  MessageOptions,
  Query,
  QueryDefinition,
  RequestDefinition,
  RequestOf,
  ResultOf,
} from './core/message.js'
export { MessageBus } from './core/bus.js'
export type {
  BusObserver,
  DispatchOptions,
  HandlerErrorInfo,
  MessageBusOptions,
} from './core/bus.js'
export { AggregateRoot } from './core/aggregate.js'
export type { AggregateRepository, Repository } from './core/repository.js'
export { TrackingRepository } from './core/repository.js'
export { isUnitOfWork, UnitOfWork } from './core/unit-of-work.js'
export type { UnitOfWorkHook, UnitOfWorkHooks, UnitOfWorkState } from './core/unit-of-work.js'
export {
  cloneDeep,
  InMemoryCollection,
  InMemoryRepository,
  InMemoryUnitOfWork,
} from './core/in-memory.js'
export type {
  CollectionLike,
  InMemoryCollectionOptions,
  InMemoryRepositories,
} from './core/in-memory.js'
export { fromContainer, isProvider, scoped, singleton, transient } from './core/dependencies.js'
export type { Dependencies, Factory, Lifetime, Provider, Resolver } from './core/dependencies.js'
export { HandlerRegistry } from './core/registry.js'
export type {
  CommandHandler,
  EventHandler,
  HandleOptions,
  HandlerFn,
  HandlerObject,
  QueryHandler,
} from './core/registry.js'
export type {
  CommandSender,
  EventPublisher,
  NoDependencies,
  HandlerContext,
  MiddlewareContext,
  QueryContext,
  QueryExecutor,
} from './core/context.js'
export type { Middleware } from './core/middleware/middleware.js'
export { retry } from './core/middleware/retry.js'
export type { BackoffOptions, RetryOptions } from './core/middleware/retry.js'
export { timeout } from './core/middleware/timeout.js'
export { logging } from './core/middleware/logging.js'
export type { LoggingOptions } from './core/middleware/logging.js'
export { correlation } from './core/middleware/correlation.js'
export { silentLogger } from './core/logger.js'
export type { Logger, LogLevel } from './core/logger.js'
export { uuidv7 } from './core/uuid.js'
export { validateIdentifier } from './sql/sql-executor.js'
export type {
  DialectCapabilities,
  QueryOptions,
  SqlExecutor,
  SqlResult,
} from './sql/sql-executor.js'
export { SqlUnitOfWork } from './sql/sql-unit-of-work.js'
export type { OpenTransaction, SqlUnitOfWorkOptions } from './sql/sql-unit-of-work.js'
export { decodeEnvelope, encodeEnvelope } from './outbox/envelope.js'
export type { DecodedEnvelope, DecodeLimits, EncodeOptions } from './outbox/envelope.js'
export type {
  ClaimedRecord,
  ClaimOptions,
  ClaimRef,
  FailureOptions,
  FailureOutcome,
  MarkAndClaim,
  MarkAndClaimResult,
  OutboxAppend,
  OutboxMaintenance,
  OutboxStatus,
  OutboxStore,
} from './outbox/outbox-store.js'
export { OutboxRelay } from './outbox/outbox-relay.js'
export type { OutboxRelayOptions, RelayMetrics, WakeUpSource } from './outbox/outbox-relay.js'
export type { Publisher, TransportMessage } from './transport/publisher.js'
export { DEAD_LETTER_HEADERS, DEFAULT_REDELIVERY } from './transport/subscriber.js'
export type {
  DeadLetter,
  DeadLetterOutcome,
  Delivery,
  DeliveryHandler,
  RedeliveryPolicy,
  SubscribeOptions,
  Subscriber,
  Subscription,
} from './transport/subscriber.js'
export { InMemoryTransport } from './transport/in-memory-transport.js'
export { Consumer } from './consumer/consumer.js'
export type { ConsumerBus, ConsumerOptions, ConsumerRetryOptions } from './consumer/consumer.js'
export type { PublishListener } from './transport/in-memory-transport.js'
export { OutboxWriter } from './outbox/outbox-writer.js'
export type { OutboxWriterOptions } from './outbox/outbox-writer.js'
export type { InboxStore } from './outbox/inbox-store.js'
