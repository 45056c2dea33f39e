// The transport conformance suite against InMemoryTransport. Real timers: the suite waits for
// redelivery delays (10 ms) and liveness deadlines, so it cannot run on fake ones.
import { afterEach, beforeEach, describe, it } from 'vitest'
import { describeTransportConformance } from '../testing/index.js'
import { InMemoryTransport } from './in-memory-transport.js'

describe('InMemoryTransport', { timeout: 30_000 }, () => {
  describeTransportConformance(
    {
      name: 'InMemoryTransport',
      features: {
        persistent: false,
        consumerGroups: true,
        orderedPerKey: true,
        orderedWithSingleConsumer: true,
        redeliversOnNack: true,
        delayedRedelivery: true,
        deadLetter: true,
        replaysToNewGroup: false, // a group gets what is published after its first subscribe
        singleInstanceOnly: true,
      },
      create: () => {
        const transport = new InMemoryTransport()
        return {
          publisher: transport,
          subscriber: transport,
          close: () => transport.close(),
          deadLetters: (topic, group) => transport.deadLetters(topic, group),
        }
      },
      skip: [
        {
          test: 'publisher close flushes: publishes started before close() resolve, and everything published arrives',
          reason:
            'one object is both publisher and subscriber: publish is synchronous (nothing is ever in flight to flush) and closing it closes the subscriptions too',
        },
      ],
    },
    { describe, it, beforeEach, afterEach },
  )
})
