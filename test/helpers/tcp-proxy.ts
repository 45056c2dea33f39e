/**
 * A small fault-injecting TCP proxy for tests (RELIABILITY.md §2.1–2.2): point a driver at
 * `proxy.port` (or `proxy.url(serviceUrl)`) instead of the service, then break the connection
 * from the test. Shared services are never touched.
 *
 * Controls (all take effect at once):
 * - `cut()` resets every live connection (RST to both sides).
 * - `down()` closes the listener, so new connections are refused (ECONNREFUSED); live ones stay.
 *   `up()` listens again on the same port.
 * - `blackhole()` is pg-boss's half-open proxy: every live connection's upstream side is closed
 *   (the server sees the client go away) while the client's socket is kept open and silent: what
 *   the client sends is swallowed, nothing ever comes back, no FIN, no RST. Connections accepted
 *   while blackholed are held silent the same way and never reach the server. `heal()` lets new
 *   connections through again; the ones already silenced stay silent until the client closes them
 *   (as after a real half-open failure: only a client-side timeout gets out of it).
 * - `latency(ms, jitterMs)` delays every chunk in both directions by `ms ± jitterMs` (uniform),
 *   keeping the byte order of each direction. `latency(0)` turns it off.
 * - `onClientMessage(hook)` sees each client→server message, framed by `protocol` (PostgreSQL v3
 *   messages, MySQL packets, or raw chunks), and may forward it, forward it then cut the client
 *   before any reply, or drop it and cut. `commitFaults()` is the built-in hook for commit-ack loss:
 *   a PostgreSQL simple `Query` containing COMMIT (or END), or an extended-protocol `Parse` of one
 *   (acted on at the following `Sync`, once the server has it all), or a MySQL `COM_QUERY`
 *   containing COMMIT, is forwarded, the client socket is reset at once, and the server's reply is
 *   swallowed (the upstream socket is closed when it arrives). With `lose: 'request'` the COMMIT is
 *   never forwarded instead (the server rolls back).
 *
 * Limits: TLS is not parsed (after an SSLRequest the PostgreSQL framer passes bytes through), no
 * backpressure (fine for test volumes), one message hook at a time.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

/** How client→server bytes are framed for `onClientMessage`. */
export type ProxyProtocol = 'raw' | 'postgres' | 'mysql'

/** Options of {@link TcpProxy.start}. */
export interface TcpProxyOptions {
  /** Where to forward: a URL (`postgres://u:p@host:5432/db`), `host:port`, or `{ host, port }`. */
  readonly upstream: string | { readonly host: string; readonly port: number }
  /** Framing of client messages for hooks. Default `'raw'` (each chunk is one message). */
  readonly protocol?: ProxyProtocol
  /** Address to listen on. Default `127.0.0.1` (the port is ephemeral). */
  readonly host?: string
  /** Random source for jitter and fault probability (seed it for reproducible runs). */
  readonly random?: () => number
}

/** One client→server message as the hook sees it. */
export interface ClientMessage {
  /** The connection's number (1, 2, …, in accept order). */
  readonly connection: number
  /**
   * `'chunk'` (raw); PostgreSQL: the type byte (`'Q'`, `'P'`, `'B'`, `'E'`, `'S'`, `'X'`, …) or
   * `'startup'` / `'ssl-request'` / `'cancel'`; MySQL: `'COM_QUERY'`, `'COM_STMT_PREPARE'`, … for a
   * command packet (sequence id 0), `'packet'` for handshake and continuation packets.
   */
  readonly kind: string
  readonly bytes: Buffer
  /** The SQL of a PostgreSQL Query or Parse, or of a MySQL COM_QUERY / COM_STMT_PREPARE. */
  readonly sql?: string
}

/**
 * What to do with a client message: pass it on; pass it on, then reset the client at once and
 * swallow whatever the server answers; or drop it and reset both sides.
 */
export type MessageAction = 'forward' | 'forward-then-cut' | 'drop-and-cut'

/** A protocol-aware fault. Returning nothing forwards. */
export type MessageHook = (message: ClientMessage) => MessageAction | undefined | void

/** Options of {@link TcpProxy.commitFaults}. */
export interface CommitFaultOptions {
  /**
   * `'ack'` (default): the COMMIT reaches the server, which commits, and its reply is lost.
   * `'request'`: the COMMIT never reaches the server, which rolls the transaction back.
   */
  readonly lose?: 'ack' | 'request'
  /** Chance that a given COMMIT is hit. Default 1. */
  readonly probability?: number
  /** Most COMMITs to hit. Default unlimited (until disarmed). */
  readonly times?: number
  /** Only COMMITs on these connections are hit (all when omitted). */
  readonly connections?: (connection: number) => boolean
}

/** Counters since start. */
export interface ProxyStats {
  /** Connections accepted in total. */
  readonly accepted: number
  /** Connections open now (silent ones included). */
  readonly active: number
  /** Connections open now and silenced by `blackhole()`. */
  readonly silent: number
  /** Connections reset by `cut()` and by message hooks. */
  readonly cuts: number
  readonly bytesFromClient: number
  readonly bytesFromUpstream: number
  /** COMMITs forwarded whose reply was swallowed. */
  readonly commitAcksLost: number
  /** COMMITs dropped before the server saw them. */
  readonly commitsDropped: number
}

interface Frame {
  readonly kind: string
  readonly bytes: Buffer
  readonly sql?: string
}

interface Framer {
  push(chunk: Buffer): Frame[]
}

/** Delays writes by a variable amount while keeping their order. */
class DelayQueue {
  #items: { due: number; chunk: Buffer | undefined; after: (() => void) | undefined }[] = []
  #timer: NodeJS.Timeout | undefined

  constructor(
    private readonly write: (chunk: Buffer) => void,
    private readonly delay: () => number,
  ) {}

  /** Queues a chunk (or, with `chunk` undefined, only the `after` callback) behind the others. */
  push(chunk: Buffer | undefined, after?: () => void): void {
    const ms = this.delay()
    if (ms <= 0 && this.#items.length === 0) {
      if (chunk !== undefined) this.write(chunk)
      after?.()
      return
    }
    const last = this.#items.at(-1)?.due ?? 0
    this.#items.push({ due: Math.max(last, Date.now() + ms), chunk, after })
    this.#arm()
  }

  clear(): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#items = []
  }

  #arm(): void {
    const head = this.#items[0]
    if (this.#timer !== undefined || head === undefined) return
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        const now = Date.now()
        while (this.#items.length > 0 && this.#items[0]!.due <= now) {
          const item = this.#items.shift()!
          if (item.chunk !== undefined) this.write(item.chunk)
          item.after?.()
        }
        this.#arm()
      },
      Math.max(0, head.due - Date.now()),
    )
  }
}

const rawFramer = (): Framer => ({ push: (chunk) => [{ kind: 'chunk', bytes: chunk }] })

const cString = (buffer: Buffer, from: number): [string, number] => {
  const end = buffer.indexOf(0, from)
  const stop = end < 0 ? buffer.length : end
  return [buffer.toString('utf8', from, stop), stop + 1]
}

/** PostgreSQL v3 frontend messages: untyped startup packets first, then `type int32 body`. */
class PostgresFramer implements Framer {
  #buffer: Buffer = Buffer.alloc(0)
  #startup = true
  #passthrough = false

  push(chunk: Buffer): Frame[] {
    if (this.#passthrough) return [{ kind: 'chunk', bytes: chunk }]
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const frames: Frame[] = []
    for (;;) {
      const b = this.#buffer
      if (this.#startup) {
        if (b.length < 8) break
        const length = b.readInt32BE(0)
        if (length < 8 || length > 100_000) return this.#giveUp(frames)
        if (b.length < length) break
        const code = b.readInt32BE(4)
        const kind =
          code === 80877103
            ? 'ssl-request'
            : code === 80877104
              ? 'gssenc-request'
              : code === 80877102
                ? 'cancel'
                : 'startup'
        frames.push({ kind, bytes: b.subarray(0, length) })
        this.#buffer = b.subarray(length)
        if (kind === 'ssl-request' || kind === 'gssenc-request') return this.#giveUp(frames)
        if (kind === 'startup') this.#startup = false
        continue
      }
      if (b.length < 5) break
      const length = b.readInt32BE(1)
      if (length < 4) return this.#giveUp(frames)
      if (b.length < length + 1) break
      const bytes = b.subarray(0, length + 1)
      const kind = String.fromCharCode(bytes[0]!)
      let sql: string | undefined
      if (kind === 'Q') sql = cString(bytes, 5)[0]
      else if (kind === 'P') sql = cString(bytes, cString(bytes, 5)[1])[0]
      frames.push(sql === undefined ? { kind, bytes } : { kind, bytes, sql })
      this.#buffer = b.subarray(length + 1)
    }
    return frames
  }

  /** Unknown framing (TLS, garbage): pass the rest through unparsed. */
  #giveUp(frames: Frame[]): Frame[] {
    this.#passthrough = true
    if (this.#buffer.length > 0) frames.push({ kind: 'chunk', bytes: this.#buffer })
    this.#buffer = Buffer.alloc(0)
    return frames
  }
}

const MYSQL_COMMANDS: Readonly<Record<number, string>> = {
  0x01: 'COM_QUIT',
  0x02: 'COM_INIT_DB',
  0x03: 'COM_QUERY',
  0x0e: 'COM_PING',
  0x11: 'COM_CHANGE_USER',
  0x16: 'COM_STMT_PREPARE',
  0x17: 'COM_STMT_EXECUTE',
  0x19: 'COM_STMT_CLOSE',
  0x1a: 'COM_STMT_RESET',
  0x1f: 'COM_RESET_CONNECTION',
}

/** MySQL client packets: `int<3> length, int<1> sequence id, payload`; commands have sequence 0. */
class MysqlFramer implements Framer {
  #buffer: Buffer = Buffer.alloc(0)
  #continued = false

  push(chunk: Buffer): Frame[] {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk])
    const frames: Frame[] = []
    while (this.#buffer.length >= 4) {
      const b = this.#buffer
      const length = b.readUIntLE(0, 3)
      if (b.length < length + 4) break
      const bytes = b.subarray(0, length + 4)
      const command = bytes[4]
      let kind = 'packet'
      let sql: string | undefined
      if (bytes[3] === 0 && !this.#continued && command !== undefined) {
        kind = MYSQL_COMMANDS[command] ?? `COM_0x${command.toString(16).padStart(2, '0')}`
        if (command === 0x03 || command === 0x16) sql = bytes.toString('utf8', 5)
      }
      this.#continued = length === 0xffffff
      frames.push(sql === undefined ? { kind, bytes } : { kind, bytes, sql })
      this.#buffer = b.subarray(length + 4)
    }
    return frames
  }
}

/** Whether SQL text holds a COMMIT statement (`COMMIT`, `COMMIT WORK`, PostgreSQL's `END`). */
export function isCommitSql(sql: string): boolean {
  return sql.split(';').some((statement) => {
    let start = 0 // skip whitespace and control bytes (MySQL 8's query-attribute prefix)
    while (start < statement.length && statement.charCodeAt(start) <= 32) start++
    return /^(COMMIT|END)\b/i.test(statement.slice(start))
  })
}

class Link {
  upstream: Socket | undefined
  silent = false
  /** A COMMIT went up and the client was cut: what the server answers is swallowed. */
  swallowing = false
  /** An extended-protocol Parse of COMMIT was seen; act on the next Sync. */
  commitPending = false
  readonly toUpstream: DelayQueue
  readonly toClient: DelayQueue

  constructor(
    readonly id: number,
    readonly client: Socket,
    readonly framer: Framer,
    delay: () => number,
  ) {
    this.toUpstream = new DelayQueue((chunk) => this.upstream?.write(chunk), delay)
    this.toClient = new DelayQueue((chunk) => {
      if (!client.destroyed) client.write(chunk)
    }, delay)
  }
}

const reset = (socket: Socket | undefined): void => {
  if (socket === undefined || socket.destroyed) return
  try {
    socket.resetAndDestroy()
  } catch {
    socket.destroy()
  }
}

/** A fault-injecting TCP proxy; see the module comment. */
export class TcpProxy {
  readonly host: string
  #port = 0
  #server: Server
  readonly #upstream: { readonly host: string; readonly port: number }
  readonly #protocol: ProxyProtocol
  readonly #random: () => number
  readonly #links = new Set<Link>()
  /** Upstream sockets of cut clients, waiting for the server's reply to swallow. */
  readonly #orphans = new Set<Socket>()
  #nextId = 1
  #blackholed = false
  #listening = false
  #closed = false
  #latency = { ms: 0, jitter: 0 }
  #hook: MessageHook | undefined
  #stats = {
    accepted: 0,
    cuts: 0,
    bytesFromClient: 0,
    bytesFromUpstream: 0,
    commitAcksLost: 0,
    commitsDropped: 0,
  }

  private constructor(options: TcpProxyOptions) {
    this.host = options.host ?? '127.0.0.1'
    this.#upstream = parseUpstream(options.upstream)
    this.#protocol = options.protocol ?? 'raw'
    this.#random = options.random ?? Math.random
    this.#server = this.#createServer()
  }

  /** Starts a proxy on an ephemeral port. */
  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const proxy = new TcpProxy(options)
    await proxy.#listen(0)
    return proxy
  }

  /** The port clients connect to. */
  get port(): number {
    return this.#port
  }

  /** `url` with its host and port replaced by the proxy's (credentials, path and query kept). */
  url(url: string): string {
    const parsed = new URL(url)
    parsed.hostname = this.host
    parsed.port = String(this.#port)
    return parsed.toString()
  }

  /** Resets every live connection, both sides, now. Returns how many. */
  cut(): number {
    const links = [...this.#links]
    for (const link of links) this.#kill(link)
    this.#stats.cuts += links.length
    return links.length
  }

  /** Stops listening: new connections are refused until `up()`. Live connections are untouched. */
  down(): void {
    if (!this.#listening) return
    this.#listening = false
    this.#server.close()
  }

  /** Listens again, on the same port. */
  async up(): Promise<void> {
    if (this.#listening || this.#closed) return
    this.#server = this.#createServer()
    await this.#listen(this.#port)
  }

  /** Silences every live connection (half-open, pg-boss style) and holds new ones silent too. */
  blackhole(): void {
    this.#blackholed = true
    for (const link of this.#links) this.#silence(link)
  }

  /** New connections reach the server again; connections already silenced stay silent. */
  heal(): void {
    this.#blackholed = false
  }

  /** Delays every chunk, both directions, by `ms ± jitterMs`. `latency(0)` turns it off. */
  latency(ms: number, jitterMs = 0): void {
    this.#latency = { ms: Math.max(0, ms), jitter: Math.max(0, jitterMs) }
  }

  /** Sets (or with undefined removes) the protocol-aware hook for client messages. */
  onClientMessage(hook: MessageHook | undefined): void {
    this.#hook = hook
  }

  /**
   * Arms commit-ack loss (see the module comment) for PostgreSQL or MySQL framing; returns a
   * function that disarms it. Replaces any other message hook.
   */
  commitFaults(options: CommitFaultOptions = {}): () => void {
    if (this.#protocol === 'raw')
      throw new Error('commitFaults needs protocol "postgres" or "mysql"')
    const lose = options.lose ?? 'ack'
    const probability = options.probability ?? 1
    let left = options.times ?? Number.POSITIVE_INFINITY
    const hit = (connection: number): MessageAction => {
      if (left <= 0 || options.connections?.(connection) === false) return 'forward'
      if (this.#random() >= probability) return 'forward'
      left--
      if (lose === 'ack') {
        this.#stats.commitAcksLost++
        return 'forward-then-cut'
      }
      this.#stats.commitsDropped++
      return 'drop-and-cut'
    }
    const hook: MessageHook = (message) => {
      const link = this.#linkById(message.connection)
      if (this.#protocol === 'mysql')
        return message.kind === 'COM_QUERY' && isCommitSql(message.sql ?? '')
          ? hit(message.connection)
          : 'forward'
      if (message.kind === 'Q' && isCommitSql(message.sql ?? '')) return hit(message.connection)
      if (message.kind === 'P' && link !== undefined) {
        link.commitPending = isCommitSql(message.sql ?? '')
        return 'forward'
      }
      if (message.kind === 'S' && link?.commitPending === true) {
        link.commitPending = false
        return hit(message.connection)
      }
      return 'forward'
    }
    this.#hook = hook
    return () => {
      if (this.#hook === hook) this.#hook = undefined
    }
  }

  stats(): ProxyStats {
    let silent = 0
    for (const link of this.#links) if (link.silent) silent++
    return { ...this.#stats, active: this.#links.size, silent }
  }

  /** Closes the listener and every connection. */
  async close(): Promise<void> {
    this.#closed = true
    for (const link of [...this.#links]) this.#kill(link)
    for (const socket of this.#orphans) socket.destroy()
    this.#orphans.clear()
    if (!this.#listening) return
    this.#listening = false
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }

  #createServer(): Server {
    const server = createServer((client) => this.#accept(client))
    server.on('error', () => undefined)
    return server
  }

  async #listen(port: number): Promise<void> {
    const server = this.#server
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error)
      server.once('error', onError)
      server.listen(port, this.host, () => {
        server.off('error', onError)
        resolve()
      })
    })
    this.#port = (server.address() as { port: number }).port
    this.#listening = true
  }

  #delay(): number {
    const { ms, jitter } = this.#latency
    if (ms === 0 && jitter === 0) return 0
    return Math.max(0, ms + (this.#random() * 2 - 1) * jitter)
  }

  #linkById(id: number): Link | undefined {
    for (const link of this.#links) if (link.id === id) return link
    return undefined
  }

  #accept(client: Socket): void {
    this.#stats.accepted++
    client.setNoDelay(true)
    const framer =
      this.#protocol === 'postgres'
        ? new PostgresFramer()
        : this.#protocol === 'mysql'
          ? new MysqlFramer()
          : rawFramer()
    const link = new Link(this.#nextId++, client, framer, () => this.#delay())
    this.#links.add(link)
    client.on('error', () => undefined)
    client.on('close', () => {
      this.#links.delete(link)
      link.toClient.clear()
      const upstream = link.upstream
      if (link.swallowing && upstream !== undefined && !upstream.destroyed) {
        this.#orphans.add(upstream)
        upstream.once('close', () => this.#orphans.delete(upstream))
        return
      }
      link.toUpstream.clear()
      upstream?.destroy()
    })
    client.on('end', () => {
      if (link.silent || link.swallowing) return
      link.toUpstream.push(undefined, () => link.upstream?.end())
    })
    client.on('data', (chunk: Buffer) => this.#fromClient(link, chunk))
    if (this.#blackholed) {
      link.silent = true
      return
    }
    const upstream = connect({ host: this.#upstream.host, port: this.#upstream.port })
    link.upstream = upstream
    upstream.setNoDelay(true)
    upstream.on('error', () => undefined)
    upstream.on('data', (chunk: Buffer) => {
      if (link.swallowing) {
        upstream.destroy() // the reply to the COMMIT: lost
        return
      }
      if (link.silent) return
      this.#stats.bytesFromUpstream += chunk.length
      link.toClient.push(chunk)
    })
    upstream.on('end', () => {
      if (link.silent || link.swallowing) return
      link.toClient.push(undefined, () => client.end())
    })
    upstream.on('close', (hadError) => {
      if (link.silent || link.swallowing) return
      if (hadError) reset(client)
    })
  }

  #fromClient(link: Link, chunk: Buffer): void {
    if (link.silent || link.swallowing) return
    this.#stats.bytesFromClient += chunk.length
    const frames =
      this.#protocol === 'raw' && this.#hook === undefined ? null : link.framer.push(chunk)
    if (frames === null) {
      link.toUpstream.push(chunk)
      return
    }
    for (const frame of frames) {
      const action = this.#hook?.({ connection: link.id, ...frame }) ?? 'forward'
      if (action === 'forward') {
        link.toUpstream.push(frame.bytes)
        continue
      }
      this.#stats.cuts++
      if (action === 'drop-and-cut') {
        this.#kill(link)
        return
      }
      // forward-then-cut: the server gets the message; the client is reset before any reply.
      link.swallowing = true
      link.toClient.clear()
      link.toUpstream.push(frame.bytes, () => {
        reset(link.client)
        const upstream = link.upstream
        if (upstream !== undefined) setTimeout(() => upstream.destroy(), 5000).unref()
      })
      return
    }
  }

  #silence(link: Link): void {
    if (link.silent) return
    link.silent = true
    link.toUpstream.clear()
    link.toClient.clear()
    link.upstream?.destroy() // the server sees the client go; the client sees nothing
    link.upstream = undefined
  }

  #kill(link: Link): void {
    this.#links.delete(link)
    link.toUpstream.clear()
    link.toClient.clear()
    reset(link.client)
    reset(link.upstream)
  }
}

function parseUpstream(upstream: TcpProxyOptions['upstream']): {
  host: string
  port: number
} {
  if (typeof upstream !== 'string') return upstream
  if (upstream.includes('://')) {
    const url = new URL(upstream)
    const defaults: Record<string, number> = {
      'postgres:': 5432,
      'postgresql:': 5432,
      'mysql:': 3306,
      'mariadb:': 3306,
      'amqp:': 5672,
      'redis:': 6379,
      'nats:': 4222,
      'mqtt:': 1883,
    }
    const port = url.port === '' ? defaults[url.protocol] : Number(url.port)
    if (port === undefined) throw new Error(`No port in ${url.protocol} URL and no default for it`)
    return { host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1', port }
  }
  const at = upstream.lastIndexOf(':')
  return { host: upstream.slice(0, at), port: Number(upstream.slice(at + 1)) }
}
