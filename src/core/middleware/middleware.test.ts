import { afterEach, describe, expect, it, vi } from 'vitest'
import type { SwitchyardError } from '../../index.js'
import {
  correlation,
  defineCommand,
  defineEvent,
  ErrorCode,
  type Event,
  logging,
  MessageBus,
  MessageValidationError,
  type Middleware,
  retry,
  timeout,
} from '../../index.js'
import { expectSwitchyardError, RecordingLogger } from '../../testing/index.js'

const Work = defineCommand<{ n: number }>('Work').returns<string>()
const Done = defineEvent<{ n: number }>('Done')

function tracer(name: string, log: string[]): Middleware {
  return async (ctx, next) => {
    log.push(`${name} before ${ctx.message.type}`)
    const result = await next()
    log.push(`${name} after`)
    return result
  }
}

afterEach(() => {
  vi.useRealTimers()
})

describe('middleware composition', () => {
  it('wraps handlers like an onion: bus middleware outside, handler middleware inside', async () => {
    const log: string[] = []
    const bus = new MessageBus({ middleware: [tracer('bus1', log), tracer('bus2', log)] })
    bus.handle(
      Work,
      () => {
        log.push('handler')
        return 'ok'
      },
      { middleware: [tracer('own', log)] },
    )
    await expect(bus.execute(Work({ n: 1 }))).resolves.toBe('ok')
    expect(log).toEqual([
      'bus1 before Work',
      'bus2 before Work',
      'own before Work',
      'handler',
      'own after',
      'bus2 after',
      'bus1 after',
    ])
  })

  it('lets a middleware answer without calling the handler', async () => {
    const handler = vi.fn(() => 'from handler')
    const bus = new MessageBus({ middleware: [async () => Promise.resolve('cached')] })
    bus.handle(Work, handler)
    await expect(bus.execute(Work({ n: 1 }))).resolves.toBe('cached')
    expect(handler).not.toHaveBeenCalled()
  })

  it('refuses a second next() after the first succeeded, so the handler never runs twice', async () => {
    const handler = vi.fn(() => 'ok')
    const twice: Middleware = async (_ctx, next) => {
      await next()
      return next()
    }
    const bus = new MessageBus({ middleware: [twice] })
    bus.handle(Work, handler)
    await expectSwitchyardError(bus.execute(Work({ n: 1 })), ErrorCode.NextCalledTwice)
    expect(handler).toHaveBeenCalledTimes(1)
  })

  it('refuses concurrent next() calls', async () => {
    const handler = vi.fn(async () => 'ok')
    const concurrent: Middleware = async (_ctx, next) => Promise.all([next(), next()])
    const bus = new MessageBus({ middleware: [concurrent] })
    bus.handle(Work, handler)
    await expectSwitchyardError(bus.execute(Work({ n: 1 })), ErrorCode.NextCalledTwice)
    expect(handler).toHaveBeenCalledTimes(1)
  })

  it('turns a middleware that throws synchronously into a rejection', async () => {
    const bus = new MessageBus({
      middleware: [
        () => {
          throw new Error('sync boom')
        },
      ],
    })
    bus.handle(Work, () => 'ok')
    let promise: Promise<unknown> | undefined
    expect(() => {
      promise = bus.execute(Work({ n: 1 }))
    }).not.toThrow()
    await expect(promise).rejects.toThrow('sync boom')
  })
})

describe('retry()', () => {
  it('retries a failing handler and succeeds, telling the handler its attempt', async () => {
    const attempts: number[] = []
    const bus = new MessageBus({
      middleware: [retry({ attempts: 3, backoff: { initialDelay: 1, maxDelay: 2 } })],
    })
    bus.handle(Work, (_cmd, ctx) => {
      attempts.push(ctx.attempt)
      if (ctx.attempt < 3) throw new Error('transient')
      return 'third time'
    })
    await expect(bus.execute(Work({ n: 1 }))).resolves.toBe('third time')
    expect(attempts).toEqual([1, 2, 3])
  })

  it('gives up after the given number of attempts with the last error', async () => {
    let calls = 0
    const bus = new MessageBus({
      middleware: [retry({ attempts: 4, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(Work, () => {
      calls++
      throw new Error(`failure ${calls}`)
    })
    await expect(bus.execute(Work({ n: 1 }))).rejects.toThrow('failure 4')
    expect(calls).toBe(4)
  })

  it('does not retry errors that say they are not retryable', async () => {
    let calls = 0
    const bus = new MessageBus({
      middleware: [retry({ attempts: 5, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(Work, () => {
      calls++
      throw new MessageValidationError('bad input')
    })
    await expectSwitchyardError(bus.execute(Work({ n: 1 })), ErrorCode.ValidationFailed)
    expect(calls).toBe(1)
  })

  it('asks retryOn with the error and the attempt', async () => {
    const retryOn = vi.fn(
      (error: unknown, attempt: number) => attempt < 2 && (error as Error).message === 'again',
    )
    let calls = 0
    const bus = new MessageBus({
      middleware: [retry({ attempts: 10, retryOn, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(Work, () => {
      calls++
      throw new Error('again')
    })
    await expect(bus.execute(Work({ n: 1 }))).rejects.toThrow('again')
    expect(calls).toBe(2)
    expect(retryOn.mock.calls.map(([, attempt]) => attempt)).toEqual([1, 2])
  })

  it('waits an exponential backoff between attempts', async () => {
    vi.useFakeTimers()
    const times: number[] = []
    const bus = new MessageBus({
      middleware: [
        retry({
          attempts: 4,
          backoff: { initialDelay: 100, maxDelay: 10_000, factor: 2, jitter: 'none' },
        }),
      ],
    })
    bus.handle(Work, () => {
      times.push(Date.now())
      if (times.length < 4) throw new Error('transient')
      return 'ok'
    })
    const result = bus.execute(Work({ n: 1 }))
    await vi.runAllTimersAsync()
    await expect(result).resolves.toBe('ok')
    const gaps = times.slice(1).map((t, i) => t - times[i]!)
    expect(gaps).toEqual([100, 200, 400])
  })

  it('spreads delays with jitter, within the cap', async () => {
    vi.useFakeTimers()
    const gaps: number[] = []
    for (let run = 0; run < 10; run++) {
      const times: number[] = []
      const bus = new MessageBus({
        middleware: [
          retry({ attempts: 2, backoff: { initialDelay: 100, maxDelay: 1000, jitter: 'full' } }),
        ],
      })
      bus.handle(Work, () => {
        times.push(Date.now())
        if (times.length < 2) throw new Error('transient')
        return 'ok'
      })
      const result = bus.execute(Work({ n: 1 }))
      await vi.runAllTimersAsync()
      await result
      gaps.push(times[1]! - times[0]!)
    }
    expect(Math.max(...gaps)).toBeLessThanOrEqual(1000)
    expect(new Set(gaps).size).toBeGreaterThan(1)
  })

  it('drops the follow-ups of failed attempts and releases only those of the attempt that succeeded', async () => {
    const done: Event[] = []
    const bus = new MessageBus()
    bus.handle(
      Work,
      (cmd, ctx) => {
        ctx.publish(Done({ n: ctx.attempt }))
        if (ctx.attempt < 3) throw new Error('transient')
        return 'ok'
      },
      { middleware: [retry({ attempts: 3, backoff: { initialDelay: 0, maxDelay: 0 } })] },
    )
    bus.handle(Done, (event) => {
      done.push(event)
    })
    await bus.execute(Work({ n: 0 }))
    expect(done.map((e) => (e.payload as { n: number }).n)).toEqual([3])
  })

  it('retries an event handler before its failure is reported', async () => {
    const hook = vi.fn()
    let calls = 0
    const bus = new MessageBus({
      onHandlerError: hook,
      middleware: [retry({ attempts: 2, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(Done, () => {
      calls++
      throw new Error('always')
    })
    await bus.publish(Done({ n: 1 }))
    expect(calls).toBe(2)
    expect(hook).toHaveBeenCalledTimes(1)
  })

  it('rejects bad options at construction with a ConfigurationError', async () => {
    await expectSwitchyardError(() => retry({ attempts: 0 }), ErrorCode.Configuration)
    await expectSwitchyardError(
      () => retry({ backoff: { initialDelay: 10, maxDelay: 1 } }),
      ErrorCode.Configuration,
    )
  })
})

describe('timeout()', () => {
  it('rejects with HandlerTimeoutError and aborts the handler signal', async () => {
    let signal: AbortSignal | undefined
    const bus = new MessageBus({ middleware: [timeout(20)] })
    bus.handle(Work, async (_cmd, ctx) => {
      signal = ctx.signal
      await new Promise((resolve) => setTimeout(resolve, 200))
      return 'too late'
    })
    const error = await expectSwitchyardError(bus.execute(Work({ n: 1 })), ErrorCode.HandlerTimeout)
    expect(error.retryable).toBe(true)
    expect(error.details).toMatchObject({ messageType: 'Work', timeoutMs: 20 })
    expect(signal?.aborted).toBe(true)
    expect(signal?.reason).toBe(error)
  })

  it('lets a handler that finishes in time through, untouched', async () => {
    const bus = new MessageBus({ middleware: [timeout(1000)] })
    bus.handle(Work, async () => Promise.resolve('fast'))
    await expect(bus.execute(Work({ n: 1 }))).resolves.toBe('fast')
  })

  it('discards the follow-ups of a timed-out handler and refuses its late publishes', async () => {
    const done = vi.fn()
    let latePublish: unknown
    const bus = new MessageBus({ middleware: [timeout(10)] })
    bus.handle(Work, async (_cmd, ctx) => {
      ctx.publish(Done({ n: 1 }))
      await new Promise((resolve) => setTimeout(resolve, 50))
      try {
        ctx.publish(Done({ n: 2 }))
      } catch (error) {
        latePublish = error
      }
      return 'late'
    })
    bus.handle(Done, done)
    await expectSwitchyardError(bus.execute(Work({ n: 1 })), ErrorCode.HandlerTimeout)
    await new Promise((resolve) => setTimeout(resolve, 80))
    expect(done).not.toHaveBeenCalled()
    expect((latePublish as SwitchyardError).code).toBe(ErrorCode.ContextClosed)
  })

  it('inside retry(), limits each attempt and gives each attempt a fresh signal', async () => {
    const signals: AbortSignal[] = []
    const bus = new MessageBus({
      middleware: [retry({ attempts: 3, backoff: { initialDelay: 0, maxDelay: 0 } }), timeout(15)],
    })
    bus.handle(Work, async (_cmd, ctx) => {
      signals.push(ctx.signal)
      if (ctx.attempt < 3) await new Promise((resolve) => setTimeout(resolve, 100))
      return `attempt ${ctx.attempt}`
    })
    await expect(bus.execute(Work({ n: 1 }))).resolves.toBe('attempt 3')
    expect(signals.map((s) => s.aborted)).toEqual([true, true, false])
  })

  it('aborts the handler signal when the caller signal aborts', async () => {
    const controller = new AbortController()
    let seen: AbortSignal | undefined
    const bus = new MessageBus({ middleware: [timeout(10_000)] })
    bus.handle(Work, async (_cmd, ctx) => {
      seen = ctx.signal
      controller.abort(new Error('caller gone'))
      return Promise.resolve('x')
    })
    await bus.execute(Work({ n: 1 }), { signal: controller.signal })
    expect(seen?.aborted).toBe(true)
  })

  it('rejects a non-positive duration at construction', async () => {
    await expectSwitchyardError(() => timeout(0), ErrorCode.Configuration)
    await expectSwitchyardError(() => timeout(Number.NaN), ErrorCode.Configuration)
  })
})

describe('logging()', () => {
  it('logs each handled message with its type, id, handler and duration', async () => {
    const logger = new RecordingLogger('debug')
    const bus = new MessageBus({ logger, middleware: [logging()] })
    bus.handle(Work, function doWork() {
      return 'ok'
    })
    const cmd = Work({ n: 1 })
    await bus.execute(cmd)
    const entry = logger.entries.find((e) => e.message === 'message handled')
    expect(entry?.level).toBe('debug')
    expect(entry?.fields).toMatchObject({
      messageType: 'Work',
      messageId: cmd.id,
      handler: 'doWork',
      attempt: 1,
    })
    expect(typeof entry?.fields.durationMs).toBe('number')
  })

  it('logs failures at the error level with the error', async () => {
    const logger = new RecordingLogger('info')
    const bus = new MessageBus({ logger, middleware: [logging({ errorLevel: 'warn' })] })
    bus.handle(Work, () => {
      throw new Error('nope')
    })
    await expect(bus.execute(Work({ n: 1 }))).rejects.toThrow('nope')
    expect(logger.entries).toHaveLength(1)
    expect(logger.entries[0]).toMatchObject({
      level: 'warn',
      message: 'handler failed',
      fields: { err: new Error('nope') },
    })
  })

  it('writes nothing when its level is disabled', async () => {
    const logger = new RecordingLogger('error')
    const bus = new MessageBus({ logger, middleware: [logging()] })
    bus.handle(Work, () => 'ok')
    await bus.execute(Work({ n: 1 }))
    expect(logger.entries).toEqual([])
  })
})

describe('correlation()', () => {
  it('links messages created anywhere during a handler to the message being handled', async () => {
    const created: Event[] = []
    const domainService = (n: number): Event => Done({ n }) // domain code, no ctx in sight
    const bus = new MessageBus({ middleware: [correlation()] })
    bus.handle(Work, (cmd) => {
      created.push(domainService(cmd.payload.n))
      return 'ok'
    })
    const cmd = Work({ n: 1 }, { correlationId: 'req-1' })
    await bus.execute(cmd)
    expect(created[0]?.correlationId).toBe('req-1')
    expect(created[0]?.causationId).toBe(cmd.id)
    expect(Done({ n: 2 }).causationId).toBeUndefined()
  })

  it('binds the correlation id to the handler logger', async () => {
    const logger = new RecordingLogger('info')
    const bus = new MessageBus({ logger, middleware: [correlation()] })
    bus.handle(Work, (_cmd, ctx) => {
      ctx.logger.info({ step: 1 }, 'working')
      return 'ok'
    })
    const cmd = Work({ n: 1 }, { correlationId: 'req-9' })
    await bus.execute(cmd)
    expect(logger.entries[0]?.fields).toEqual({
      correlationId: 'req-9',
      messageId: cmd.id,
      step: 1,
    })
  })
})

describe('retry() around timeout(): abandoned attempts', () => {
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

  it('never delivers the late follow-ups of an attempt that timed out and kept running', async () => {
    const done: number[] = []
    const refused: unknown[] = []
    const attemptsSeen: number[] = []
    const bus = new MessageBus({
      middleware: [retry({ attempts: 2, backoff: { initialDelay: 0, maxDelay: 0 } }), timeout(20)],
    })
    bus.handle(Work, async (_cmd, ctx) => {
      const mine = ctx.attempt
      if (mine === 1) {
        await sleep(35) // outlives its timeout; attempt 2 is running meanwhile
        attemptsSeen.push(ctx.attempt)
        try {
          ctx.publish(Done({ n: 1 }))
        } catch (error) {
          refused.push(error)
        }
        return 'zombie'
      }
      await sleep(5)
      ctx.publish(Done({ n: 2 }))
      return 'second'
    })
    bus.handle(Done, (e) => void done.push(e.payload.n))
    await expect(bus.execute(Work({ n: 0 }))).resolves.toBe('second')
    await sleep(30)
    expect(done).toEqual([2])
    expect(attemptsSeen).toEqual([1])
    expect((refused[0] as SwitchyardError).code).toBe(ErrorCode.ContextClosed)
  })

  it("does not leak a timed-out attempt's aborted signal to later attempts or to event handlers", async () => {
    const Nested = defineCommand('Nested')
    const nestedSignals: boolean[] = []
    const eventSignals: boolean[] = []
    const bus = new MessageBus({
      middleware: [retry({ attempts: 2, backoff: { initialDelay: 0, maxDelay: 0 } }), timeout(20)],
    })
    bus.handle(Nested, (_c, ctx) => void nestedSignals.push(ctx.signal.aborted))
    bus.handle(Work, async (_cmd, ctx) => {
      await ctx.execute(Nested())
      if (ctx.attempt === 1) await sleep(40)
      ctx.publish(Done({ n: ctx.attempt }))
      return 'ok'
    })
    bus.handle(Done, (_e, ctx) => void eventSignals.push(ctx.signal.aborted))
    await bus.execute(Work({ n: 0 }))
    expect(nestedSignals).toEqual([false, false])
    expect(eventSignals).toEqual([false])
  })
})
