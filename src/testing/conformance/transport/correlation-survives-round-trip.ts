import assert from 'node:assert/strict'
import {
  decodeEnvelope,
  defineEvent,
  encodeEnvelope,
  type TransportMessage,
} from '../../../index.js'
import { Recorder, type Scenario } from './support.js'

const OrderPlaced = defineEvent<{ orderId: string; note: string }>('conformance.OrderPlaced')
const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
const tracestate = 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7'

/** A message encoded as the outbox does keeps its correlation, causation and trace context. */
export const correlationSurvivesRoundTrip: Scenario = {
  name: 'correlation and causation ids and the trace context survive the round trip through the transport',
  async run(s) {
    const topic = s.topic()
    const key = s.key('order-1')
    const parent = OrderPlaced(
      { orderId: 'order-1', note: 'première commande 🎉' },
      { headers: { traceparent, tracestate, tenant: 'acme' } },
    )
    const child = OrderPlaced(
      { orderId: 'order-1', note: 'follow-up' },
      {
        correlationId: parent.correlationId,
        causationId: parent.id,
        headers: { traceparent, 'x-tenant': 'acme' },
      },
    )
    const events = [parent, child]
    const messages: TransportMessage[] = events.map((event) => ({
      id: event.id,
      key,
      headers: event.headers,
      body: encodeEnvelope(event, { source: '/conformance', key }),
    }))
    const recorder = new Recorder()
    await s.h.subscriber.subscribe(topic, recorder.handler, { group: s.group() })
    await s.h.publisher.publish(topic, messages)
    await s.eventually('both events', () => recorder.hasHandled(events.map((e) => e.id)))
    for (const event of events) {
      const delivery = recorder.of(event.id)[0]!
      assert.deepEqual({ ...delivery.headers }, { ...event.headers }, 'transport headers')
      const decoded = decodeEnvelope(delivery.body)
      assert.equal(decoded.key, key)
      assert.equal(decoded.source, '/conformance')
      const { headers, ...rest } = decoded.message
      const { headers: sentHeaders, ...sent } = event
      assert.deepEqual(rest, { ...sent })
      assert.deepEqual({ ...headers }, { ...sentHeaders }, 'headers, traceparent included')
    }
    const decodedChild = decodeEnvelope(recorder.of(child.id)[0]!.body).message
    assert.equal(decodedChild.correlationId, parent.id)
    assert.equal(decodedChild.causationId, parent.id)
    assert.equal(decodedChild.headers.traceparent, traceparent)
  },
}
