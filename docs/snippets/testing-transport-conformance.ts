// The transport conformance suite under node:test, against InMemoryTransport.
import { afterEach, beforeEach, describe, it } from 'node:test'
import { InMemoryTransport } from 'switchyard-bus'
import { describeTransportConformance } from 'switchyard-bus/testing'

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
  // node:test's describe and it return promises, which node:test itself awaits
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  { describe, it, beforeEach, afterEach },
)
