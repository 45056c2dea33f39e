import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { connect } from 'amqplib'
import type { DeadLetter, Delivery, RedeliveryPolicy } from 'switchyard-bus'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'

const url = process.env.SWITCHYARD_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672'
const namespace = `docs-${randomBytes(4).toString('hex')}` // the default is switchyard
const transport = new RabbitMqTransport({
  connection: () => connect(`${url}?heartbeat=10`), // a factory, so the transport can reconnect
  namespace,
})
const retry: RedeliveryPolicy = { maxAttempts: 3, delayMs: () => 200 } // 3 deliveries, 200 ms apart
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

async function main(): Promise<void> {
  const received: Delivery[] = []
  try {
    // Declares the exchange, the group's queue and its dead-letter queue; prefetch = concurrency.
    await transport.subscribe(
      'allocations',
      (delivery) => {
        received.push(delivery)
        if (delivery.key === 'SOFA') return Promise.reject(new Error('no such product')) // retried
        return Promise.resolve() // acked
      },
      { group: 'reporting', concurrency: 4, retry },
    )
    // Resolves once RabbitMQ confirmed both (persistent, on durable queues).
    await transport.publish('allocations', [
      { id: 'm1', key: 'LAMP', headers: { tenant: 'acme' }, body: bytes('{"qty":4}') },
      { id: 'm2', key: 'SOFA', headers: {}, body: bytes('{"qty":1}') },
    ])

    let letters: DeadLetter[] = []
    for (const deadline = Date.now() + 10_000; letters.length === 0;) {
      assert.ok(Date.now() < deadline, 'no dead letter within 10 s')
      await new Promise((resolve) => setTimeout(resolve, 100))
      letters = await transport.deadLetters('allocations', 'reporting') // reads, never removes
    }
    const [ok] = received.filter((d) => d.id === 'm1')
    assert.deepEqual([ok?.key, ok?.headers, ok?.attempt], ['LAMP', { tenant: 'acme' }, 1])
    const failed = received.filter((d) => d.id === 'm2').map((d) => d.attempt)
    assert.deepEqual(failed, [1, 2, 3]) // through the delay queue <queue>:delay:200, twice
    assert.deepEqual(
      [letters[0]?.message.id, letters[0]?.reason, letters[0]?.attempts],
      ['m2', 'no such product', 3],
    )
    assert.equal(
      transport.topology('allocations', 'reporting').queue,
      `${namespace}:allocations:reporting`,
    )
  } finally {
    await transport.close()
    // Delete what this run declared (queues first, then exchanges), the delay queue included.
    const admin = await connect(url)
    const channel = await admin.createChannel()
    const { declarations } = transport.topology('allocations', 'reporting', retry)
    for (const d of declarations) if (d.kind === 'queue') await channel.deleteQueue(d.name)
    for (const d of declarations) if (d.kind === 'exchange') await channel.deleteExchange(d.name)
    await admin.close()
  }
}
void main()
