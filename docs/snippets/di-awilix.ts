import assert from 'node:assert/strict'
import { asClass, asValue, type AwilixContainer, createContainer } from 'awilix'
import { defineCommand, defineEvent, fromContainer, MessageBus } from 'switchyard-bus'
import { InMemoryUnitOfWork, transient } from 'switchyard-bus'

class RequestLog {
  readonly lines: string[] = []
  disposed = false
}
const container = createContainer()
container.register({
  greeting: asValue('hello'),
  requestLog: asClass(RequestLog, { lifetime: 'SCOPED', dispose: (l) => void (l.disposed = true) }),
})
type FromContainer = { greeting: string; requestLog: RequestLog }
type AppDeps = FromContainer & { uow: InMemoryUnitOfWork }

const bus = new MessageBus<AppDeps>({
  dependencies: {
    ...fromContainer<FromContainer, AwilixContainer>({
      names: ['greeting', 'requestLog'],
      createScope: () => container.createScope(), // once per top-level dispatch
      resolve: (scope, name) => scope.resolve(name),
      disposeScope: (scope) => scope.dispose(), // when that dispatch ends
    }),
    uow: transient(() => new InMemoryUnitOfWork({})), // units of work stay transient()
  },
})
const Greet = defineCommand('Greet')
const Greeted = defineEvent('Greeted')
const logs: RequestLog[] = []
bus.handle(
  Greet,
  async (_cmd, ctx) => {
    ctx.deps.requestLog.lines.push(ctx.deps.greeting)
    ctx.publish(Greeted())
    await ctx.deps.uow.commit()
  },
  { deps: ['greeting', 'requestLog', 'uow'] },
)
bus.handle(Greeted, (_event, ctx) => void logs.push(ctx.deps.requestLog), { deps: ['requestLog'] })

async function main(): Promise<void> {
  await bus.execute(Greet())
  await bus.execute(Greet())
  assert.deepEqual(logs[0]?.lines, ['hello']) // the follow-up shared the command's awilix scope
  assert.ok(logs.length === 2 && logs[0] !== logs[1]) // a new scope for each dispatch
  assert.ok(logs.every((log) => log.disposed))
}
void main()
