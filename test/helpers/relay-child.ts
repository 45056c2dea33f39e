/**
 * A relay in its own process, for crash tests: publishes to a recording publisher that appends
 * one JSON line per message to a file (synchronously, before confirming), so the parent can kill
 * this process with SIGKILL at any moment and still account for every confirmed publish.
 * Env: SWITCHYARD_PG_URL, RELAY_SCHEMA, RELAY_LEDGER, RELAY_BATCH, RELAY_LEASE_MS.
 */
import { appendFileSync } from 'node:fs'
import pg from 'pg'
import { OutboxRelay, type Publisher } from '../../src/index.js'
import { PostgresOutboxStore } from '../../src/postgres/index.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (value === undefined) throw new Error(`${name} is required`)
  return value
}

const pool = new pg.Pool({ connectionString: env('SWITCHYARD_PG_URL'), max: 3 })
pool.on('error', () => undefined)
const store = new PostgresOutboxStore({ pool, schema: env('RELAY_SCHEMA'), notify: false })
const ledger = env('RELAY_LEDGER')
const recording: Publisher = {
  publish: async (_topic, messages) => {
    appendFileSync(
      ledger,
      messages
        .map((m) => `${JSON.stringify({ id: m.id, key: m.key, pid: process.pid })}\n`)
        .join(''),
    )
    return Promise.resolve()
  },
  close: async () => undefined,
}
const relay = new OutboxRelay({
  store,
  publisher: recording,
  batchSize: Number(process.env.RELAY_BATCH ?? 50),
  leaseMs: Number(process.env.RELAY_LEASE_MS ?? 1000),
  publishTimeoutMs: 500,
  pollIntervalMs: 20,
  backoff: { initialDelay: 5, maxDelay: 50 },
})
relay.start()
process.send?.('ready')
