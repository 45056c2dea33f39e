/**
 * The @nestjs/cqrs (v12) cases: a Nest application context with `CqrsModule.forRoot()`, one
 * command handler and three event handlers, all singletons (default scope), so both buses call
 * an already built handler instance. Decorators are applied as functions: tsx (esbuild) emits no
 * decorator metadata, and handlers without constructor parameters need none.
 *
 * What is measured, and why:
 *
 * - `CommandBus.execute(cmd)` returns the handler's promise; it is awaited like `bus.execute`.
 *   Per call Nest reads the command id with `Reflect.getMetadata` on the command's class, looks
 *   the handler up in a Map, and pushes the command through an rxjs Subject (no subscribers).
 *
 * - `EventBus.publish(evt)` is fire-and-forget: it pushes the event into an rxjs Subject; each
 *   handler is a subscription (`filter` on the event id, then `mergeMap(defer(() => handle()))`)
 *   and `publish` returns `undefined`, not a promise. A caller who must know the handlers ran
 *   has to wait for them, so the case awaits a promise that the third handler call resolves
 *   (see `Latch`). With these handlers (no `await` inside) Nest calls all three synchronously
 *   inside `publish()`, and rxjs's `.then` on each returned promise is queued before our
 *   continuation, so each iteration covers: the publish, the three handlers, their promise
 *   settlement inside rxjs, and one promise + closure for the wait. `bus.publish` covers the
 *   same: it awaits each of the three handlers (in order) and resolves after them.
 *
 * - An extra row, for information and outside the targets: `publish()` not awaited at all (one
 *   microtask yield per call), the floor of what Nest's EventBus costs per event.
 */
import 'reflect-metadata'
import { Module } from '@nestjs/common'
import { NestFactory } from '@nestjs/core'
import {
  CommandBus,
  CommandHandler,
  CqrsModule,
  EventBus,
  EventsHandler,
  type ICommand,
  type ICommandHandler,
  type IEvent,
  type IEventHandler,
} from '@nestjs/cqrs'
import type { BenchCase } from './harness.js'
import { Latch, sink } from './latch.js'

class DoWork implements ICommand {
  constructor(readonly n: number) {}
}

class WorkDone implements IEvent {
  constructor(readonly n: number) {}
}

const latch = new Latch(3)

class DoWorkHandler implements ICommandHandler<DoWork, number> {
  async execute(cmd: DoWork): Promise<number> {
    return cmd.n + 1
  }
}

class FirstHandler implements IEventHandler<WorkDone> {
  async handle(e: WorkDone): Promise<void> {
    latch.hit(e.n)
  }
}

class SecondHandler implements IEventHandler<WorkDone> {
  async handle(e: WorkDone): Promise<void> {
    latch.hit(e.n)
  }
}

class ThirdHandler implements IEventHandler<WorkDone> {
  async handle(e: WorkDone): Promise<void> {
    latch.hit(e.n)
  }
}

CommandHandler(DoWork)(DoWorkHandler)
EventsHandler(WorkDone)(FirstHandler)
EventsHandler(WorkDone)(SecondHandler)
EventsHandler(WorkDone)(ThirdHandler)

class BenchModule {}
Module({
  imports: [CqrsModule.forRoot()],
  providers: [DoWorkHandler, FirstHandler, SecondHandler, ThirdHandler],
})(BenchModule)

export interface NestCases {
  readonly execute: BenchCase
  readonly publish: BenchCase
  readonly publishNoWait: BenchCase
  /** Runs each case once and checks it did the work. */
  verify(): Promise<void>
  close(): Promise<void>
}

export async function nestCases(): Promise<NestCases> {
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false })
  const commandBus = app.get(CommandBus)
  const eventBus = app.get(EventBus)
  const command = new DoWork(41)
  const event = new WorkDone(1)

  /** One publish, resolved once the three handlers have run. */
  const publishAndWait = (): Promise<void> =>
    new Promise<void>((resolve) => {
      latch.arm(resolve)
      eventBus.publish(event)
    })

  const execute: BenchCase = {
    id: 'nestExecute',
    label: '@nestjs/cqrs CommandBus.execute(cmd)',
    heap: true,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += await commandBus.execute<DoWork, number>(command)
      sink.value += acc
    },
  }

  const publish: BenchCase = {
    id: 'nestPublish',
    label: '@nestjs/cqrs EventBus.publish(evt), 3 handlers, awaited *',
    heap: true,
    run: async (n) => {
      for (let i = 0; i < n; i++) await publishAndWait()
    },
  }

  // Information only: the fire-and-forget floor. Publishes without waiting for the handlers, then
  // yields one microtask so rxjs's queued work runs inside the loop rather than piling up.
  const publishNoWait: BenchCase = {
    id: 'nestPublishNoWait',
    label: '@nestjs/cqrs EventBus.publish(evt), not awaited (info)',
    heap: false,
    run: async (n) => {
      for (let i = 0; i < n; i++) {
        eventBus.publish(event)
        await Promise.resolve()
      }
    },
  }

  const verify = async (): Promise<void> => {
    const result = await commandBus.execute<DoWork, number>(command)
    if (result !== 42) throw new Error(`unexpected Nest command result ${String(result)}`)
    const calls = latch.calls
    let releasedInline = false
    await new Promise<void>((resolve) => {
      latch.arm(() => {
        releasedInline = true
        resolve()
      })
      eventBus.publish(event)
      // Not required for correctness (the promise waits either way); checks the comment above.
      if (!releasedInline) console.warn('note: Nest did not run the event handlers synchronously')
    })
    if (latch.calls - calls !== 3)
      throw new Error(`Nest EventBus ran ${latch.calls - calls} handlers, not 3`)
  }

  return { execute, publish, publishNoWait, verify, close: () => app.close() }
}
