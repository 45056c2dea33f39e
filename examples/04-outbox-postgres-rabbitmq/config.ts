/**
 * What both services and the demo agree on: where PostgreSQL and RabbitMQ are, and the names of
 * one run. `EXAMPLE_RUN` (default `demo`) names the run; main.ts and the test pick a fresh one, so
 * each run has its own schemas and its own exchange, and `removeRun()` deletes them afterwards.
 */
import { connect } from 'amqplib'
import type pg from 'pg'
import type { Logger } from 'switchyard-bus'
import { rabbitMqTopology } from 'switchyard-bus/rabbitmq'

export const PG_URL = process.env.SWITCHYARD_PG_URL || 'postgres://postgres@127.0.0.1:5432/test'
export const AMQP_URL = process.env.SWITCHYARD_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672'

/** The broker URL with a 10 s heartbeat, so a silent connection is noticed (see the docs). */
export function amqpUrl(): string {
  const url = new URL(AMQP_URL)
  url.searchParams.set('heartbeat', '10')
  return url.toString()
}

/** The names of one run. */
export interface RunNames {
  readonly run: string
  /** The allocation service's schema: products, batches and its outbox. */
  readonly allocationSchema: string
  /** The reporting service's schema: its read model and its inbox. */
  readonly reportingSchema: string
  /** The RabbitMQ namespace: the topic exchange's name and every queue's prefix. */
  readonly namespace: string
  readonly topic: 'allocations'
  /** The consumer's name: its group (its queue) and its inbox scope. */
  readonly group: 'reporting'
}

export function runNames(run = process.env.EXAMPLE_RUN || 'demo'): RunNames {
  if (!/^[a-z0-9]{1,20}$/.test(run)) throw new Error(`EXAMPLE_RUN must match [a-z0-9]{1,20}`)
  return {
    run,
    allocationSchema: `ex04_${run}_allocation`,
    reportingSchema: `ex04_${run}_reporting`,
    namespace: `ex04-${run}`,
    topic: 'allocations',
    group: 'reporting',
  }
}

/**
 * Drops the run's schemas and deletes its queues and exchanges. Delay queues (made only when a
 * handler fails) are not listed here: unused, they expire on their own (`x-expires`).
 */
export async function removeRun(names: RunNames, pool: pg.Pool): Promise<void> {
  for (const schema of [names.allocationSchema, names.reportingSchema])
    await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  const { declarations } = rabbitMqTopology(names.topic, names.group, {
    namespace: names.namespace,
  })
  const admin = await connect(AMQP_URL)
  try {
    const channel = await admin.createChannel()
    for (const d of declarations) if (d.kind === 'queue') await channel.deleteQueue(d.name)
    for (const d of declarations) if (d.kind === 'exchange') await channel.deleteExchange(d.name)
  } finally {
    await admin.close()
  }
}

/** A logger that prints warnings and errors as one line each, skipping a repeat of the last one. */
export function printingLogger(prefix: string): Logger {
  let last = ''
  const print = (fields: object, message?: string): void => {
    const error = (fields as { err?: { code?: string } }).err
    const line = `${prefix}${message ?? ''}${error?.code === undefined ? '' : ` (${error.code})`}`
    if (line !== last) console.log(line)
    last = line
  }
  const ignore = (): void => undefined
  return { debug: ignore, info: ignore, warn: print, error: print }
}
