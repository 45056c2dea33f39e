import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isCommitSql, TcpProxy, type TcpProxyOptions } from '../helpers/tcp-proxy.js'

/** An echo server that also records what each of its connections received and whether it closed. */
interface Echo {
  readonly server: Server
  readonly port: number
  readonly sockets: { socket: Socket; received: Buffer[]; closed: boolean }[]
}

let echo: Echo
let proxy: TcpProxy | undefined
const clients: Socket[] = []

beforeEach(async () => {
  const sockets: Echo['sockets'] = []
  const server = createServer((socket) => {
    const entry = { socket, received: [] as Buffer[], closed: false }
    sockets.push(entry)
    socket.on('error', () => undefined)
    socket.on('close', () => (entry.closed = true))
    socket.on('data', (chunk) => {
      entry.received.push(chunk)
      socket.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  echo = { server, port: (server.address() as { port: number }).port, sockets }
})

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy()
  await proxy?.close()
  proxy = undefined
  for (const { socket } of echo.sockets) socket.destroy()
  await new Promise<void>((resolve) => echo.server.close(() => resolve()))
})

const start = async (options: Partial<TcpProxyOptions> = {}): Promise<TcpProxy> =>
  (proxy = await TcpProxy.start({ upstream: `127.0.0.1:${echo.port}`, ...options }))

/** A client socket that collects what it receives and how it ended. */
interface Client {
  readonly socket: Socket
  readonly received: () => Buffer
  readonly ended: Promise<{ error: string | undefined }>
}
const open = async (port: number): Promise<Client> => {
  const socket = connect({ host: '127.0.0.1', port })
  clients.push(socket)
  const chunks: Buffer[] = []
  let error: string | undefined
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message))
  const ended = new Promise<{ error: string | undefined }>((resolve) =>
    socket.on('close', () => resolve({ error })),
  )
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  return { socket, received: () => Buffer.concat(chunks), ended }
}
const until = async (check: () => boolean, ms = 2000): Promise<void> => {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const roundTrip = async (client: Client, data: string | Buffer): Promise<void> => {
  const before = client.received().length
  client.socket.write(data)
  await until(() => client.received().length >= before + Buffer.byteLength(data))
}

// Wire formats, just enough for the framers.
const pgStartup = (): Buffer => {
  const body = Buffer.from('user\0postgres\0database\0test\0\0')
  const head = Buffer.alloc(8)
  head.writeInt32BE(8 + body.length, 0)
  head.writeInt32BE(196608, 4) // protocol 3.0
  return Buffer.concat([head, body])
}
const pgMessage = (type: string, body: Buffer): Buffer => {
  const head = Buffer.alloc(5)
  head.write(type, 0, 'latin1')
  head.writeInt32BE(4 + body.length, 1)
  return Buffer.concat([head, body])
}
const pgQuery = (sql: string): Buffer => pgMessage('Q', Buffer.from(`${sql}\0`))
const pgParse = (sql: string): Buffer =>
  pgMessage('P', Buffer.concat([Buffer.from(`\0${sql}\0`), Buffer.alloc(2)]))
const pgSync = (): Buffer => pgMessage('S', Buffer.alloc(0))
const mysqlPacket = (sequence: number, payload: Buffer): Buffer => {
  const head = Buffer.alloc(4)
  head.writeUIntLE(payload.length, 0, 3)
  head.writeUInt8(sequence, 3)
  return Buffer.concat([head, payload])
}
const mysqlQuery = (sql: string): Buffer =>
  mysqlPacket(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql)]))
const upstreamGot = (index = 0): Buffer => Buffer.concat(echo.sockets[index]?.received ?? [])

describe('TcpProxy', () => {
  it('forwards both ways and counts connections and bytes', async () => {
    const p = await start()
    const client = await open(p.port)
    await roundTrip(client, 'hello')
    expect(client.received().toString()).toBe('hello')
    expect(p.stats()).toMatchObject({
      accepted: 1,
      active: 1,
      bytesFromClient: 5,
      bytesFromUpstream: 5,
    })
    expect(p.url('postgres://u:secret@db.example:5432/test?x=1')).toBe(
      `postgres://u:secret@127.0.0.1:${p.port}/test?x=1`,
    )
  })

  it('cut() resets every live connection on both sides, and new connections still work', async () => {
    const p = await start()
    const a = await open(p.port)
    const b = await open(p.port)
    await roundTrip(a, 'a')
    await roundTrip(b, 'b')
    expect(p.cut()).toBe(2)
    expect((await a.ended).error).toBe('ECONNRESET')
    expect((await b.ended).error).toBe('ECONNRESET')
    await until(() => echo.sockets.every((s) => s.closed))
    const c = await open(p.port)
    await roundTrip(c, 'again')
    expect(p.stats()).toMatchObject({ cuts: 2, active: 1 })
  })

  it('down() refuses new connections but keeps live ones; up() accepts again on the same port', async () => {
    const p = await start()
    const port = p.port
    const live = await open(port)
    p.down()
    await expect(open(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    await roundTrip(live, 'still here')
    await p.up()
    expect(p.port).toBe(port)
    await roundTrip(await open(port), 'back')
  })

  it('blackhole() keeps clients silently open while the server side goes; heal() only helps new connections', async () => {
    const p = await start()
    const old = await open(p.port)
    await roundTrip(old, 'before')
    p.blackhole()
    await until(() => echo.sockets[0]!.closed) // the server saw the client go
    old.socket.write('into the void')
    const during = await open(p.port) // accepted, but never reaches the server
    during.socket.write('nobody hears this')
    await pause(150)
    expect(old.received().toString()).toBe('before')
    expect(during.received().length).toBe(0)
    expect(old.socket.destroyed || during.socket.destroyed).toBe(false) // no FIN, no RST
    expect(echo.sockets).toHaveLength(1)
    expect(p.stats()).toMatchObject({ active: 2, silent: 2 })
    p.heal()
    const after = await open(p.port)
    await roundTrip(after, 'healed')
    old.socket.write('still nothing')
    await pause(100)
    expect(old.received().toString()).toBe('before')
    expect(old.socket.destroyed).toBe(false)
  })

  it('latency(ms, jitter) delays each direction and keeps the byte order', async () => {
    const p = await start()
    const client = await open(p.port)
    p.latency(60, 0)
    const started = Date.now()
    await roundTrip(client, 'slow')
    expect(Date.now() - started).toBeGreaterThanOrEqual(110) // 60 ms each way, minus timer slack
    p.latency(20, 20)
    const sent = Array.from({ length: 50 }, (_, i) => `<${i}>`)
    for (const part of sent) client.socket.write(part)
    await until(() => client.received().length >= Buffer.byteLength(`slow${sent.join('')}`))
    expect(client.received().toString()).toBe(`slow${sent.join('')}`)
    p.latency(0)
    await roundTrip(client, 'fast')
  })

  it('close() closes every connection and the listener', async () => {
    const p = await start()
    const client = await open(p.port)
    await p.close()
    proxy = undefined
    await client.ended
    await expect(open(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' })
  })
})

describe('TcpProxy commit faults', () => {
  it('PostgreSQL simple query: forwards the COMMIT, resets the client before the reply, swallows the reply', async () => {
    const p = await start({ protocol: 'postgres' })
    const client = await open(p.port)
    const disarm = p.commitFaults()
    client.socket.write(pgStartup())
    const begin = pgQuery('BEGIN')
    // Split across writes, byte by byte for the first message: the framer reassembles.
    for (const byte of begin) client.socket.write(Buffer.from([byte]))
    await until(() => client.received().length === pgStartup().length + begin.length)
    const commit = pgQuery('INSERT INTO t VALUES (1); COMMIT')
    client.socket.write(commit)
    expect((await client.ended).error).toBe('ECONNRESET')
    await until(() => upstreamGot().includes(commit)) // the server got the COMMIT
    expect(client.received().length).toBe(pgStartup().length + begin.length) // its reply never came
    await until(() => echo.sockets[0]!.closed) // the proxy hung up once the reply arrived
    expect(p.stats()).toMatchObject({ commitAcksLost: 1 })
    disarm()
    const next = await open(p.port)
    await roundTrip(next, Buffer.concat([pgStartup(), pgQuery('COMMIT')])) // disarmed: it flows
  })

  it('PostgreSQL extended protocol: a Parse of COMMIT is acted on at its Sync', async () => {
    const p = await start({ protocol: 'postgres' })
    const client = await open(p.port)
    p.commitFaults()
    client.socket.write(pgStartup())
    const parse = pgParse('COMMIT')
    const bind = pgMessage('B', Buffer.from('\0\0\0\0\0\0\0\0'))
    const execute = pgMessage('E', Buffer.from('\0\0\0\0\0'))
    client.socket.write(Buffer.concat([parse, bind, execute]))
    await until(
      () =>
        upstreamGot().length === pgStartup().length + parse.length + bind.length + execute.length,
    )
    expect(client.socket.destroyed).toBe(false)
    client.socket.write(pgSync())
    expect((await client.ended).error).toBe('ECONNRESET')
    await until(() => upstreamGot().subarray(-5).equals(pgSync()))
  })

  it('lose: "request" drops the COMMIT and resets both sides; other statements and END-less SQL pass', async () => {
    const p = await start({ protocol: 'postgres' })
    p.commitFaults({ lose: 'request' })
    const client = await open(p.port)
    client.socket.write(pgStartup())
    const select = pgQuery("SELECT 'committed' AS word, CASE WHEN true THEN 1 END")
    client.socket.write(select)
    await until(() => client.received().length === pgStartup().length + select.length)
    client.socket.write(pgQuery('COMMIT'))
    expect((await client.ended).error).toBe('ECONNRESET')
    await until(() => echo.sockets[0]!.closed)
    expect(upstreamGot().includes(pgQuery('COMMIT'))).toBe(false)
    expect(p.stats()).toMatchObject({ commitsDropped: 1, commitAcksLost: 0 })
  })

  it('MySQL COM_QUERY: forwards the COMMIT and resets the client; handshake packets and other commands pass', async () => {
    const p = await start({ protocol: 'mysql' })
    p.commitFaults({ times: 1 })
    const client = await open(p.port)
    const handshake = mysqlPacket(1, Buffer.from([0x03, 0, 0, 0, ...Buffer.from('COMMIT')])) // seq 1: not a command
    const insert = mysqlQuery('INSERT INTO t VALUES (1)')
    client.socket.write(Buffer.concat([handshake, insert]))
    await until(() => client.received().length === handshake.length + insert.length)
    const commit = mysqlQuery('COMMIT')
    client.socket.write(commit)
    expect((await client.ended).error).toBe('ECONNRESET')
    await until(() => upstreamGot().subarray(-commit.length).equals(commit))
    expect(client.received().length).toBe(handshake.length + insert.length)
    // times: 1 — the next COMMIT passes.
    const next = await open(p.port)
    await roundTrip(next, mysqlQuery('COMMIT'))
    expect(p.stats().commitAcksLost).toBe(1)
  })

  it('probability and connection filters choose which COMMITs are hit', async () => {
    let roll = 0
    const rolls = [0.9, 0.1]
    const p = await start({ protocol: 'mysql', random: () => rolls[roll++ % 2]! })
    p.commitFaults({ probability: 0.5, connections: (id) => id !== 1 })
    const spared = await open(p.port) // connection 1: filtered out
    await roundTrip(spared, mysqlQuery('COMMIT'))
    const lucky = await open(p.port) // roll 0.9 ≥ 0.5: passes
    await roundTrip(lucky, mysqlQuery('COMMIT'))
    const hit = await open(p.port) // roll 0.1 < 0.5: hit
    hit.socket.write(mysqlQuery('COMMIT'))
    expect((await hit.ended).error).toBe('ECONNRESET')
  })

  it('recognises COMMIT statements', () => {
    expect(isCommitSql('COMMIT')).toBe(true)
    expect(isCommitSql('  commit work;')).toBe(true)
    expect(isCommitSql('INSERT INTO t VALUES (1); COMMIT')).toBe(true)
    expect(isCommitSql('END')).toBe(true)
    expect(isCommitSql('\u0000\u0001COMMIT')).toBe(true) // MySQL 8 query-attribute prefix
    expect(isCommitSql('SELECT CASE WHEN a THEN 1 END FROM t')).toBe(false)
    expect(isCommitSql("UPDATE t SET note = 'will commit later'")).toBe(false)
    expect(isCommitSql('BEGIN')).toBe(false)
  })
})
