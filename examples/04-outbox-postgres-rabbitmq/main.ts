/**
 * Run: npx tsx examples/04-outbox-postgres-rabbitmq/main.ts
 * Needs PostgreSQL and RabbitMQ (SWITCHYARD_PG_URL, SWITCHYARD_AMQP_URL; loopback by default).
 * Starts both services as child processes, drives them, then deletes everything the run made.
 */
import { randomBytes } from 'node:crypto'
import { runNames } from './config.js'
import { System } from './system.js'

const say = (line: string): void => console.log(line)

async function main(): Promise<void> {
  const names = runNames(process.env.EXAMPLE_RUN || randomBytes(4).toString('hex'))
  const system = new System(names, (line) => say(`  ${line}`))
  say(`run ${names.run}: schemas ${names.allocationSchema} and ${names.reportingSchema},`)
  say(`  RabbitMQ exchange ${names.namespace}`)
  try {
    say('1. start the allocation service: HTTP, PostgreSQL with its outbox, a relay to RabbitMQ')
    await system.startProducer()

    say('2. commands over HTTP, each allocation with a correlation id')
    const send = async (path: '/batches' | '/allocations', body: object, id?: string) => {
      const { status, body: answer } = await system.post(path, body, id)
      const outcome = answer.batchRef ?? answer.error
      const tail = `${id ? ` (${id})` : ''} → ${status}${outcome ? ` ${outcome}` : ''}`
      say(`  POST ${path} ${JSON.stringify(body)}${tail}`)
    }
    await send('/batches', { ref: 'batch-1', sku: 'LAMP', qty: 10 })
    await send('/batches', { ref: 'batch-2', sku: 'TABLE', qty: 5 })
    await send('/allocations', { orderId: 'order-1', sku: 'LAMP', qty: 4 }, 'req-1')
    await send('/allocations', { orderId: 'order-2', sku: 'TABLE', qty: 2 }, 'req-2')
    await send('/allocations', { orderId: 'order-3', sku: 'LAMP', qty: 5 }, 'req-3')
    await send('/allocations', { orderId: 'order-4', sku: 'LAMP', qty: 3 }, 'req-4') // 1 left
    const outbox = await system.outboxRows()
    const published = outbox.filter((r) => r.state === 'published').length
    say(`  outbox: ${outbox.length} Allocated rows, ${published} published: no consumer group`)
    say(`  exists yet, so RabbitMQ routes them nowhere; the transport refuses that (its default,`)
    say(`  unroutable: 'reject'), so they stay in the outbox and the relay tries again`)

    say('3. start the reporting service (Consumer, inbox, read model), set to crash once,')
    say('  right after it commits order-2 and before RabbitMQ has the ack')
    const first = await system.startConsumer({ crashAfterCommit: 'order-2' })
    const { signal } = await first.exited
    say(`4. the reporting service died (${signal}); start it again: RabbitMQ delivers order-2`)
    say('  again, and the inbox record, committed with the read-model row, makes it a no-op')
    const second = await system.startConsumer()
    await second.waitFor(/order-2 .*skipped/)
    const committed = ['order-1', 'order-2', 'order-3']
    await system.until('the read model to hold every committed allocation', async () => {
      const rows = await system.readModel()
      return committed.every((orderId) => rows.some((r) => r.orderId === orderId))
    })

    say('5. what each service holds now')
    for (const row of await system.outboxRows())
      say(`  allocation outbox: Allocated key ${row.key} #${row.keySeq}, ${row.state}`)
    const rows = await system.readModel()
    for (const orderId of [...committed, 'order-4']) {
      const applied = rows.filter((r) => r.orderId === orderId)
      const row = applied[0]
      say(
        row === undefined
          ? `  read model: ${orderId} → nothing (rolled back: never stored, never published)`
          : `  read model: ${orderId} → ${row.batchRef}, ${row.qty} × ${row.sku}, correlation ${row.correlationId}, applied ${applied.length} time(s)`,
      )
    }
    const inbox = await system.inbox()
    say(`  inbox: ${inbox.length} message ids recorded for "${inbox[0]?.consumer}"`)
    say(`  dead letters of group ${names.group}: ${(await system.deadLetters()).length}`)

    say('6. stop both services (SIGTERM), then delete the schemas, the exchange and the queues')
    const exits = await system.stop()
    say(`  exit codes: allocation ${exits.allocation?.code}, reporting ${exits.reporting?.code}`)
    if (Object.values(exits).some((exit) => exit.code !== 0))
      throw new Error('a service did not stop cleanly')
  } finally {
    await system.close({ remove: true })
  }
  say('demo finished')
}

main().catch((error: unknown) => {
  console.error(error)
  process.exitCode = 1
})
