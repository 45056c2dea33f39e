import { describe, expect, it, vi } from 'vitest'
import {
  defineCommand,
  defineEvent,
  defineQuery,
  ErrorCode,
  type HandlerContext,
  HandlerNotFoundError,
  HandlerRegistry,
  isSwitchyardError,
  MessageBus,
  type Event,
} from '../index.js'
import { expectSwitchyardError, RecordingLogger } from '../testing/index.js'

const Allocate = defineCommand<{ orderId: string; sku: string }>('Allocate').returns<string>()
const Allocated = defineEvent<{ orderId: string; batch: string }>('Allocated')
const Notified = defineEvent<{ orderId: string }>('Notified')
const GetBatch = defineQuery<{ orderId: string }>('GetBatch').returns<string | undefined>()

describe('bus.execute', () => {
  it('runs the one handler and resolves with its result', async () => {
    const bus = new MessageBus()
    bus.handle(Allocate, (cmd) => `batch-for-${cmd.payload.sku}`)
    await expect(bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP' }))).resolves.toBe(
      'batch-for-LAMP',
    )
  })

  it('passes the message metadata and the handler name in ctx', async () => {
    const bus = new MessageBus()
    let seen: HandlerContext | undefined
    bus.handle(Allocate, function allocateHandler(_cmd, ctx) {
      seen = ctx
      return 'b'
    })
    const cmd = Allocate({ orderId: 'o1', sku: 'LAMP' })
    await bus.execute(cmd)
    expect(seen?.message).toBe(cmd)
    expect(seen?.handlerName).toBe('allocateHandler')
    expect(seen?.attempt).toBe(1)
    expect(seen?.signal.aborted).toBe(false)
  })

  it('supports class-based handlers constructed with their dependencies', async () => {
    class AllocateHandler {
      constructor(private readonly batches: Map<string, string>) {}
      handle(cmd: ReturnType<typeof Allocate>): string {
        return this.batches.get(cmd.payload.sku) ?? 'none'
      }
    }
    const bus = new MessageBus()
    bus.handle(Allocate, new AllocateHandler(new Map([['LAMP', 'b-7']])))
    await expect(bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP' }))).resolves.toBe('b-7')
  })

  it('rejects with the handler error, after nothing of its follow-ups ran', async () => {
    const bus = new MessageBus()
    const onAllocated = vi.fn()
    bus.handle(Allocate, (cmd, ctx) => {
      ctx.publish(Allocated({ orderId: cmd.payload.orderId, batch: 'b1' }))
      throw new Error('out of stock')
    })
    bus.handle(Allocated, onAllocated)
    await expect(bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP' }))).rejects.toThrow(
      'out of stock',
    )
    expect(onAllocated).not.toHaveBeenCalled()
  })

  it('gives HandlerNotFoundError with a hint for a command without a handler', async () => {
    const bus = new MessageBus()
    const error = await expectSwitchyardError(
      bus.execute(Allocate({ orderId: 'o', sku: 's' })),
      ErrorCode.NoHandler,
    )
    expect(error).toBeInstanceOf(HandlerNotFoundError)
    expect(error.message).toContain('"Allocate"')
    expect(error.message).toContain('bus.handle(')
  })

  it('rejects anything that is not a defined message with a typed error, never a synchronous throw', async () => {
    const bus = new MessageBus()
    for (const value of [null, undefined, 42, 'Allocate', {}, { type: 'Allocate' }, new Date()]) {
      let promise: Promise<unknown> | undefined
      expect(() => {
        promise = bus.execute(value as never)
      }).not.toThrow()
      await expectSwitchyardError(promise!, ErrorCode.NotAMessage)
    }
    await expectSwitchyardError(bus.publish(null as never), ErrorCode.NotAMessage)
    await expectSwitchyardError(bus.query({} as never), ErrorCode.NotAMessage)
    await expectSwitchyardError(bus.dispatch(7 as never), ErrorCode.NotAMessage)
  })

  it('rejects a message of the wrong kind', async () => {
    const bus = new MessageBus()
    bus.handle(Allocated, () => undefined)
    await expectSwitchyardError(
      bus.execute(Allocated({ orderId: 'o', batch: 'b' }) as never),
      ErrorCode.WrongMessageKind,
    )
    await expectSwitchyardError(
      bus.publish(Allocate({ orderId: 'o', sku: 's' }) as never),
      ErrorCode.WrongMessageKind,
    )
  })

  it('rejects before running anything when the caller signal is already aborted', async () => {
    const bus = new MessageBus()
    const handler = vi.fn(() => 'b')
    bus.handle(Allocate, handler)
    const controller = new AbortController()
    controller.abort(new Error('client went away'))
    await expectSwitchyardError(
      bus.execute(Allocate({ orderId: 'o', sku: 's' }), { signal: controller.signal }),
      ErrorCode.Aborted,
    )
    expect(handler).not.toHaveBeenCalled()
  })

  it('hands the caller signal to the handler', async () => {
    const bus = new MessageBus()
    const controller = new AbortController()
    bus.handle(Allocate, (_cmd, ctx) => {
      controller.abort()
      return String(ctx.signal.aborted)
    })
    await expect(
      bus.execute(Allocate({ orderId: 'o', sku: 's' }), { signal: controller.signal }),
    ).resolves.toBe('true')
  })
})

describe('follow-up messages', () => {
  it('drains follow-up events FIFO before execute resolves, in the Cosmic Python order', async () => {
    const bus = new MessageBus()
    const log: string[] = []
    bus.handle(Allocate, (cmd, ctx) => {
      log.push('Allocate')
      ctx.publish(Allocated({ orderId: cmd.payload.orderId, batch: 'b1' }))
      ctx.publish(Notified({ orderId: cmd.payload.orderId }))
      log.push('Allocate done')
      return 'b1'
    })
    bus.handle(Allocated, (event, ctx) => {
      log.push('Allocated#1')
      ctx.publish(Notified({ orderId: `${event.payload.orderId}-from-allocated` }))
    })
    bus.handle(Allocated, () => {
      log.push('Allocated#2')
    })
    bus.handle(Notified, (event) => {
      log.push(`Notified ${event.payload.orderId}`)
    })
    const result = await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP' }))
    expect(result).toBe('b1')
    expect(log).toEqual([
      'Allocate',
      'Allocate done',
      'Allocated#1',
      'Allocated#2',
      'Notified o1',
      'Notified o1-from-allocated',
    ])
  })

  it('links every follow-up to its cause: same correlation id, causation id = the cause id', async () => {
    const bus = new MessageBus()
    const seen: Event[] = []
    bus.handle(Allocate, (cmd, ctx) => {
      ctx.publish(Allocated({ orderId: cmd.payload.orderId, batch: 'b1' }))
      return 'b1'
    })
    bus.handle(Allocated, (event, ctx) => {
      seen.push(event)
      ctx.publish(Notified({ orderId: event.payload.orderId }))
    })
    bus.handle(Notified, (event) => {
      seen.push(event)
    })
    const cmd = Allocate({ orderId: 'o1', sku: 'LAMP' }, { correlationId: 'request-42' })
    await bus.execute(cmd)
    const [allocated, notified] = seen
    expect(allocated?.correlationId).toBe('request-42')
    expect(allocated?.causationId).toBe(cmd.id)
    expect(notified?.correlationId).toBe('request-42')
    expect(notified?.causationId).toBe(allocated?.id)
  })

  it('runs ctx.execute now, returns its result, and queues its events', async () => {
    const bus = new MessageBus()
    const Reserve = defineCommand<{ sku: string }>('Reserve').returns<number>()
    const Reserved = defineEvent<{ sku: string }>('Reserved')
    const log: string[] = []
    bus.handle(Reserve, (cmd, ctx) => {
      ctx.publish(Reserved({ sku: cmd.payload.sku }))
      log.push('Reserve')
      return 3
    })
    bus.handle(Reserved, (event) => {
      log.push(`Reserved causation=${event.causationId === undefined ? 'none' : 'set'}`)
    })
    bus.handle(Allocate, async (cmd, ctx) => {
      const qty = await ctx.execute(Reserve({ sku: cmd.payload.sku }))
      log.push(`Allocate got ${qty}`)
      return `b${qty}`
    })
    await expect(bus.execute(Allocate({ orderId: 'o', sku: 'LAMP' }))).resolves.toBe('b3')
    expect(log).toEqual(['Reserve', 'Allocate got 3', 'Reserved causation=set'])
  })

  it('still releases the events of a nested command that succeeded when the outer handler then fails', async () => {
    const bus = new MessageBus()
    const Reserve = defineCommand('Reserve')
    const Reserved = defineEvent('Reserved')
    const reserved = vi.fn()
    bus.handle(Reserve, (_cmd, ctx) => ctx.publish(Reserved()))
    bus.handle(Reserved, reserved)
    bus.handle(Allocate, async (_cmd, ctx) => {
      await ctx.execute(Reserve())
      throw new Error('later failure')
    })
    await expect(bus.execute(Allocate({ orderId: 'o', sku: 's' }))).rejects.toThrow('later failure')
    expect(reserved).toHaveBeenCalledTimes(1)
  })

  it('refuses ctx.publish after the handler finished', async () => {
    const bus = new MessageBus()
    let saved: HandlerContext | undefined
    bus.handle(Allocate, (_cmd, ctx) => {
      saved = ctx
      return 'b'
    })
    await bus.execute(Allocate({ orderId: 'o', sku: 's' }))
    await expectSwitchyardError(
      () => saved!.publish(Notified({ orderId: 'late' })),
      ErrorCode.ContextClosed,
    )
  })

  it('refuses a non-event in ctx.publish', async () => {
    const bus = new MessageBus()
    bus.handle(Allocate, (cmd, ctx) => {
      ctx.publish(cmd as never)
      return 'b'
    })
    await expectSwitchyardError(
      bus.execute(Allocate({ orderId: 'o', sku: 's' })),
      ErrorCode.WrongMessageKind,
    )
  })
})

describe('bus.publish and event-handler failures', () => {
  it('runs every handler of an event, and none for an event nobody handles', async () => {
    const bus = new MessageBus()
    const a = vi.fn()
    const b = vi.fn()
    bus.handle(Allocated, a)
    bus.handle(Allocated, b)
    await bus.publish(Allocated({ orderId: 'o', batch: 'b' }))
    await bus.publish(Notified({ orderId: 'o' }))
    expect(a).toHaveBeenCalledTimes(1)
    expect(b).toHaveBeenCalledTimes(1)
  })

  it('isolates a failing handler: siblings and the queue go on, the hook and the logger hear of it', async () => {
    const logger = new RecordingLogger('error')
    const hook = vi.fn()
    const bus = new MessageBus({ logger, onHandlerError: hook })
    const log: string[] = []
    bus.handle(
      Allocated,
      (_e, ctx) => {
        ctx.publish(Notified({ orderId: 'never' }))
        throw new Error('mailer down')
      },
      { name: 'sendEmail' },
    )
    bus.handle(Allocated, (event, ctx) => {
      log.push('second handler')
      ctx.publish(Notified({ orderId: event.payload.orderId }))
    })
    bus.handle(Notified, (event) => {
      log.push(`Notified ${event.payload.orderId}`)
    })
    await expect(bus.publish(Allocated({ orderId: 'o1', batch: 'b' }))).resolves.toBeUndefined()
    expect(log).toEqual(['second handler', 'Notified o1'])
    expect(hook).toHaveBeenCalledTimes(1)
    expect(hook.mock.calls[0]?.[0]).toEqual(new Error('mailer down'))
    expect(hook.mock.calls[0]?.[1]).toMatchObject({
      handler: 'sendEmail',
      message: { type: 'Allocated' },
    })
    expect(logger.at('error')).toHaveLength(1)
    expect(logger.at('error')[0]?.fields).toMatchObject({
      handler: 'sendEmail',
      messageType: 'Allocated',
    })
  })

  it("with eventHandlerErrors: 'reject', drains everything, then rejects with an AggregateError of the failures", async () => {
    const bus = new MessageBus({ eventHandlerErrors: 'reject' })
    const later = vi.fn()
    bus.handle(Allocate, (cmd, ctx) => {
      ctx.publish(Allocated({ orderId: cmd.payload.orderId, batch: 'b' }))
      return 'b'
    })
    bus.handle(Allocated, () => {
      throw new Error('first')
    })
    bus.handle(Allocated, (e, ctx) => ctx.publish(Notified({ orderId: e.payload.orderId })))
    bus.handle(Notified, () => Promise.reject(new Error('second')))
    bus.handle(Notified, later)
    const failure = await bus.execute(Allocate({ orderId: 'o', sku: 's' })).catch((e: unknown) => e)
    expect(failure).toBeInstanceOf(AggregateError)
    const errors = (failure as AggregateError).errors
    expect(errors).toHaveLength(2)
    expect(errors.every((e) => isSwitchyardError(e, ErrorCode.EventHandlerFailed))).toBe(true)
    expect((errors[0] as Error).cause).toEqual(new Error('first'))
    expect(later).toHaveBeenCalledTimes(1)
  })

  it('keeps going when the onHandlerError hook itself throws', async () => {
    const logger = new RecordingLogger('error')
    const bus = new MessageBus({
      logger,
      onHandlerError: () => {
        throw new Error('hook broken')
      },
    })
    const second = vi.fn()
    bus.handle(Allocated, () => {
      throw new Error('boom')
    })
    bus.handle(Allocated, second)
    await bus.publish(Allocated({ orderId: 'o', batch: 'b' }))
    expect(second).toHaveBeenCalledTimes(1)
    expect(logger.entries.map((e) => e.message)).toEqual([
      'event handler failed',
      'onHandlerError hook threw',
    ])
  })

  it('is silent by default', async () => {
    const spies = (['log', 'info', 'warn', 'error', 'debug'] as const).map((m) =>
      vi.spyOn(console, m),
    )
    const bus = new MessageBus()
    bus.handle(Allocated, () => {
      throw new Error('nobody hears this but the hook')
    })
    await bus.publish(Allocated({ orderId: 'o', batch: 'b' }))
    for (const spy of spies) {
      expect(spy).not.toHaveBeenCalled()
      spy.mockRestore()
    }
  })
})

describe('bus.query', () => {
  it('returns the handler result', async () => {
    const bus = new MessageBus()
    bus.handle(GetBatch, (query) => (query.payload.orderId === 'o1' ? 'b1' : undefined))
    await expect(bus.query(GetBatch({ orderId: 'o1' }))).resolves.toBe('b1')
    await expect(bus.dispatch(GetBatch({ orderId: 'x' }))).resolves.toBeUndefined()
  })

  it('refuses to publish or execute from a query handler', async () => {
    const bus = new MessageBus()
    bus.handle(GetBatch, (_q, ctx) => {
      ;(ctx as unknown as HandlerContext).publish(Notified({ orderId: 'x' }))
      return 'b'
    })
    const Other = defineQuery('Other')
    bus.handle(Other, async (_q, ctx) =>
      (ctx as unknown as HandlerContext).execute(Allocate({ orderId: 'o', sku: 's' })),
    )
    await expectSwitchyardError(bus.query(GetBatch({ orderId: 'o' })), ErrorCode.QuerySideEffect)
    await expectSwitchyardError(bus.query(Other()), ErrorCode.QuerySideEffect)
  })

  it('lets handlers run queries through ctx.query', async () => {
    const bus = new MessageBus()
    bus.handle(GetBatch, () => 'b9')
    bus.handle(
      Allocate,
      async (cmd, ctx) => (await ctx.query(GetBatch({ orderId: cmd.payload.orderId }))) ?? 'none',
    )
    await expect(bus.execute(Allocate({ orderId: 'o', sku: 's' }))).resolves.toBe('b9')
  })
})

describe('dispatch', () => {
  it('routes each kind to its method', async () => {
    const bus = new MessageBus()
    const onEvent = vi.fn()
    bus.handle(Allocate, () => 'b1')
    bus.handle(GetBatch, () => 'q1')
    bus.handle(Allocated, onEvent)
    await expect(bus.dispatch(Allocate({ orderId: 'o', sku: 's' }))).resolves.toBe('b1')
    await expect(bus.dispatch(GetBatch({ orderId: 'o' }))).resolves.toBe('q1')
    await expect(bus.dispatch(Allocated({ orderId: 'o', batch: 'b' }))).resolves.toBeUndefined()
    expect(onEvent).toHaveBeenCalledTimes(1)
  })
})

describe('registration', () => {
  it('gives the handlers of one event distinct names, and refuses two given the same { name }', async () => {
    const logger = new RecordingLogger()
    const bus = new MessageBus({ logger })
    const failing = (): never => {
      throw new Error('no')
    }
    bus.handle(Allocated, failing)
    bus.handle(Allocated, failing)
    bus.handle(Allocated, () => undefined)
    bus.handle(Allocated, () => undefined)
    await bus.publish(Allocated({ orderId: 'o1', batch: 'b1' }))
    expect(logger.entries.map((e) => e.fields.handler)).toEqual(['failing', 'failing #2'])

    const strict = new MessageBus()
    strict.handle(Allocated, () => undefined, { name: 'ship' })
    strict.handle(Allocated, () => undefined, { name: 'ship' })
    await expectSwitchyardError(
      strict.publish(Allocated({ orderId: 'o1', batch: 'b1' })),
      ErrorCode.DuplicateHandler,
    )
  })

  it('refuses a second handler for a command or a query, naming both', async () => {
    const bus = new MessageBus()
    bus.handle(Allocate, function first() {
      return 'a'
    })
    const error = await expectSwitchyardError(
      () =>
        bus.handle(Allocate, function second() {
          return 'b'
        }),
      ErrorCode.DuplicateHandler,
    )
    expect(error.message).toContain('"first"')
    expect(error.message).toContain('"second"')
    bus.handle(GetBatch, () => 'x')
    await expectSwitchyardError(() => bus.handle(GetBatch, () => 'y'), ErrorCode.DuplicateHandler)
    await expect(bus.execute(Allocate({ orderId: 'o', sku: 's' }))).resolves.toBe('a')
  })

  it('refuses two definitions with the same type string, of any kind', async () => {
    const bus = new MessageBus()
    bus.handle(Allocate, () => 'a')
    const Impostor = defineEvent('Allocate')
    const error = await expectSwitchyardError(
      () => bus.handle(Impostor, () => undefined),
      ErrorCode.DuplicateMessageType,
    )
    expect(error.message).toContain('"Allocate"')
    await expectSwitchyardError(
      () => bus.register(defineCommand('Allocate')),
      ErrorCode.DuplicateMessageType,
    )
    // the same definition again is fine
    expect(() => bus.register(Allocate)).not.toThrow()
  })

  it('freezes registration once the bus started, and on the registries it uses', async () => {
    const registry = new HandlerRegistry().handle(Allocated, () => undefined)
    const bus = new MessageBus({ handlers: registry })
    await bus.publish(Allocated({ orderId: 'o', batch: 'b' }))
    await expectSwitchyardError(
      () => bus.handle(Notified, () => undefined),
      ErrorCode.RegistrationFrozen,
    )
    await expectSwitchyardError(
      () => registry.handle(Notified, () => undefined),
      ErrorCode.RegistrationFrozen,
    )
    const explicit = new MessageBus()
    await explicit.start()
    expect(explicit.started).toBe(true)
    await expectSwitchyardError(() => explicit.register(Notified), ErrorCode.RegistrationFrozen)
  })

  it('merges registries and reports every conflict between them at start', async () => {
    const a = new HandlerRegistry().handle(Allocate, () => 'a').handle(GetBatch, () => 'a')
    const b = new HandlerRegistry().handle(Allocate, () => 'b').handle(GetBatch, () => 'b')
    const c = new HandlerRegistry().register(defineEvent('GetBatch'))
    const bus = new MessageBus({ handlers: [a, b, c] })
    const error = await expectSwitchyardError(bus.start(), ErrorCode.Configuration)
    expect((error as unknown as { problems: string[] }).problems).toHaveLength(3)
  })

  it('runs handlers from several registries together', async () => {
    const orders = new HandlerRegistry().handle(Allocate, (cmd, ctx) => {
      ctx.publish(Allocated({ orderId: cmd.payload.orderId, batch: 'b' }))
      return 'b'
    })
    const notifications = new HandlerRegistry().handle(Allocated, vi.fn())
    const bus = new MessageBus({ handlers: [orders, notifications] })
    await bus.execute(Allocate({ orderId: 'o', sku: 's' }))
    expect(notifications.entries[0]?.fn).toHaveBeenCalledTimes(1)
  })

  it('rejects a handler that is neither a function nor an object with handle()', async () => {
    await expectSwitchyardError(
      () => new MessageBus().handle(Allocate, {} as never),
      ErrorCode.Configuration,
    )
  })

  it('reports every invalid option at once', async () => {
    const error = await expectSwitchyardError(
      () =>
        new MessageBus({
          maxIterations: 0,
          eventHandlerErrors: 'explode' as never,
          middleware: [42 as never],
        }),
      ErrorCode.Configuration,
    )
    expect((error as unknown as { problems: string[] }).problems).toHaveLength(3)
  })
})

describe('loop guard', () => {
  const Ping = defineEvent<{ n: number }>('Ping')
  const Pong = defineEvent<{ n: number }>('Pong')

  it('stops a cycle with LoopDetectedError naming the message types in it', async () => {
    const bus = new MessageBus({ maxIterations: 50 })
    bus.handle(Allocate, (cmd, ctx) => {
      ctx.publish(Ping({ n: 0 }))
      return cmd.payload.orderId
    })
    bus.handle(Ping, (e, ctx) => ctx.publish(Pong({ n: e.payload.n + 1 })))
    bus.handle(Pong, (e, ctx) => ctx.publish(Ping({ n: e.payload.n + 1 })))
    const error = await expectSwitchyardError(
      bus.execute(Allocate({ orderId: 'o', sku: 's' })),
      ErrorCode.LoopDetected,
    )
    expect((error as unknown as { cycle: string[] }).cycle).toEqual(['Ping', 'Pong', 'Ping'])
    expect(error.message).toContain('Ping → Pong → Ping')
    expect(error.message).toContain('50')
  })

  it('defaults to 1,000 messages per dispatch', async () => {
    const bus = new MessageBus()
    let handled = 0
    bus.handle(Ping, (e, ctx) => {
      handled++
      ctx.publish(Ping({ n: e.payload.n + 1 }))
    })
    await expectSwitchyardError(bus.publish(Ping({ n: 0 })), ErrorCode.LoopDetected)
    expect(handled).toBe(1000)
  })

  it('is not swallowed by an event handler that catches errors from ctx.execute', async () => {
    const bus = new MessageBus({ maxIterations: 20 })
    const Again = defineCommand('Again')
    bus.handle(Again, (_c, ctx) => ctx.publish(Ping({ n: 0 })))
    bus.handle(Ping, async (_e, ctx) => {
      try {
        await ctx.execute(Again())
      } catch {
        // a careless handler
      }
    })
    await expectSwitchyardError(bus.publish(Ping({ n: 0 })), ErrorCode.LoopDetected)
  })

  it('lets a long but finite chain through when maxIterations allows it', async () => {
    const bus = new MessageBus({ maxIterations: 2000 })
    let last = 0
    bus.handle(Ping, (e, ctx) => {
      last = e.payload.n
      if (e.payload.n < 1500) ctx.publish(Ping({ n: e.payload.n + 1 }))
    })
    await bus.publish(Ping({ n: 0 }))
    expect(last).toBe(1500)
  })
})
