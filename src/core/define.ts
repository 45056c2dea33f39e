/**
 * `defineCommand`, `defineEvent`, `defineQuery`: the factories of message definitions.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { ConfigurationError, ErrorCode, MessageValidationError } from '../errors.js'
import { currentCause } from './correlation-scope.js'
import type {
  CommandDefinition,
  EventDefinition,
  EventDefinitionOptions,
  Message,
  MessageKind,
  MessageOptions,
  QueryDefinition,
} from './message.js'
import { uuidv7 } from './uuid.js'
import { isThenable } from './thenable.js'

const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze(
  Object.create(null) as Record<string, string>,
)
const TYPE_PATTERN = /^[A-Za-z][A-Za-z0-9_.:/-]{0,199}$/

/** Builds a message. All messages share one property order, so the engine sees one shape. */
export function createMessage<K extends MessageKind, T extends string, P>(
  kind: K,
  type: T,
  payload: P,
  options: MessageOptions | undefined,
): Message<K, T, P> {
  const id = options?.id ?? uuidv7()
  const cause = currentCause()
  return {
    kind,
    type,
    payload,
    id,
    timestamp: options?.timestamp ?? Date.now(),
    correlationId: options?.correlationId ?? cause?.correlationId ?? id,
    causationId: options?.causationId ?? cause?.id,
    headers: options?.headers ?? EMPTY_HEADERS,
  }
}

/** True when `value` has the shape of a message made by a definition. */
export function isMessage(value: unknown): value is Message {
  if (typeof value !== 'object' || value === null) return false
  const m = value as Partial<Message>
  return (
    typeof m.type === 'string' &&
    typeof m.id === 'string' &&
    (m.kind === 'command' || m.kind === 'event' || m.kind === 'query')
  )
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return typeof value
  const ctor = (value as { constructor?: { name?: unknown } }).constructor
  return typeof ctor?.name === 'string' && ctor.name !== 'Object'
    ? `a ${ctor.name}`
    : 'a plain object'
}

/** The typed error for a value that is not a message. */
export function notAMessage(value: unknown, method: string): MessageValidationError {
  return new MessageValidationError(
    `bus.${method}() was given ${describe(value)}, not a message; create messages with a definition, e.g. const Allocate = defineCommand('Allocate'); bus.${method}(Allocate({ ... }))`,
    { code: ErrorCode.NotAMessage, details: { method } },
  )
}

function validationError(
  type: string,
  issues: readonly StandardSchemaV1.Issue[],
): MessageValidationError {
  const summary = issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path?.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
  return new MessageValidationError(`Invalid payload for "${type}": ${summary}`, {
    issues,
    details: { messageType: type, issueCount: issues.length },
  })
}

function validateSync<I, P>(
  schema: StandardSchemaV1<I, P> | undefined,
  type: string,
  payload: I,
): P {
  if (schema === undefined) return payload as unknown as P
  const result = schema['~standard'].validate(payload)
  if (result instanceof Promise) {
    // Keep an unhandled rejection from escaping: the caller is told to use createAsync().
    result.catch(() => undefined)
    throw new ConfigurationError(
      `The schema of "${type}" validates asynchronously; create the message with ${type}.createAsync(payload)`,
      { code: ErrorCode.AsyncSchema, details: { messageType: type } },
    )
  }
  if (result.issues !== undefined) throw validationError(type, result.issues)
  return result.value
}

async function validateAsync<I, P>(
  schema: StandardSchemaV1<I, P> | undefined,
  type: string,
  payload: I,
): Promise<P> {
  if (schema === undefined) return payload as unknown as P
  const result = await schema['~standard'].validate(payload)
  if (result.issues !== undefined) throw validationError(type, result.issues)
  return result.value
}

function isSchema(value: unknown): value is StandardSchemaV1 {
  // arktype's types are callable, so a schema may be a function as well as an object.
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    '~standard' in value
  )
}

function checkType(type: unknown, factory: string): asserts type is string {
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) {
    throw new ConfigurationError(
      `${factory}() needs an explicit type string (a letter, then up to 199 letters, digits or _ . : / -); got ${JSON.stringify(type)}`,
      { details: { factory } },
    )
  }
}

type AnyDefinitionShape = ((payload: unknown, options?: MessageOptions) => Message) &
  Record<string, unknown>

function build(
  kind: MessageKind,
  type: string,
  schema: StandardSchemaV1 | undefined,
): AnyDefinitionShape {
  const definition = ((payload: unknown, options?: MessageOptions) =>
    createMessage(kind, type, validateSync(schema, type, payload), options)) as AnyDefinitionShape
  definition.kind = kind
  definition.type = type
  definition.schema = schema
  definition.createAsync =
    schema === undefined
      ? // Nothing to validate: no wait, unless the payload itself is a promise.
        (payload: unknown, options?: MessageOptions) => {
          try {
            return isThenable(payload)
              ? Promise.resolve(payload).then((p) => createMessage(kind, type, p, options))
              : Promise.resolve(createMessage(kind, type, payload, options))
          } catch (error) {
            return Promise.reject(error)
          }
        }
      : async (payload: unknown, options?: MessageOptions) =>
          createMessage(kind, type, await validateAsync(schema, type, payload), options)
  definition.is = (value: unknown) => isMessage(value) && value.type === type && value.kind === kind
  // Type-level only: the result and payload types live in the phantom types, not at run time.
  definition.returns = () => definition
  definition.withPayload = () => definition
  return definition
}

/**
 * Defines a command: an intent with exactly one handler.
 *
 * @example
 * const Allocate = defineCommand('Allocate', z.object({ orderId: z.string(), qty: z.number() })).returns<string>()
 * const batchRef: string = await bus.execute(Allocate({ orderId: 'o1', qty: 2 }))
 */
export function defineCommand<const T extends string, S extends StandardSchemaV1>(
  type: T,
  schema: S,
): CommandDefinition<T, StandardSchemaV1.InferOutput<S>, void, StandardSchemaV1.InferInput<S>>
export function defineCommand<P = void, R = void, const T extends string = string>(
  type: T,
): CommandDefinition<T, P, R>
export function defineCommand(type: string, schema?: StandardSchemaV1): unknown {
  checkType(type, 'defineCommand')
  return build('command', type, isSchema(schema) ? schema : undefined)
}

/**
 * Defines a query: a read with exactly one handler that returns a result and cannot publish.
 *
 * @example
 * const GetAllocations = defineQuery<{ orderId: string }>('GetAllocations').returns<string[]>()
 */
export function defineQuery<const T extends string, S extends StandardSchemaV1>(
  type: T,
  schema: S,
): QueryDefinition<T, StandardSchemaV1.InferOutput<S>, unknown, StandardSchemaV1.InferInput<S>>
export function defineQuery<P = void, R = unknown, const T extends string = string>(
  type: T,
): QueryDefinition<T, P, R>
export function defineQuery(type: string, schema?: StandardSchemaV1): unknown {
  checkType(type, 'defineQuery')
  return build('query', type, isSchema(schema) ? schema : undefined)
}

/**
 * Defines an event: a fact with zero or more handlers. With `{ topic }` it is an integration
 * event, which the outbox publishes to that topic.
 *
 * @example
 * const Allocated = defineEvent('Allocated', z.object({ orderId: z.string(), batchRef: z.string() }))
 */
export function defineEvent<const T extends string, S extends StandardSchemaV1>(
  type: T,
  schema: S,
  options?: EventDefinitionOptions<StandardSchemaV1.InferOutput<S>>,
): EventDefinition<T, StandardSchemaV1.InferOutput<S>, StandardSchemaV1.InferInput<S>>
export function defineEvent<P = void, const T extends string = string>(
  type: T,
  options?: EventDefinitionOptions<P>,
): EventDefinition<T, P>
export function defineEvent(
  type: string,
  schemaOrOptions?: StandardSchemaV1 | EventDefinitionOptions<never>,
  maybeOptions?: EventDefinitionOptions<never>,
): unknown {
  checkType(type, 'defineEvent')
  const schema = isSchema(schemaOrOptions) ? schemaOrOptions : undefined
  const options =
    schema === undefined
      ? (schemaOrOptions as EventDefinitionOptions<never> | undefined)
      : maybeOptions
  const definition = build('event', type, schema)
  delete definition.returns
  definition.topic = options?.topic
  definition.keyOf = options?.key
  if (definition.keyOf !== undefined && typeof definition.keyOf !== 'function') {
    throw new ConfigurationError(
      `defineEvent("${type}") option key must be a function of the payload`,
    )
  }
  return definition
}
