/**
 * @internal Runs a handler that declared dependencies: resolves them for this invocation, links
 * any unit of work among them to the bus (its committed events become the handler's follow-ups),
 * rolls back work the handler did not commit, and disposes the invocation's transient values.
 */
import { ErrorCode, SwitchyardError } from '../errors.js'
import { deliveryScope } from './delivery-scope.js'
import {
  type DependencyContainer,
  disposeAll,
  type InvocationCache,
  needsDisposal,
} from './container.js'
import { type DispatchContext, linkTo } from './context.js'
import type { DispatchScope } from './dispatch-scope.js'
import { type Logger, type LogLevel, logAt } from './logger.js'
import type { Event, Message } from './message.js'
import type { HandlerEntry } from './registry.js'
import type { Call } from './routes.js'
import { isUnitOfWork, LINK_EVENTS, type UnitOfWork } from './unit-of-work.js'

/** What the bus lends to dependency-aware invocations. */
export interface DependencyRuntime {
  readonly container: DependencyContainer
  readonly logger: Logger
  readonly activityLevel: LogLevel
  newScope(root: Message, signal: AbortSignal | undefined): DispatchScope
  /** A unit of work of this invocation committed these events. */
  committed(ctx: DispatchContext, events: readonly Event[]): void
  disposeFailed(error: unknown): void
}

export async function invokeWithDependencies(
  runtime: DependencyRuntime,
  entry: HandlerEntry,
  message: Message,
  ctx: DispatchContext,
): Promise<unknown> {
  const scope = (ctx.scope ??= runtime.newScope(ctx.message, ctx.rootSignal))
  const invocation: InvocationCache = { transients: [] }
  const units: UnitOfWork[] = []
  try {
    const deps: Record<string, unknown> = {}
    for (const name of entry.deps)
      deps[name] = await runtime.container.resolve(name, scope, invocation)
    // Every unit of work made for this invocation, also through another factory's get().
    for (const value of invocation.transients) {
      if (!isUnitOfWork(value)) continue
      units.push(value)
      value[LINK_EVENTS] = (event) => linkTo(event, ctx.message)
      if (message.kind === 'query')
        value.on('beforeCommit', ({ events }) => refuseQueryEvents(message, entry, events))
      value.on('committed', ({ events }) => runtime.committed(ctx, events))
    }
    const delivery = deliveryScope.getStore()
    if (delivery !== undefined && units.length > 0) {
      if (!(await delivery.join(units, entry.name, message))) {
        logAt(
          runtime.logger,
          runtime.activityLevel,
          { messageType: message.type, messageId: message.id, handler: entry.name },
          'handler skipped: its inbox already holds this message (a redelivery)',
        )
        for (const unit of units) if (unit.state === 'open') await unit.rollback()
        return undefined
      }
    }
    ctx.deps = deps
    const result = await (entry.fn as Call)(message, ctx)
    for (const unit of units) {
      if (unit.state !== 'open') continue
      const fields = { messageType: message.type, messageId: message.id, handler: entry.name }
      logAt(
        runtime.logger,
        runtime.activityLevel,
        fields,
        'handler finished without committing its unit of work; rolled back, no events released',
      )
      await unit.rollback()
    }
    return result
  } catch (error) {
    for (const unit of units) {
      if (unit.state === 'open')
        await unit.rollback().catch((e: unknown) => runtime.disposeFailed(e))
    }
    throw error
  } finally {
    // Most invocations only made units of work, which ended above: skip the wait for nothing.
    if (invocation.transients.some(needsDisposal))
      await disposeAll(invocation.transients, (error) => runtime.disposeFailed(error))
  }
}

/** A query handler may commit reads-with-writes, but not record events: a query cannot publish. */
function refuseQueryEvents(message: Message, entry: HandlerEntry, events: readonly Event[]): void {
  if (events.length === 0) return
  throw new SwitchyardError(
    ErrorCode.QuerySideEffect,
    `The handler "${entry.name}" of query "${message.type}" committed work that recorded ${events.map((e) => e.type).join(', ')}; queries cannot publish events, so the commit was refused`,
    { details: { messageType: message.type, handler: entry.name } },
  )
}
