import { describe, expectTypeOf, it } from 'vitest'
import { z } from 'zod'
import {
  type Command,
  defineCommand,
  defineEvent,
  defineQuery,
  type Event,
  type HandlerContext,
  MessageBus,
  type Query,
  type QueryContext,
  type ResultOf,
} from '../index.js'

const Allocate = defineCommand(
  'Allocate',
  z.object({ orderId: z.string(), qty: z.number() }),
).returns<string>()
const Deallocate = defineCommand<{ orderId: string }>('Deallocate')
const Allocated = defineEvent('Allocated', z.object({ orderId: z.string() }))
const GetAllocations = defineQuery('GetAllocations')
  .withPayload<{ sku: string }>()
  .returns<readonly string[]>()

describe('typed messages', () => {
  it('infers the payload from the schema', () => {
    expectTypeOf(Allocate({ orderId: 'o', qty: 1 }).payload).toEqualTypeOf<{
      orderId: string
      qty: number
    }>()
    expectTypeOf(Allocate({ orderId: 'o', qty: 1 }).type).toEqualTypeOf<'Allocate'>()
    // @ts-expect-error qty must be a number
    Allocate({ orderId: 'o', qty: '1' })
    // @ts-expect-error orderId is required
    Allocated({})
  })

  it('keeps the literal type with withPayload<P>(), and widens it with explicit generics', () => {
    expectTypeOf(defineEvent('Shipped').withPayload<{ id: number }>()({ id: 1 })).toEqualTypeOf<
      Event<'Shipped', { id: number }>
    >()
    expectTypeOf(defineEvent<{ id: number }>('Shipped')({ id: 1 })).toEqualTypeOf<
      Event<string, { id: number }>
    >()
  })

  it('lets a payload-less message be created with no argument', () => {
    const Ping = defineEvent('Ping')
    expectTypeOf(Ping()).toExtend<Event<'Ping', void>>()
  })

  it('narrows with is()', () => {
    const value: unknown = Allocated({ orderId: 'o' })
    if (Allocated.is(value)) expectTypeOf(value.payload.orderId).toEqualTypeOf<string>()
  })
})

describe('typed results without casts', () => {
  const bus = new MessageBus()

  it('types execute() from the command definition', () => {
    expectTypeOf(bus.execute(Allocate({ orderId: 'o', qty: 1 }))).toEqualTypeOf<Promise<string>>()
    expectTypeOf(bus.execute(Deallocate({ orderId: 'o' }))).toEqualTypeOf<Promise<void>>()
  })

  it('types query() and dispatch() from the query definition', () => {
    expectTypeOf(bus.query(GetAllocations({ sku: 's' }))).toEqualTypeOf<
      Promise<readonly string[]>
    >()
    expectTypeOf(bus.dispatch(GetAllocations({ sku: 's' }))).toEqualTypeOf<
      Promise<readonly string[]>
    >()
    expectTypeOf(bus.dispatch(Allocate({ orderId: 'o', qty: 1 }))).toEqualTypeOf<Promise<string>>()
    expectTypeOf<ResultOf<Event>>().toEqualTypeOf<void>()
  })

  it('refuses the wrong kind of message at compile time', () => {
    // @ts-expect-error an event is not a command
    void bus.execute(Allocated({ orderId: 'o' }))
    // @ts-expect-error a command is not an event
    void bus.publish(Allocate({ orderId: 'o', qty: 1 }))
    // @ts-expect-error a command is not a query
    void bus.query(Deallocate({ orderId: 'o' }))
  })
})

describe('typed handlers', () => {
  const bus = new MessageBus()

  it('types the message and context of each handler', () => {
    bus.handle(Allocate, (cmd, ctx) => {
      expectTypeOf(cmd).toEqualTypeOf<
        Command<'Allocate', { orderId: string; qty: number }, string>
      >()
      expectTypeOf(ctx).toEqualTypeOf<
        HandlerContext<Command<'Allocate', { orderId: string; qty: number }, string>>
      >()
      return cmd.payload.orderId
    })
    bus.handle(GetAllocations, (query, ctx) => {
      expectTypeOf(query).toEqualTypeOf<
        Query<'GetAllocations', { sku: string }, readonly string[]>
      >()
      expectTypeOf(ctx).toEqualTypeOf<
        QueryContext<Query<'GetAllocations', { sku: string }, readonly string[]>>
      >()
      // @ts-expect-error query handlers cannot publish
      ctx.publish(Allocated({ orderId: 'o' }))
      return [query.payload.sku]
    })
    bus.handle(Allocated, async (event, ctx) => {
      expectTypeOf(event.payload).toEqualTypeOf<{ orderId: string }>()
      const n = await ctx.execute(Allocate({ orderId: event.payload.orderId, qty: 1 }))
      expectTypeOf(n).toEqualTypeOf<string>()
    })
  })

  it('requires the handler to return the declared result', () => {
    // @ts-expect-error Allocate returns a string
    bus.handle(Allocate, () => 42)
    // @ts-expect-error async handlers too
    bus.handle(GetAllocations, async () => Promise.resolve(42))
  })

  it('accepts class-based handlers', () => {
    class AllocateHandler {
      handle(cmd: Command<'Allocate', { orderId: string; qty: number }, string>): Promise<string> {
        return Promise.resolve(cmd.payload.orderId)
      }
    }
    bus.handle(Allocate, new AllocateHandler())
  })
})
