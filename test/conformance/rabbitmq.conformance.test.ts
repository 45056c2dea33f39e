// The transport conformance suite against RabbitMqTransport on the shared broker. Each harness
// is two transports (publisher and subscriber on their own connections, as in two processes) in
// the scenario's own namespace; the connection-cut scenario goes through a TcpProxy. Everything a
// scenario declared is deleted when its last harness closes.
import { connect } from 'amqplib'
import { afterAll, afterEach, beforeEach, describe, inject, it } from 'vitest'
import { describeTransportConformance } from '../../src/testing/index.js'
import { RabbitMqTransport, type RabbitMqTopology } from '../../src/rabbitmq/index.js'
import { TcpProxy } from '../helpers/tcp-proxy.js'

const url = inject('services').rabbitmq ?? null

let proxy: Promise<TcpProxy> | undefined
const theProxy = (): Promise<TcpProxy> => (proxy ??= TcpProxy.start({ upstream: url! }))
afterAll(async () => {
  await (await proxy)?.close()
})

/** The topologies of each scenario namespace, and how many of its harnesses are open. */
const namespaces = new Map<string, { open: number; topologies: Map<string, RabbitMqTopology> }>()

async function deleteAll(topologies: Iterable<RabbitMqTopology>): Promise<void> {
  const admin = await connect(url!)
  try {
    const channel = await admin.createChannel()
    const list = [...topologies]
    for (const t of list)
      for (const d of t.declarations) if (d.kind === 'queue') await channel.deleteQueue(d.name)
    for (const t of list)
      for (const d of t.declarations)
        if (d.kind === 'exchange') await channel.deleteExchange(d.name)
  } finally {
    await admin.close()
  }
}

describe.skipIf(url === null)('RabbitMQ', { timeout: 60_000 }, () => {
  describeTransportConformance(
    {
      name: 'RabbitMqTransport',
      features: {
        persistent: true, // durable quorum queues, persistent messages, publisher confirms
        consumerGroups: true, // a queue per group; a group's subscriptions compete for it
        // One subscription runs a key's deliveries one at a time, but a retry goes through a
        // delay queue back to the tail of the group queue (later messages of the key overtake
        // it), and the subscriptions of one group share a key's messages out between them.
        orderedPerKey: false,
        orderedWithSingleConsumer: true, // concurrency 1 → prefetch 1, in queue order, no failures
        redeliversOnNack: true,
        delayedRedelivery: true, // per-delay TTL queues
        deadLetter: true, // the group's dead-letter exchange and queue
        replaysToNewGroup: false, // a new group's queue starts empty
        singleInstanceOnly: false,
      },
      deadlineMs: 20_000,
      proxy: { cut: async () => void (await theProxy()).cut() },
      create: async (ctx) => {
        const target = ctx.viaProxy ? (await theProxy()).url(url!) : url!
        const options = {
          connection: () => connect(target),
          namespace: ctx.id,
          reconnect: { initialDelayMs: 50, maxDelayMs: 1000 },
        }
        const publisher = new RabbitMqTransport(options)
        const subscriber = new RabbitMqTransport(options)
        let space = namespaces.get(ctx.id)
        if (space === undefined)
          namespaces.set(ctx.id, (space = { open: 0, topologies: new Map() }))
        const { topologies } = space
        space.open++
        let closed: Promise<void> | undefined
        return {
          publisher,
          subscriber: {
            subscribe: (topic, handler, subscribeOptions) => {
              const { group, retry } = subscribeOptions
              topologies.set(`${topic}\u0000${group}`, subscriber.topology(topic, group, retry))
              return subscriber.subscribe(topic, handler, subscribeOptions)
            },
            close: () => subscriber.close(),
          },
          deadLetters: (topic, group) => subscriber.deadLetters(topic, group),
          close: () =>
            (closed ??= (async () => {
              await Promise.all([publisher.close(), subscriber.close()])
              if (--space.open > 0) return
              namespaces.delete(ctx.id)
              // The exchange exists even when the scenario never subscribed.
              topologies.set('', publisher.topology('unused', 'unused'))
              await deleteAll(topologies.values())
            })()),
        }
      },
    },
    { describe, it, beforeEach, afterEach },
  )
})
