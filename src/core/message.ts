/**
 * Messages are plain data made by definitions. A definition fixes the explicit, stable `type`
 * string (the routing key in process and the wire type across services; never a class name), the
 * kind, an optional Standard Schema (zod, valibot, arktype…) and, for commands and queries, the
 * result type as a phantom type so `bus.execute(cmd)` is typed without casts.
 */
import type { StandardSchemaV1 } from '@standard-schema/spec'

/** The three kinds of message. */
export type MessageKind = 'command' | 'event' | 'query'

declare const resultType: unique symbol

/** Metadata every message carries. */
export interface MessageMetadata {
  /** A UUIDv7: unique and time-ordered. Duplicates of one message (redeliveries) share it. */
  readonly id: string
  /** Creation time, milliseconds since the Unix epoch. */
  readonly timestamp: number
  /** Shared by every message that follows from one original request. Defaults to `id`. */
  readonly correlationId: string
  /** The id of the message whose handling produced this one; undefined for an original. */
  readonly causationId: string | undefined
  /** Free string headers (trace context, tenant…). */
  readonly headers: Readonly<Record<string, string>>
}

/** A message: kind, type, payload and metadata. Plain, serialisable data. */
export interface Message<
  K extends MessageKind = MessageKind,
  T extends string = string,
  P = unknown,
> extends MessageMetadata {
  readonly kind: K
  readonly type: T
  readonly payload: P
}

/** An intent with exactly one handler, which may return a result of type `R`. */
export interface Command<T extends string = string, P = unknown, R = unknown> extends Message<
  'command',
  T,
  P
> {
  /** Phantom: carries the result type; never present at run time. */
  readonly [resultType]?: R
}

/** A fact with zero or more handlers. */
export type Event<T extends string = string, P = unknown> = Message<'event', T, P>

/** A read with exactly one handler, returning `R`. Its handler cannot publish or execute. */
export interface Query<T extends string = string, P = unknown, R = unknown> extends Message<
  'query',
  T,
  P
> {
  /** Phantom: carries the result type; never present at run time. */
  readonly [resultType]?: R
}

/** Any message. */
export type AnyMessage = Message

/** The result type of a command or query message (or definition). */
export type ResultOf<M> =
  M extends Command<string, unknown, infer R>
    ? R
    : M extends Query<string, unknown, infer R>
      ? R
      : void

/** Options for creating a message. Everything is filled in when left out. */
export interface MessageOptions {
  readonly id?: string
  readonly timestamp?: number
  readonly correlationId?: string
  readonly causationId?: string
  readonly headers?: Readonly<Record<string, string>>
}

/** What every definition has. */
export interface DefinitionBase<K extends MessageKind, T extends string, P, I> {
  readonly kind: K
  readonly type: T
  /** The payload schema, if any. */
  readonly schema: StandardSchemaV1<I, P> | undefined
}

/** The message a command or query definition creates. */
export type RequestOf<K extends 'command' | 'query', T extends string, P, R> = K extends 'command'
  ? Command<T, P, R>
  : Query<T, P, R>

/**
 * Creates commands or queries of one type: call it with a payload. `.returns<R>()` fixes the
 * result type, `.withPayload<P>()` the payload type of a definition without a schema.
 */
export interface RequestDefinition<
  K extends 'command' | 'query',
  T extends string = string,
  P = unknown,
  R = unknown,
  I = P,
> extends DefinitionBase<K, T, P, I> {
  (payload: I, options?: MessageOptions): RequestOf<K, T, P, R>
  /** Creates a message with a schema whose validation is asynchronous. */
  createAsync(payload: I, options?: MessageOptions): Promise<RequestOf<K, T, P, R>>
  /** True when `value` is a message of this definition's type. */
  is(value: unknown): value is RequestOf<K, T, P, R>
  /** The same definition, typed to return `R2` from its handler. */
  returns<R2>(): RequestDefinition<K, T, P, R2, I>
  /** The same definition with payload type `P2` (for definitions without a schema). */
  withPayload<P2>(): RequestDefinition<K, T, P2, R, P2>
}

/** Creates commands of one type (see {@link RequestDefinition}). */
export type CommandDefinition<
  T extends string = string,
  P = unknown,
  R = unknown,
  I = P,
> = RequestDefinition<'command', T, P, R, I>

/** Creates queries of one type (see {@link RequestDefinition}). */
export type QueryDefinition<
  T extends string = string,
  P = unknown,
  R = unknown,
  I = P,
> = RequestDefinition<'query', T, P, R, I>

/** Creates events of one type. */
export interface EventDefinition<
  T extends string = string,
  P = unknown,
  I = P,
> extends DefinitionBase<'event', T, P, I> {
  (payload: I, options?: MessageOptions): Event<T, P>
  /** Creates an event with a schema whose validation is asynchronous. */
  createAsync(payload: I, options?: MessageOptions): Promise<Event<T, P>>
  /** True when `value` is an event of this definition's type. */
  is(value: unknown): value is Event<T, P>
  /** The topic integration events are published to through the outbox; undefined = in process only. */
  readonly topic: string | undefined
  /** The ordering key of an event's payload, when the definition has one. */
  readonly keyOf: ((payload: P) => string) | undefined
  /** The same definition with payload type `P2` (for definitions without a schema). */
  withPayload<P2>(): EventDefinition<T, P2, P2>
}

/** Any definition, whatever its payload and result types. */
export interface AnyDefinition {
  (payload: never, options?: MessageOptions): Message
  readonly kind: MessageKind
  readonly type: string
  readonly schema: StandardSchemaV1 | undefined
  is(value: unknown): boolean
}

/** Any event definition, whatever its payload type (what the outbox writer needs of one). */
export interface AnyEventDefinition {
  readonly kind: 'event'
  readonly type: string
  readonly topic: string | undefined
  readonly keyOf: ((payload: never) => string) | undefined
}

/** The message type a definition creates. */
export type MessageOf<D> = D extends (payload: never, options?: MessageOptions) => infer M
  ? M
  : never

/** Options of `defineEvent`. */
export interface EventDefinitionOptions<P = unknown> {
  /** Publish this event to the given topic through the outbox (integration event). */
  readonly topic?: string
  /**
   * The ordering key of an integration event (usually its aggregate's id): events of one key are
   * published in commit order. Without it, events are published in no particular order.
   */
  readonly key?: (payload: P) => string
}
