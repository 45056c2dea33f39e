/**
 * Example 04 against the real services. It needs PostgreSQL and RabbitMQ, so it follows the
 * service rule: under CI a missing one fails the test, locally the test is skipped with a banner.
 * Each test is its own run (its own schemas and exchange), deleted after a pass and kept after a
 * failure for debugging.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type Channel, connect } from 'amqplib'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { requireService } from '../../test/helpers/services.js'
import { AMQP_URL, PG_URL, runNames } from './config.js'
import { System } from './system.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const newRun = (): string => `t${randomBytes(4).toString('hex')}`

let probed: Promise<boolean> | undefined
/** True when both services answer; under CI a missing one throws (the test fails). */
const servicesUp = (): Promise<boolean> =>
  (probed ??= (async () =>
    (await requireService('postgres')) !== undefined &&
    (await requireService('rabbitmq')) !== undefined)())

/** What of the run is left: schemas, and whether the exchange and the group queue exist. */
async function leftovers(
  run: string,
): Promise<{ schemas: string[]; exchange: boolean; queue: boolean }> {
  const names = runNames(run)
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 })
  const { rows } = await pool
    .query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)', [
      [names.allocationSchema, names.reportingSchema],
    ])
    .finally(() => pool.end())
  const connection = await connect(AMQP_URL)
  const exists = async (check: (channel: Channel) => Promise<unknown>): Promise<boolean> => {
    const channel = await connection.createChannel()
    channel.on('error', () => undefined) // a 404 closes the channel
    return check(channel).then(
      () => true,
      () => false,
    )
  }
  try {
    return {
      schemas: rows.map((r) => r.nspname),
      exchange: await exists((c) => c.checkExchange(names.namespace)),
      queue: await exists((c) => c.checkQueue(`${names.namespace}:allocations:reporting`)),
    }
  } finally {
    await connection.close()
  }
}

describe('example 04-outbox-postgres-rabbitmq', () => {
  it('runs main.ts: it exits 0, tells the expected story, and leaves nothing behind', async (ctx) => {
    if (!(await servicesUp())) return ctx.skip()
    const run = newRun()
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'examples/04-outbox-postgres-rabbitmq/main.ts'],
      { cwd: root, env: { ...process.env, EXAMPLE_RUN: run }, timeout: 90_000 },
    ) // rejects unless main exits 0
    let from = 0
    for (const pattern of readFileSync(new URL('./expected-output.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean)) {
      const match = new RegExp(pattern, 'm').exec(stdout.slice(from))
      expect(match, `expected /${pattern}/ in:\n${stdout}`).not.toBeNull()
      from += match!.index + match![0].length
    }
    expect(await leftovers(run)).toEqual({ schemas: [], exchange: false, queue: false })
  }, 120_000)

  it('applies each committed allocation exactly once, with its correlation id, across a consumer crash', async (ctx) => {
    if (!(await servicesUp())) return ctx.skip()
    const system = new System(runNames(newRun()))
    let passed = false
    try {
      // The consumer first this time: its queue exists before anything is published.
      const first = await system.startConsumer({ crashAfterCommit: 'o-1' })
      await system.startProducer()
      expect((await system.post('/batches', { ref: 'b-lamp', sku: 'LAMP', qty: 4 })).status).toBe(
        201,
      )
      expect((await system.post('/batches', { ref: 'b-desk', sku: 'DESK', qty: 2 })).status).toBe(
        201,
      )
      const sent = new Map<string, number>() // order id → HTTP status
      const allocate = async (orderId: string, sku: string): Promise<void> => {
        const { status } = await system.post(
          '/allocations',
          { orderId, sku, qty: 1 },
          `corr-${orderId}`,
        )
        sent.set(orderId, status)
      }
      await allocate('o-1', 'LAMP') // committed for sure: the consumer crashes after applying it
      // Then eight at once on two products with five units left (3 LAMP, 2 DESK): some conflict
      // and run again (ConcurrencyError → retry()), three run out of stock (409, rolled back).
      await Promise.all(
        ['LAMP', 'DESK'].flatMap((sku) =>
          [2, 3, 4, 5].map((n) => allocate(`o-${sku.toLowerCase()}-${n}`, sku)),
        ),
      )
      const committed = [...sent].filter(([, status]) => status === 201).map(([id]) => id)
      expect([...sent.values()].every((status) => status === 201 || status === 409)).toBe(true)
      expect(committed).toHaveLength(6) // every unit, one order line each

      expect(await first.exited).toMatchObject({ signal: 'SIGKILL' })
      const second = await system.startConsumer()
      await system.until('every committed allocation in the read model', async () => {
        const orders = new Set((await system.readModel()).map((r) => r.orderId))
        return committed.every((id) => orders.has(id))
      })
      // o-1 was committed, then delivered again after the crash: the inbox skips it.
      const [again] = await second.waitFor(/^delivery 2 of Allocated o-1 .*/)
      expect(again).toBe(
        'delivery 2 of Allocated o-1 (correlation corr-o-1): skipped, the inbox already has it',
      )
      await new Promise((resolve) => setTimeout(resolve, 300)) // room for a wrong extra delivery

      const outbox = await system.outboxRows()
      expect(outbox.map((r) => r.state)).toEqual(committed.map(() => 'published'))
      const rows = await system.readModel()
      // Exactly once: one row per committed allocation (the table has no unique constraint).
      expect(rows.map((r) => r.orderId).sort()).toEqual([...committed].sort())
      expect(rows.map((r) => r.messageId).sort()).toEqual(outbox.map((r) => r.id).sort())
      for (const row of rows) {
        expect(row.correlationId).toBe(`corr-${row.orderId}`) // HTTP header → outbox → consumer
        expect(row.causationId).toMatch(/^[0-9a-f-]{36}$/) // the Allocate command's id
        expect(row.causationId).not.toBe(row.messageId)
      }
      const inbox = await system.inbox()
      expect(inbox.map((r) => r.consumer)).toEqual(committed.map(() => 'reporting/read-model'))
      expect(inbox.map((r) => r.messageId).sort()).toEqual(outbox.map((r) => r.id).sort())
      expect(second.lines.filter((line) => line.includes(': applied'))).toHaveLength(
        committed.length - 1,
      )
      expect(await system.deadLetters()).toEqual([])
      expect(await system.stop()).toEqual({
        reporting: { code: 0, signal: null },
        allocation: { code: 0, signal: null },
      })
      passed = true
    } finally {
      await system.close({ remove: passed })
      if (!passed) console.error(`kept run ${system.names.run} for debugging`)
    }
  }, 120_000)
})
