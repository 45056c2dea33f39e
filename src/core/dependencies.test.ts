import { asClass, asValue, createContainer, Lifetime as AwilixLifetime } from 'awilix'
import { describe, expect, it, vi } from 'vitest'
import {
  defineCommand,
  defineEvent,
  ErrorCode,
  fromContainer,
  MessageBus,
  retry,
  scoped,
  singleton,
  transient,
} from '../index.js'
import { expectSwitchyardError, RecordingLogger } from '../testing/index.js'

const Start = defineCommand('Start').returns<string>()
const Step = defineEvent('Step').withPayload<{ n: number }>()

class Counter {
  static made = 0
  readonly id = ++Counter.made
  disposed = false
  async [Symbol.asyncDispose](): Promise<void> {
    this.disposed = true
    return Promise.resolve()
  }
}

interface Deps {
  clock: () => number
  counter: Counter
}

describe('dependency lifetimes', () => {
  it('shares a scoped value across one dispatch and its follow-ups, and disposes it afterwards', async () => {
    const seen: Counter[] = []
    const bus = new MessageBus<Deps>({
      dependencies: { clock: () => 1, counter: scoped(() => new Counter()) },
    })
    bus.handle(
      Start,
      (_cmd, ctx) => {
        seen.push(ctx.deps.counter)
        ctx.publish(Step({ n: 1 }))
        return 'ok'
      },
      { deps: ['counter'] },
    )
    bus.handle(
      Step,
      (_e, ctx) => {
        seen.push(ctx.deps.counter)
        expect(ctx.deps.counter.disposed).toBe(false)
      },
      { deps: ['counter'] },
    )
    await bus.execute(Start())
    await bus.execute(Start())
    expect(seen[0]).toBe(seen[1])
    expect(seen[2]).toBe(seen[3])
    expect(seen[0]).not.toBe(seen[2])
    expect(seen.every((c) => c.disposed)).toBe(true)
  })

  it('disposes scoped values even when the dispatch fails', async () => {
    let made: Counter | undefined
    const bus = new MessageBus<Deps>({
      dependencies: { clock: () => 1, counter: scoped(() => (made = new Counter())) },
    })
    bus.handle(
      Start,
      () => {
        throw new Error('boom')
      },
      { deps: ['counter'] },
    )
    await expect(bus.execute(Start())).rejects.toThrow('boom')
    expect(made?.disposed).toBe(true)
  })

  it('makes a transient value per handler invocation (per retry attempt) and disposes it after', async () => {
    const seen: Counter[] = []
    const bus = new MessageBus<Deps>({
      dependencies: { clock: () => 1, counter: transient(() => new Counter()) },
      middleware: [retry({ attempts: 2, backoff: { initialDelay: 0, maxDelay: 0 } })],
    })
    bus.handle(
      Start,
      (_cmd, ctx) => {
        seen.push(ctx.deps.counter)
        if (seen.length === 1) throw new Error('first attempt fails')
        return 'ok'
      },
      { deps: ['counter'] },
    )
    await bus.execute(Start())
    expect(seen).toHaveLength(2)
    expect(seen[0]).not.toBe(seen[1])
    expect(seen.every((c) => c.disposed)).toBe(true)
  })

  it('makes a singleton once per bus, from an async factory, and disposes it on close', async () => {
    const factory = vi.fn(async () => Promise.resolve(new Counter()))
    const seen: Counter[] = []
    const bus = new MessageBus<Deps>({
      dependencies: { clock: () => 1, counter: singleton(factory) },
    })
    bus.handle(
      Start,
      (_cmd, ctx) => {
        seen.push(ctx.deps.counter)
        return 'ok'
      },
      { deps: ['counter'] },
    )
    await Promise.all([bus.execute(Start()), bus.execute(Start()), bus.execute(Start())])
    expect(factory).toHaveBeenCalledTimes(1)
    expect(new Set(seen).size).toBe(1)
    expect(seen[0]!.disposed).toBe(false)
    await bus.close()
    expect(seen[0]!.disposed).toBe(true)
    await expectSwitchyardError(bus.execute(Start()), ErrorCode.BusClosed)
  })

  it('treats plain values as shared values, functions included', async () => {
    const clock = (): number => 42
    const bus = new MessageBus<Deps>({ dependencies: { clock, counter: new Counter() } })
    bus.handle(Start, (_cmd, ctx) => String(ctx.deps.clock()), { deps: ['clock'] })
    await expect(bus.execute(Start())).resolves.toBe('42')
  })

  it('lets factories ask for other dependencies', async () => {
    interface Chain {
      base: number
      doubled: number
    }
    const bus = new MessageBus<Chain>({
      dependencies: {
        base: 21,
        doubled: scoped<number, Chain>(async ({ get }) => (await get('base')) * 2),
      },
    })
    bus.handle(Start, (_cmd, ctx) => String(ctx.deps.doubled), { deps: ['doubled'] })
    await expect(bus.execute(Start())).resolves.toBe('42')
  })

  it('reports factories that depend on each other in a cycle', async () => {
    interface Loop {
      a: number
      b: number
    }
    const bus = new MessageBus<Loop>({
      dependencies: {
        a: transient<number, Loop>(({ get }) => get('b')),
        b: transient<number, Loop>(({ get }) => get('a')),
      },
    })
    bus.handle(Start, (_cmd, ctx) => String(ctx.deps.a), { deps: ['a'] })
    const error = await expectSwitchyardError(bus.execute(Start()), ErrorCode.DependencyCycle)
    expect(error.message).toContain('a → b → a')
  })

  it('logs a failing disposal without failing the dispatch', async () => {
    const logger = new RecordingLogger('error')
    const broken = {
      [Symbol.dispose]: () => {
        throw new Error('cannot release')
      },
    }
    const bus = new MessageBus<{ res: typeof broken }>({
      logger,
      dependencies: { res: scoped(() => broken) },
    })
    bus.handle(Start, () => 'ok', { deps: ['res'] })
    await expect(bus.execute(Start())).resolves.toBe('ok')
    expect(logger.entries[0]?.message).toBe('disposing a dependency failed')
  })
})

describe('missing dependencies', () => {
  it('are a ConfigurationError at start(), naming every one, before any dispatch', async () => {
    const bus = new MessageBus<Deps>({ dependencies: { clock: () => 1 } as never })
    bus.handle(Start, () => 'x', { deps: ['counter'] })
    bus.handle(Step, () => undefined, { deps: ['counter', 'clock'] })
    const error = await expectSwitchyardError(bus.start(), ErrorCode.MissingDependency)
    expect((error as unknown as { problems: string[] }).problems).toHaveLength(2)
    expect(error.message).toContain('"counter"')
  })
})

describe('overrides for tests', () => {
  it('replaces a dependency until the handle is disposed (using)', async () => {
    const bus = new MessageBus<Deps>({ dependencies: { clock: () => 1, counter: new Counter() } })
    bus.handle(Start, (_cmd, ctx) => String(ctx.deps.clock()), { deps: ['clock'] })
    await expect(bus.execute(Start())).resolves.toBe('1')
    {
      using _override = bus.override('clock', () => () => 99)
      await expect(bus.execute(Start())).resolves.toBe('99')
    }
    await expect(bus.execute(Start())).resolves.toBe('1')
  })

  it('keeps the original lifetime for a factory override, and nests', async () => {
    const bus = new MessageBus<Deps>({
      dependencies: { clock: () => 1, counter: scoped(() => new Counter()) },
    })
    const seen: Counter[] = []
    bus.handle(
      Start,
      (_cmd, ctx) => {
        seen.push(ctx.deps.counter)
        ctx.publish(Step({ n: 1 }))
        return 'ok'
      },
      { deps: ['counter'] },
    )
    bus.handle(Step, (_e, ctx) => void seen.push(ctx.deps.counter), { deps: ['counter'] })
    const fake = new Counter()
    const outer = bus.override('counter', () => fake)
    const inner = bus.override(
      'counter',
      singleton(() => new Counter()),
    )
    inner[Symbol.dispose]()
    await bus.execute(Start())
    outer[Symbol.dispose]()
    expect(seen).toEqual([fake, fake])
  })

  it('refuses to override a name the bus does not provide', async () => {
    const bus = new MessageBus<Deps>({ dependencies: { clock: () => 1, counter: new Counter() } })
    await expectSwitchyardError(
      () => bus.override('nope' as 'clock', () => () => 1),
      ErrorCode.MissingDependency,
    )
  })
})

describe('resolving from your own container', () => {
  it('resolves from an awilix scope created per dispatch and disposed after it', async () => {
    class RequestLog {
      readonly lines: string[] = []
      disposed = false
      dispose(): void {
        this.disposed = true
      }
    }
    const container = createContainer()
    container.register({
      greeting: asValue('hello'),
      log: asClass(RequestLog, {
        lifetime: AwilixLifetime.SCOPED,
        dispose: (log) => log.dispose(),
      }),
    })
    interface AppDeps {
      greeting: string
      log: RequestLog
    }
    const logs: RequestLog[] = []
    const bus = new MessageBus<AppDeps>({
      dependencies: fromContainer<AppDeps, ReturnType<typeof container.createScope>>({
        names: ['greeting', 'log'],
        createScope: () => container.createScope(),
        resolve: (scope, name) => scope.resolve(name),
        disposeScope: (scope) => scope.dispose(),
      }),
    })
    bus.handle(
      Start,
      (_cmd, ctx) => {
        ctx.deps.log.lines.push(ctx.deps.greeting)
        logs.push(ctx.deps.log)
        ctx.publish(Step({ n: 1 }))
        return ctx.deps.greeting
      },
      { deps: ['greeting', 'log'] },
    )
    bus.handle(Step, (_e, ctx) => void logs.push(ctx.deps.log), { deps: ['log'] })
    await expect(bus.execute(Start())).resolves.toBe('hello')
    await bus.execute(Start())
    expect(logs[0]).toBe(logs[1])
    expect(logs[1]).not.toBe(logs[2])
    expect(logs.every((l) => l.disposed)).toBe(true)
  })
})
