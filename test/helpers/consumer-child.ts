/**
 * A consumer in its own process, for the RabbitMQ fault tests (inbox-consumer.ts): a `Consumer`
 * with the PostgreSQL inbox on a `RabbitMqTransport`, whose handler writes one effects row per
 * message. It appends one JSON line per step to the log synchronously, so the parent can kill it
 * at any moment and still tell what it was doing.
 *
 * Env (see `consumerChildEnv`):
 * - `CONSUMER_AMQP_URL`, `CONSUMER_NAMESPACE`, `CONSUMER_TOPIC`, `CONSUMER_NAME` (inbox scope and
 *   group), `CONSUMER_CONCURRENCY`, `CONSUMER_DELIVERY_LIMIT` (the quorum queue's), and
 *   `CONSUMER_MAX_ATTEMPTS` (the consumer's retry policy).
 * - `CONSUMER_PG_URL`, `CONSUMER_SCHEMA`: where the inbox and the effects table are.
 * - `CONSUMER_LOG`: the log (`ConsumerLogLine` per line).
 * - `CONSUMER_HANDLER_MS`: time the handler takes, half before its commit and half after.
 * - `CONSUMER_POISON`: comma-separated message ids whose handler SIGKILLs its own process
 *   `CONSUMER_POISON_KILL_MS` (default half the handler time) after writing its effect, before its
 *   commit.
 *
 * Sends `{ type: 'ready', pid }` over IPC once it consumes.
 */
import { appendFileSync } from 'node:fs'
import { connect } from 'amqplib'
import pg from 'pg'
import { RabbitMqTransport } from '../../src/rabbitmq/index.js'
import { sleep } from './crash-harness.js'
import { type ConsumerLogLine, inboxConsumer, placedEvent, tapped } from './inbox-consumer.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is required`)
  return value
}
const numberEnv = (name: string, fallback: number): number => Number(process.env[name] ?? fallback)

async function main(): Promise<void> {
  const log = env('CONSUMER_LOG')
  const write = (line: Omit<ConsumerLogLine, 'pid' | 't'>): void =>
    appendFileSync(log, `${JSON.stringify({ ...line, pid: process.pid, t: Date.now() })}\n`)
  const concurrency = numberEnv('CONSUMER_CONCURRENCY', 1)
  const handlerMs = numberEnv('CONSUMER_HANDLER_MS', 0)
  const poisonKillMs = numberEnv('CONSUMER_POISON_KILL_MS', handlerMs / 2)
  const poison = new Set((process.env.CONSUMER_POISON ?? '').split(',').filter(Boolean))
  const url = env('CONSUMER_AMQP_URL')

  const pool = new pg.Pool({ connectionString: env('CONSUMER_PG_URL'), max: concurrency + 2 })
  pool.on('error', () => undefined)
  const transport = new RabbitMqTransport({
    connection: () => connect(url),
    namespace: env('CONSUMER_NAMESPACE'),
    deliveryLimit: numberEnv('CONSUMER_DELIVERY_LIMIT', 20),
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  })
  const consumer = inboxConsumer({
    pool,
    schema: env('CONSUMER_SCHEMA'),
    subscriber: tapped(transport, (d) => write({ ev: 'deliver', id: d.id, attempt: d.attempt })),
    event: placedEvent(env('CONSUMER_TOPIC')),
    name: env('CONSUMER_NAME'),
    concurrency,
    retry: { maxAttempts: numberEnv('CONSUMER_MAX_ATTEMPTS', 5), initialDelay: 50, maxDelay: 500 },
    onHandle: (event) => write({ ev: 'handle', id: event.id }),
    beforeCommit: async (event) => {
      if (!poison.has(event.id)) {
        if (handlerMs > 0) await sleep(handlerMs / 2)
        return
      }
      // Some way into its work, with its effect written and not committed.
      await sleep(poisonKillMs)
      process.kill(process.pid, 'SIGKILL')
    },
    afterCommit: async (event) => {
      write({ ev: 'commit', id: event.id })
      if (handlerMs > 0) await sleep(handlerMs / 2)
      write({ ev: 'done', id: event.id })
    },
  })
  await consumer.start()
  process.send?.({ type: 'ready', pid: process.pid })
  process.once('SIGTERM', () => {
    void consumer
      .stop()
      .then(() => transport.close())
      .then(() => pool.end())
      .finally(() => process.exit(0))
  })
}

main().catch((error: unknown) => {
  console.error('consumer child failed:', error)
  process.exit(1)
})
