/**
 * The message being handled, kept in AsyncLocalStorage once the `correlation()` middleware is in
 * use, so that messages created anywhere during a handler (domain code that calls a definition,
 * not only `ctx.publish`) inherit its correlation id and take its id as causation id.
 *
 * Nothing is allocated, and message creation pays one `undefined` check, until then.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { MessageMetadata } from './message.js'

let storage: AsyncLocalStorage<MessageMetadata> | undefined

/** The message whose handler is running, when the correlation middleware is in use. */
export function currentCause(): MessageMetadata | undefined {
  return storage === undefined ? undefined : storage.getStore()
}

/** Runs `fn` with `cause` as the current message. */
export function runWithCause<R>(cause: MessageMetadata, fn: () => R): R {
  storage ??= new AsyncLocalStorage<MessageMetadata>()
  return storage.run(cause, fn)
}
