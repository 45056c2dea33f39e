/**
 * The part of `amqplib`'s promise API Switchyard calls, as structural types (no import of the
 * driver). An `amqplib` `ChannelModel` (what `connect(url)` resolves with) satisfies
 * {@link AmqpConnection}; its confirm channels satisfy {@link AmqpConfirmChannel}. Tested with
 * amqplib 2.x; 0.10 and 1.x have the same shape.
 */

/** A table of AMQP header values (amqplib decodes long strings to strings). */
export type AmqpHeaders = Record<string, unknown>

/** The message properties Switchyard sets or reads. */
export interface AmqpProperties {
  readonly messageId?: string | undefined
  readonly headers?: AmqpHeaders | undefined
  readonly contentType?: string | undefined
  readonly deliveryMode?: number | boolean | undefined
  readonly timestamp?: number | undefined
}

/** Options of a publish: the properties plus the flags Switchyard uses. */
export interface AmqpPublishOptions {
  readonly messageId?: string
  readonly headers?: AmqpHeaders
  readonly contentType?: string
  readonly timestamp?: number
  readonly persistent?: boolean
  readonly mandatory?: boolean
}

/** A message as amqplib hands it out (consumed, fetched with `get`, or returned). */
export interface AmqpMessage {
  readonly content: Buffer
  readonly fields: {
    readonly deliveryTag: number
    readonly redelivered?: boolean
    readonly exchange: string
    readonly routingKey: string
  }
  readonly properties: AmqpProperties
}

/** Queue arguments and flags of `assertQueue`. */
export interface AmqpQueueOptions {
  readonly durable?: boolean
  readonly arguments?: Record<string, unknown>
}

/** The channel calls Switchyard makes; amqplib's `ConfirmChannel` has them all. */
export interface AmqpConfirmChannel {
  assertExchange(exchange: string, type: string, options?: { durable?: boolean }): Promise<unknown>
  assertQueue(queue: string, options?: AmqpQueueOptions): Promise<unknown>
  bindQueue(queue: string, source: string, pattern: string): Promise<unknown>
  prefetch(count: number): Promise<unknown>
  consume(
    queue: string,
    onMessage: (message: AmqpMessage | null) => void,
    options?: { noAck?: boolean },
  ): Promise<{ consumerTag: string }>
  cancel(consumerTag: string): Promise<unknown>
  get(queue: string, options?: { noAck?: boolean }): Promise<AmqpMessage | false>
  ack(message: AmqpMessage): void
  nack(message: AmqpMessage, allUpTo?: boolean, requeue?: boolean): void
  /** Returns false when the write buffer is full: wait for `'drain'` before writing more. */
  publish(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: AmqpPublishOptions,
    callback: (error: unknown) => void,
  ): boolean
  close(): Promise<void>
  on(event: 'close' | 'drain', listener: () => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'return', listener: (message: AmqpMessage) => void): unknown
  removeListener(event: 'close' | 'drain', listener: () => void): unknown
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  removeListener(event: 'return', listener: (message: AmqpMessage) => void): unknown
}

/** A connection (amqplib's `ChannelModel`). */
export interface AmqpConnection {
  createConfirmChannel(): Promise<AmqpConfirmChannel>
  close(): Promise<void>
  on(event: 'close', listener: (error?: Error) => void): unknown
  on(event: 'error', listener: (error: Error) => void): unknown
  on(event: 'blocked', listener: (reason: string) => void): unknown
  on(event: 'unblocked', listener: () => void): unknown
  removeListener(event: 'close', listener: (error?: Error) => void): unknown
  removeListener(event: 'error', listener: (error: Error) => void): unknown
  removeListener(event: 'blocked', listener: (reason: string) => void): unknown
  removeListener(event: 'unblocked', listener: () => void): unknown
}

/** Your connection, or a function that opens one (needed for reconnects). */
export type AmqpConnectionSource = AmqpConnection | (() => Promise<AmqpConnection>)
