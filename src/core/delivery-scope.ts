/**
 * @internal How a consumer joins the handlers' units of work without the bus knowing about
 * inboxes: while a consumer dispatches a received message, this scope is active (it follows the
 * async calls, follow-up events included), and the units of work made for a handler invocation
 * are offered to it before the handler runs. It records the message in one of them (the first
 * that has a transaction executor; two would wait on each other's record). Answering false means
 * "this handler already applied this message": the bus rolls the work back and skips the handler.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Message } from './message.js'
import type { UnitOfWork } from './unit-of-work.js'

export interface DeliveryScope {
  join(units: readonly UnitOfWork[], handler: string, message: Message): Promise<boolean>
}

export const deliveryScope = new AsyncLocalStorage<DeliveryScope>()
