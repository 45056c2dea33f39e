import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'
import { decodeEnvelope, defineEvent, InMemoryTransport, OutboxRelay } from 'switchyard-bus'
import { OutboxWriter } from 'switchyard-bus'
import { fromMysql2, MysqlInboxStore, MysqlOutboxStore } from 'switchyard-bus/mysql'

const Placed = defineEvent<{ id: string }>('OrderPlaced', { topic: 'orders', key: (p) => p.id })
const pool = mysql.createPool({
  uri: process.env.SWITCHYARD_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
})
const database = `docs_${randomBytes(5).toString('hex')}` // the default is the pool's database
const store = new MysqlOutboxStore({ pool, database })
const inbox = new MysqlInboxStore({ pool, database })
const writer = new OutboxWriter({ store, events: [Placed], source: '/orders' })

async function main(): Promise<void> {
  await pool.query(`CREATE DATABASE ${database}`) // any collation: ids and keys are binary
  const connection = await pool.getConnection()
  try {
    await store.ensureSchema()
    await inbox.ensureSchema()
    await pool.query(`CREATE TABLE ${database}.orders (id VARCHAR(64) PRIMARY KEY)`)
    const event = Placed({ id: 'o1' })
    await connection.beginTransaction()
    await connection.query(`INSERT INTO ${database}.orders VALUES ('o1')`) // your change…
    await store.append(fromMysql2(connection), writer.recordsFor([event])) // …and its event
    await connection.commit() // on an error: connection.rollback(), MySQL will not do it for you

    const transport = new InMemoryTransport()
    const relay = new OutboxRelay({ store, publisher: transport }) // polls: no LISTEN on MySQL
    assert.equal(await relay.runOnce(), 1) // claimed, published, marked published
    const [sent] = transport.published('orders')
    const { message, key } = decodeEnvelope(sent!.body)
    assert.deepEqual([message.id, message.payload, key], [event.id, { id: 'o1' }, 'o1'])

    for (const firstTime of [true, false]) {
      await connection.beginTransaction() // the consumer's transaction, holding its effects
      assert.equal(await inbox.tryRecord(fromMysql2(connection), 'billing', message.id), firstTime)
      await connection.commit() // a redelivery finds the record: skip its effects
    }
  } finally {
    connection.destroy() // closes the connection, rolling back anything left open
    await pool.query(`DROP DATABASE IF EXISTS ${database}`)
    await pool.end()
  }
}
void main()
