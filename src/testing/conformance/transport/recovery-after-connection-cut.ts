import { ids, Recorder, sleep, waitUntil, type Scenario, type ScenarioContext } from './support.js'
import type { TransportMessage } from '../../../index.js'

/**
 * Publishes `messages` the way the outbox relay does: a rejected publish is retried (the whole
 * batch, so some messages may arrive twice) until it resolves.
 */
async function publishRetrying(
  s: ScenarioContext,
  topic: string,
  messages: readonly TransportMessage[],
): Promise<void> {
  await waitUntil(
    async () => {
      try {
        await s.h.publisher.publish(topic, messages)
        return true
      } catch {
        await sleep(50)
        return false
      }
    },
    s.deadlineMs,
    'a publish to succeed after the connection was cut',
  )
}

/**
 * The connection is cut (RST) twice while 90 messages flow (Watermill's TestReconnect, with the
 * proxy in place of a broker restart): the publisher and the subscription reconnect on their own,
 * and every message is handled at least once.
 */
export const recoveryAfterConnectionCut: Scenario = {
  name: 'recovery after the connection is cut by the proxy: publisher and subscription reconnect, every message arrives',
  needsProxy: true,
  async run(s) {
    const topic = s.topic()
    const recorder = new Recorder(() => sleep(2))
    await s.h.subscriber.subscribe(topic, recorder.handler, {
      group: s.group(),
      concurrency: 4,
      retry: { maxAttempts: 10, delayMs: () => 10 },
    })
    const messages = Array.from({ length: 90 }, (_, i) =>
      s.message({ key: i % 2 === 0 ? s.key(String(i % 5)) : undefined }),
    )
    for (let batch = 0; batch < 9; batch++) {
      if (batch === 3 || batch === 5) await s.proxy!.cut()
      await publishRetrying(s, topic, messages.slice(batch * 10, batch * 10 + 10))
    }
    await s.eventually('every message after the cuts', () => recorder.hasHandled(ids(messages)))
  },
}
