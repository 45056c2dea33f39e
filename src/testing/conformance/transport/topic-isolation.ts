import assert from 'node:assert/strict'
import { ids, Recorder, sleep, type Scenario } from './support.js'

/** A subscription sees its own topic only, also when names share a prefix and groups a name. */
export const topicIsolation: Scenario = {
  name: 'topic isolation: a subscription receives only its own topic, even with a shared group name or a name prefix',
  async run(s) {
    const orders = s.topic('orders')
    const ordersEu = s.topic('orders.eu')
    const ordersDash = s.topic('orders-eu')
    const unwatched = s.topic('orders_eu')
    const group = s.group() // the same group name on every topic: groups belong to their topic
    const recorders = new Map([orders, ordersEu, ordersDash].map((t) => [t, new Recorder()]))
    for (const [topic, recorder] of recorders)
      await s.h.subscriber.subscribe(topic, recorder.handler, { group, concurrency: 2 })
    // The fourth topic has a group of another name, so its publish is routable on a transport
    // that refuses messages no group receives (RabbitMQ's default `unroutable: 'reject'`).
    const bystander = new Recorder()
    await s.h.subscriber.subscribe(unwatched, bystander.handler, { group: s.group('bystander') })
    const published = new Map(
      [orders, ordersEu, ordersDash, unwatched].map((t) => [
        t,
        Array.from({ length: 10 }, () => s.message()),
      ]),
    )
    for (const [topic, messages] of published) await s.h.publisher.publish(topic, messages)
    for (const [topic, recorder] of recorders)
      await s.eventually(`every message of ${topic}`, () =>
        recorder.hasHandled(ids(published.get(topic)!)),
      )
    await s.eventually(`every message of ${unwatched}`, () =>
      bystander.hasHandled(ids(published.get(unwatched)!)),
    )
    await sleep(100) // room for a stray delivery to show up
    for (const [topic, recorder] of recorders) {
      const own = new Set(ids(published.get(topic)!))
      for (const d of recorder.deliveries) {
        assert.equal(d.topic, topic)
        assert.ok(own.has(d.id), `${d.id} was published to another topic but reached ${topic}`)
      }
    }
  },
}
