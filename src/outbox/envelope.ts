/**
 * The wire envelope: CloudEvents 1.0 in structured JSON mode, so any CloudEvents consumer can read
 * what Switchyard publishes. Attributes: `specversion`, `id`, `type`, `source`, `time`,
 * `datacontenttype`, `data`, and the extensions `correlationid`, `causationid`, `sykind`
 * (command or event), `partitionkey` (the ordering key, CloudEvents' partitioning extension),
 * `traceparent` / `tracestate` (distributed tracing extension) and `syheaders` (the remaining
 * headers as a JSON string, since extension values must be primitive).
 *
 * Decoding treats bytes as hostile: the size is checked before parsing, UTF-8 is strict,
 * `__proto__` / `constructor.prototype` keys and excessive nesting are refused, and every attribute
 * is type-checked. Each failure is a `SerializationError` with a stable code; nothing throws
 * anything else, whatever the input.
 */
import { ErrorCode, SerializationError } from '../errors.js'
import type { Message } from '../core/message.js'

/** Limits applied when decoding untrusted bytes. */
export interface DecodeLimits {
  /** Largest body accepted, in bytes (checked before parsing). Default 1 MiB. */
  readonly maxBytes?: number
  /** Deepest nesting of objects and arrays accepted. Default 64. */
  readonly maxDepth?: number
  /** Longest `traceparent` / `tracestate` accepted. Default 512 characters. */
  readonly maxTraceHeaderLength?: number
}

/** Options of {@link encodeEnvelope}. */
export interface EncodeOptions {
  /** The CloudEvents `source`: who produced the message, e.g. `/orders-service`. */
  readonly source: string
  /** The ordering key (`partitionkey`). */
  readonly key?: string | undefined
}

const DEFAULTS = { maxBytes: 1024 * 1024, maxDepth: 64, maxTraceHeaderLength: 512 } as const
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const
const utf8 = new TextDecoder('utf-8', { fatal: true })
const encoder = new TextEncoder()

/** Encodes a message as CloudEvents 1.0 structured JSON bytes. */
export function encodeEnvelope(message: Message, options: EncodeOptions): Uint8Array {
  const headers: Record<string, string> = {}
  let traceparent: string | undefined
  let tracestate: string | undefined
  for (const [name, value] of Object.entries(message.headers)) {
    if (name === 'traceparent') traceparent = value
    else if (name === 'tracestate') tracestate = value
    else headers[name] = value
  }
  const envelope: Record<string, unknown> = {
    specversion: '1.0',
    id: message.id,
    type: message.type,
    source: options.source,
    time: new Date(message.timestamp).toISOString(),
    datacontenttype: 'application/json',
    sykind: message.kind,
    correlationid: message.correlationId,
  }
  if (message.causationId !== undefined) envelope.causationid = message.causationId
  if (options.key !== undefined) envelope.partitionkey = options.key
  if (traceparent !== undefined) envelope.traceparent = traceparent
  if (tracestate !== undefined) envelope.tracestate = tracestate
  if (Object.keys(headers).length > 0) envelope.syheaders = JSON.stringify(headers)
  envelope.data = message.payload
  let text: string | undefined
  try {
    text = JSON.stringify(envelope, rejectUnencodable)
  } catch (error) {
    throw new SerializationError(
      ErrorCode.Unencodable,
      `Cannot encode "${message.type}" (${message.id}) as JSON: ${(error as Error).message}`,
      {
        cause: error,
        details: { messageType: message.type, messageId: message.id },
      },
    )
  }
  return encoder.encode(text)
}

function rejectUnencodable(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint')
    throw new TypeError('a bigint cannot be represented in JSON; encode it as a string')
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new TypeError(`${value} cannot be represented in JSON`)
  return value
}

/** A decoded envelope: the message, its CloudEvents source and its ordering key. */
export interface DecodedEnvelope {
  readonly message: Message
  readonly source: string
  readonly key: string | undefined
}

/** Decodes untrusted bytes into a message, or throws a `SerializationError` saying why not. */
export function decodeEnvelope(
  body: Uint8Array | string,
  limits: DecodeLimits = {},
): DecodedEnvelope {
  const maxBytes = limits.maxBytes ?? DEFAULTS.maxBytes
  const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
  if (size > maxBytes) {
    throw new SerializationError(
      ErrorCode.MessageTooLarge,
      `The message body has ${size} bytes; the limit is ${maxBytes}`,
      {
        details: { bytes: size, maxBytes },
      },
    )
  }
  let text: string
  try {
    text = typeof body === 'string' ? body : utf8.decode(body)
  } catch (error) {
    throw new SerializationError(ErrorCode.Undecodable, 'The message body is not valid UTF-8', {
      cause: error,
    })
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new SerializationError(
      ErrorCode.Undecodable,
      `The message body is not JSON: ${(error as Error).message}`,
      { cause: error },
    )
  }
  checkSafe(parsed, limits.maxDepth ?? DEFAULTS.maxDepth)
  return toMessage(parsed, limits.maxTraceHeaderLength ?? DEFAULTS.maxTraceHeaderLength)
}

/** Refuses prototype-polluting keys and excessive nesting, iteratively (no stack overflow). */
function checkSafe(value: unknown, maxDepth: number): void {
  if (typeof value !== 'object' || value === null) return
  // Objects and arrays still to look into, and their depths (primitives are never pushed).
  const objects: object[] = [value]
  const depths: number[] = [0]
  while (objects.length > 0) {
    const current = objects.pop()!
    const depth = depths.pop()!
    if (depth >= maxDepth) {
      throw new SerializationError(
        ErrorCode.UnsafePayload,
        `The message nests deeper than ${maxDepth} levels`,
        { details: { maxDepth } },
      )
    }
    for (const key of Object.keys(current)) {
      const child = (current as Record<string, unknown>)[key]
      if (
        key === '__proto__' ||
        (key === 'constructor' &&
          typeof child === 'object' &&
          child !== null &&
          'prototype' in child)
      ) {
        throw new SerializationError(
          ErrorCode.UnsafePayload,
          `The message contains a "${key}" key, which could pollute prototypes`,
          {
            details: { key },
          },
        )
      }
      if (typeof child === 'object' && child !== null) {
        objects.push(child)
        depths.push(depth + 1)
      }
    }
  }
}

function invalid(reason: string, details: Record<string, string> = {}): SerializationError {
  return new SerializationError(
    ErrorCode.InvalidEnvelope,
    `Not a CloudEvents envelope Switchyard can read: ${reason}`,
    { details },
  )
}

function stringAttribute(envelope: Record<string, unknown>, name: string, required: true): string
function stringAttribute(
  envelope: Record<string, unknown>,
  name: string,
  required: false,
): string | undefined
function stringAttribute(
  envelope: Record<string, unknown>,
  name: string,
  required: boolean,
): string | undefined {
  const value = envelope[name]
  if (value === undefined && !required) return undefined
  if (typeof value !== 'string' || value === '')
    throw invalid(`"${name}" must be a non-empty string`, { attribute: name })
  return value
}

function toMessage(parsed: unknown, maxTrace: number): DecodedEnvelope {
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw invalid('the body is not a JSON object')
  const envelope = parsed as Record<string, unknown>
  if (envelope.specversion !== '1.0') {
    if (typeof envelope.specversion === 'string') {
      throw new SerializationError(
        ErrorCode.UnsupportedEnvelopeVersion,
        `CloudEvents specversion "${envelope.specversion.slice(0, 20)}" is not supported; Switchyard reads 1.0`,
        {
          details: { specversion: envelope.specversion.slice(0, 20) },
        },
      )
    }
    throw invalid('"specversion" is missing')
  }
  const id = stringAttribute(envelope, 'id', true)
  const type = stringAttribute(envelope, 'type', true)
  const source = stringAttribute(envelope, 'source', true)
  const contentType = stringAttribute(envelope, 'datacontenttype', false)
  if (contentType !== undefined && !/^application\/(?:[\w.+-]+\+)?json\b/.test(contentType)) {
    throw invalid(`"datacontenttype" must be JSON, not "${contentType.slice(0, 40)}"`)
  }
  const time = stringAttribute(envelope, 'time', false)
  const timestamp = time === undefined ? Date.now() : Date.parse(time)
  if (Number.isNaN(timestamp)) throw invalid('"time" is not an RFC 3339 timestamp')
  const kind = stringAttribute(envelope, 'sykind', false) ?? 'event'
  if (kind !== 'event' && kind !== 'command')
    throw invalid(`"sykind" must be "event" or "command", not "${kind.slice(0, 20)}"`)
  const headers: Record<string, string> = Object.create(null) as Record<string, string>
  const rawHeaders = stringAttribute(envelope, 'syheaders', false)
  if (rawHeaders !== undefined) {
    let decoded: unknown
    try {
      decoded = JSON.parse(rawHeaders)
    } catch {
      throw invalid('"syheaders" is not a JSON object')
    }
    if (typeof decoded !== 'object' || decoded === null || Array.isArray(decoded))
      throw invalid('"syheaders" is not a JSON object')
    for (const [name, value] of Object.entries(decoded)) {
      if (name === '__proto__' || typeof value !== 'string')
        throw invalid('"syheaders" must map names to strings')
      headers[name] = value
    }
  }
  for (const name of TRACE_HEADERS) {
    const value = stringAttribute(envelope, name, false)
    if (value === undefined) continue
    if (value.length > maxTrace)
      throw invalid(`"${name}" is longer than ${maxTrace} characters`, { attribute: name })
    headers[name] = value
  }
  const correlationId = stringAttribute(envelope, 'correlationid', false) ?? id
  const causationId = stringAttribute(envelope, 'causationid', false)
  const key = stringAttribute(envelope, 'partitionkey', false)
  const message: Message = {
    kind,
    type,
    payload: envelope.data,
    id,
    timestamp,
    correlationId,
    causationId,
    headers,
  }
  return { message, source, key }
}
