/**
 * The baseline and the switchyard-bus cases. Messages are built once, outside the loops: the
 * benchmark measures dispatch, not message creation (a uuidv7 and an object per message).
 */
import {
  type Command,
  defineCommand,
  defineEvent,
  logging,
  MessageBus,
  retry,
  timeout,
} from 'switchyard-bus'
import type { BenchCase } from './harness.js'
import { Latch, sink } from './latch.js'

const DoWork = defineCommand<{ n: number }, number>('Bench.DoWork')
const WorkDone = defineEvent<{ n: number }>('Bench.WorkDone')

type DoWorkCommand = Command<string, { n: number }, number>

export interface SwitchyardCases {
  readonly plain: BenchCase
  readonly execute: BenchCase
  readonly executeMiddleware: BenchCase
  readonly publish: BenchCase
  /** Runs each case once and checks it did the work (result value, handler calls). */
  verify(): Promise<void>
}

export async function switchyardCases(): Promise<SwitchyardCases> {
  const command: DoWorkCommand = DoWork({ n: 41 })
  const event = WorkDone({ n: 1 })
  const latch = new Latch(3)

  // 1. The baseline: an async function called and awaited directly, with the same message.
  const handler = async (cmd: DoWorkCommand): Promise<number> => cmd.payload.n + 1

  // 2. + 4. One bus without middleware: the command handler and three event handlers.
  const bus = new MessageBus()
  bus.handle(DoWork, async (cmd) => cmd.payload.n + 1)
  bus.handle(WorkDone, async (e) => latch.hit(e.payload.n), { name: 'first' })
  bus.handle(WorkDone, async (e) => latch.hit(e.payload.n), { name: 'second' })
  bus.handle(WorkDone, async (e) => latch.hit(e.payload.n), { name: 'third' })
  await bus.start()

  // 3. The same command handler behind retry + timeout + logging; the default (silent) logger.
  const busMiddleware = new MessageBus({
    middleware: [retry({ attempts: 3 }), timeout(1000), logging()],
  })
  busMiddleware.handle(DoWork, async (cmd) => cmd.payload.n + 1)
  await busMiddleware.start()

  const plain: BenchCase = {
    id: 'plain',
    label: 'plain: await handler(cmd)',
    heap: true,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += await handler(command)
      sink.value += acc
    },
  }

  const execute: BenchCase = {
    id: 'execute',
    label: 'bus.execute(cmd), no middleware',
    heap: true,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += await bus.execute(command)
      sink.value += acc
    },
  }

  const executeMiddleware: BenchCase = {
    id: 'executeMw',
    label: 'bus.execute(cmd), retry+timeout+logging',
    heap: true,
    run: async (n) => {
      let acc = 0
      for (let i = 0; i < n; i++) acc += await busMiddleware.execute(command)
      sink.value += acc
    },
  }

  const publish: BenchCase = {
    id: 'publish',
    label: 'bus.publish(evt), 3 handlers',
    heap: true,
    run: async (n) => {
      for (let i = 0; i < n; i++) await bus.publish(event)
    },
  }

  const verify = async (): Promise<void> => {
    const results = [
      await handler(command),
      await bus.execute(command),
      await busMiddleware.execute(command),
    ]
    if (results.some((r) => r !== 42))
      throw new Error(`unexpected command results ${results.join(', ')}`)
    const calls = latch.calls
    await bus.publish(event)
    if (latch.calls - calls !== 3)
      throw new Error(`bus.publish ran ${latch.calls - calls} handlers, not 3`)
  }

  return { plain, execute, executeMiddleware, publish, verify }
}
