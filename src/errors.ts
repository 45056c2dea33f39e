/**
 * The error model (STYLE.md §5). Every error Switchyard raises is a {@link SwitchyardError}: it
 * has a stable `code` (public API, listed in docs/errors.md), says whether retrying can help
 * (`retryable`), keeps the underlying error as `cause`, and carries plain-data `details`.
 *
 * Check errors with {@link isSwitchyardError}, which looks at the shape, not the prototype, so it
 * still works when two copies of the package are installed.
 */

/** Every stable error code. Part of the public API: codes are never renamed. */
export const ErrorCode = {
  /** A programmer error found at construction or registration. */
  Configuration: 'SWITCHYARD_CONFIGURATION',
  /** A second handler for a command or query. */
  DuplicateHandler: 'SWITCHYARD_DUPLICATE_HANDLER',
  /** Two different definitions share one `type` string. */
  DuplicateMessageType: 'SWITCHYARD_DUPLICATE_MESSAGE_TYPE',
  /** Registration after the bus started. */
  RegistrationFrozen: 'SWITCHYARD_REGISTRATION_FROZEN',
  /** A schema whose validation is asynchronous was used where a synchronous one is needed. */
  AsyncSchema: 'SWITCHYARD_ASYNC_SCHEMA',
  /** A middleware called `next()` while an earlier call was pending or had already succeeded. */
  NextCalledTwice: 'SWITCHYARD_NEXT_CALLED_TWICE',
  /** A query handler tried to publish an event or execute a command. */
  QuerySideEffect: 'SWITCHYARD_QUERY_SIDE_EFFECT',
  /** A handler used its context after its invocation had settled. */
  ContextClosed: 'SWITCHYARD_CONTEXT_CLOSED',
  /** A handler declares a dependency that the bus does not provide. */
  MissingDependency: 'SWITCHYARD_MISSING_DEPENDENCY',
  /** Dependency factories depend on each other in a cycle. */
  DependencyCycle: 'SWITCHYARD_DEPENDENCY_CYCLE',
  /** A longer-lived dependency's factory asks for a shorter-lived one. */
  CaptiveDependency: 'SWITCHYARD_CAPTIVE_DEPENDENCY',
  /** A unit of work was used after it committed or rolled back. */
  UnitOfWorkClosed: 'SWITCHYARD_UNIT_OF_WORK_CLOSED',
  /** A command or query has no handler. */
  NoHandler: 'SWITCHYARD_NO_HANDLER',
  /** A payload failed its schema. */
  ValidationFailed: 'SWITCHYARD_VALIDATION_FAILED',
  /** A value that is not a message created by a definition was dispatched. */
  NotAMessage: 'SWITCHYARD_NOT_A_MESSAGE',
  /** A message of one kind was given to the method for another (an event to `execute`). */
  WrongMessageKind: 'SWITCHYARD_WRONG_MESSAGE_KIND',
  /** An aggregate's version moved between load and save (optimistic concurrency). */
  Concurrency: 'SWITCHYARD_CONCURRENCY',
  /** A handler ran longer than its `timeout(ms)`. */
  HandlerTimeout: 'SWITCHYARD_HANDLER_TIMEOUT',
  /** One dispatch handled more than `maxIterations` messages. */
  LoopDetected: 'SWITCHYARD_LOOP_DETECTED',
  /** An event handler failed (wraps the handler's error when the bus rejects with them). */
  EventHandlerFailed: 'SWITCHYARD_EVENT_HANDLER_FAILED',
  /** Bytes from outside exceed the size limit; checked before parsing. */
  MessageTooLarge: 'SWITCHYARD_MESSAGE_TOO_LARGE',
  /** An outbox append with a message id the outbox already holds, or twice in one append. */
  DuplicateMessageId: 'SWITCHYARD_DUPLICATE_MESSAGE_ID',
  /** A consumer received a message type it has no definition for. */
  UnknownMessageType: 'SWITCHYARD_UNKNOWN_MESSAGE_TYPE',
  /** Bytes that are not UTF-8 JSON. */
  Undecodable: 'SWITCHYARD_UNDECODABLE',
  /** JSON that is not a CloudEvents envelope Switchyard can read (missing or ill-typed attributes). */
  InvalidEnvelope: 'SWITCHYARD_INVALID_ENVELOPE',
  /** An envelope of a CloudEvents `specversion` other than 1.0. */
  UnsupportedEnvelopeVersion: 'SWITCHYARD_UNSUPPORTED_ENVELOPE_VERSION',
  /** JSON with `__proto__` / `constructor.prototype` keys, or nested deeper than allowed. */
  UnsafePayload: 'SWITCHYARD_UNSAFE_PAYLOAD',
  /** A message that cannot be encoded (a payload JSON cannot represent, say). */
  Unencodable: 'SWITCHYARD_UNENCODABLE',
  /** An outbox or inbox store operation failed (the driver's error is the `cause`). */
  OutboxStore: 'SWITCHYARD_OUTBOX_STORE',
  /** A broker operation failed (the driver's error is the `cause`). */
  Transport: 'SWITCHYARD_TRANSPORT',
  /** A publish through a transport that was closed. */
  TransportClosed: 'SWITCHYARD_TRANSPORT_CLOSED',
  /** A publish did not complete within its time limit. */
  PublishTimeout: 'SWITCHYARD_PUBLISH_TIMEOUT',
  /** The broker accepted a publish but could route it to no queue (no consumer group bound yet). */
  Unroutable: 'SWITCHYARD_UNROUTABLE',
  /** A dispatch was attempted after `bus.close()`. */
  BusClosed: 'SWITCHYARD_BUS_CLOSED',
  /** The dispatch was aborted through its `signal`. */
  Aborted: 'SWITCHYARD_ABORTED',
} as const

/** A stable error code. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** Plain data about an error: message type, handler name, topic… Never a live object. */
export type ErrorDetails = Readonly<
  Record<string, string | number | boolean | null | undefined | readonly string[]>
>

/** Options shared by every Switchyard error constructor. */
export interface SwitchyardErrorOptions {
  readonly cause?: unknown
  readonly details?: ErrorDetails
  readonly retryable?: boolean
}

/** The base of every error Switchyard raises. */
export class SwitchyardError extends Error {
  /** A stable code (see docs/errors.md). */
  readonly code: ErrorCode
  /** Whether the same operation may succeed if tried again. */
  readonly retryable: boolean
  /** Plain data naming the things involved. */
  readonly details: ErrorDetails

  constructor(code: ErrorCode, message: string, options: SwitchyardErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.retryable = options.retryable ?? false
    this.details = options.details ?? {}
  }
}

/** A programmer error: bad options, a duplicate handler, registration after start. */
export class ConfigurationError extends SwitchyardError {
  constructor(
    message: string,
    options: SwitchyardErrorOptions & { code?: ErrorCode; problems?: readonly string[] } = {},
  ) {
    super(options.code ?? ErrorCode.Configuration, message, { ...options, retryable: false })
    this.problems = options.problems ?? [message]
  }
  /** Every problem found at once (a registry reports them all, not only the first). */
  readonly problems: readonly string[]
}

/** No handler is registered for a command or query. */
export class HandlerNotFoundError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions = {}) {
    super(ErrorCode.NoHandler, message, { ...options, retryable: false })
  }
}

/** One issue reported by a Standard Schema validator. */
export interface ValidationIssue {
  readonly message: string
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined
}

/** A payload failed its schema, or a value is not a message at all. Never retryable. */
export class MessageValidationError extends SwitchyardError {
  /** The schema's issues (empty when the value was not a message at all). */
  readonly issues: readonly ValidationIssue[]
  constructor(
    message: string,
    options: SwitchyardErrorOptions & {
      code?: ErrorCode
      issues?: readonly ValidationIssue[]
    } = {},
  ) {
    super(options.code ?? ErrorCode.ValidationFailed, message, { ...options, retryable: false })
    this.issues = options.issues ?? []
  }
}

/** An aggregate's version moved between load and save. Retryable: re-run on fresh state. */
export class ConcurrencyError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions = {}) {
    super(ErrorCode.Concurrency, message, { retryable: true, ...options })
  }
}

/** A handler ran longer than allowed; its signal was aborted. Retryable. */
export class HandlerTimeoutError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions = {}) {
    super(ErrorCode.HandlerTimeout, message, { retryable: true, ...options })
  }
}

/**
 * Bytes that cannot become a message (too large, not JSON, not an envelope, unsafe). Never
 * retryable: the same bytes fail the same way, so they go straight to the dead letters.
 */
export class SerializationError extends SwitchyardError {
  constructor(code: ErrorCode, message: string, options: SwitchyardErrorOptions = {}) {
    super(code, message, { ...options, retryable: false })
  }
}

/** A store operation failed in the database; retryable by default, the driver error is `cause`. */
export class OutboxStoreError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions & { code?: ErrorCode } = {}) {
    super(options.code ?? ErrorCode.OutboxStore, message, { retryable: true, ...options })
  }
}

/** A broker operation failed; retryable by default, the driver error is `cause`. */
export class TransportError extends SwitchyardError {
  constructor(message: string, options: SwitchyardErrorOptions & { code?: ErrorCode } = {}) {
    super(options.code ?? ErrorCode.Transport, message, { retryable: true, ...options })
  }
}

/** One dispatch handled more messages than `maxIterations`: a handler cycle. */
export class LoopDetectedError extends SwitchyardError {
  /** The message types of the cycle, in causation order. */
  readonly cycle: readonly string[]
  constructor(message: string, cycle: readonly string[], options: SwitchyardErrorOptions = {}) {
    super(ErrorCode.LoopDetected, message, { ...options, retryable: false })
    this.cycle = cycle
  }
}

/**
 * True when `error` has the shape of a Switchyard error (optionally with the given code). Checks
 * the shape rather than `instanceof`, so errors from another copy of the package are recognised.
 */
export function isSwitchyardError(error: unknown, code?: ErrorCode): error is SwitchyardError {
  if (typeof error !== 'object' || error === null || !(error instanceof Error)) return false
  const candidate = error as Partial<SwitchyardError>
  if (typeof candidate.code !== 'string' || !candidate.code.startsWith('SWITCHYARD_')) return false
  if (typeof candidate.retryable !== 'boolean') return false
  return code === undefined || candidate.code === code
}

/**
 * Whether an error is worth retrying: a Switchyard error says so through `retryable`; any other
 * error with a boolean `retryable` property is taken at its word; unknown errors (a driver's
 * connection error, say) are assumed transient.
 */
export function isRetryable(error: unknown): boolean {
  if (typeof error === 'object' && error !== null) {
    const flag = (error as { retryable?: unknown }).retryable
    if (typeof flag === 'boolean') return flag
  }
  return true
}
