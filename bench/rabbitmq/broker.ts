/**
 * The broker side of the RabbitMQ benchmark: one namespace per run (a topic exchange of its own, so
 * no queue of another run or test is bound to it), the topologies declared in it (deleted at the
 * end), and the bare amqplib publisher: a confirm channel with a window of confirms in flight. It
 * is the baseline of measurement 1 and fills the queue of measurement 2.
 */
import { randomBytes } from 'node:crypto'
import { type ChannelModel, type ConfirmChannel, connect, type Options } from 'amqplib'
import { KEY_HEADER, type RabbitMqTopology } from 'switchyard-bus/rabbitmq'

/** `RabbitMqTransport`'s default `contentType`, so both sides send the same properties. */
export const CONTENT_TYPE = 'application/cloudevents+json'

/** One message as the bare publisher sends it. */
export interface Outgoing {
  readonly content: Buffer
  readonly options: Options.Publish
}

/**
 * The properties the transport sets on every publish (rabbitmq-messages.ts): message id, the key
 * header, content type, timestamp, persistent (delivery mode 2) and mandatory.
 */
export function outgoing(id: string, key: string | undefined, body: Uint8Array): Outgoing {
  return {
    content: Buffer.from(body.buffer, body.byteOffset, body.byteLength),
    options: {
      messageId: id,
      headers: key === undefined ? {} : { [KEY_HEADER]: key },
      contentType: CONTENT_TYPE,
      persistent: true,
      mandatory: true,
      timestamp: Math.floor(Date.now() / 1000),
    },
  }
}

/**
 * Publishes `messages` in order on a confirm channel, at most `window` of them unconfirmed at any
 * time (RabbitMQ confirms several at once with `multiple`; amqplib calls each callback). Waits for
 * `'drain'` when amqplib's write buffer is full. Resolves once every message is confirmed; rejects
 * on a `basic.nack`, a returned (unroutable) message or the channel closing.
 */
export function publishWindowed(
  channel: ConfirmChannel,
  exchange: string,
  routingKey: string,
  messages: readonly Outgoing[],
  window: number,
): Promise<void> {
  if (messages.length === 0) return Promise.resolve()
  return new Promise<void>((resolve, reject) => {
    let sent = 0
    let confirmed = 0
    let blocked = false
    let finished = false
    const finish = (error?: Error): void => {
      if (finished) return
      finished = true
      channel.removeListener('drain', onDrain)
      channel.removeListener('close', onClose)
      channel.removeListener('return', onReturn)
      if (error === undefined) resolve()
      else reject(error)
    }
    const onDrain = (): void => {
      blocked = false
      pump()
    }
    const onClose = (): void => finish(new Error('the channel closed before every confirm came'))
    const onReturn = (): void => finish(new Error(`a message to "${routingKey}" was unroutable`))
    const onConfirm = (error: unknown): void => {
      if (error !== null && error !== undefined) return finish(new Error('RabbitMQ nacked'))
      if (++confirmed === messages.length) finish()
      else pump()
    }
    function pump(): void {
      while (!blocked && !finished && sent < messages.length && sent - confirmed < window) {
        const { content, options } = messages[sent++]!
        if (!channel.publish(exchange, routingKey, content, options, onConfirm)) blocked = true
      }
    }
    channel.on('drain', onDrain)
    channel.on('close', onClose)
    channel.on('return', onReturn)
    pump()
  })
}

/** The broker of one run: its namespace, an admin connection, and what to delete at the end. */
export interface Broker {
  /** The AMQP URL (credentials included: never printed). */
  readonly url: string
  /** The topic exchange's name and the prefix of every queue of this run. */
  readonly namespace: string
  /** RabbitMQ's version, from the connection's server properties. */
  readonly version: string
  /** Opens a connection of its own (each side of a measurement has one). */
  connect(): Promise<ChannelModel>
  /** Messages ready in a queue (not counting delivered, unacknowledged ones). */
  ready(queue: string): Promise<number>
  purge(queue: string): Promise<void>
  /** Remembers a declared topology; `remove()` deletes its queues and exchanges. */
  track(topology: RabbitMqTopology): void
  /** Deletes every tracked queue and exchange, then closes the admin connection. */
  remove(): Promise<void>
}

export async function openBroker(url: string): Promise<Broker> {
  const admin = await connect(url)
  const channel = await admin.createChannel()
  const tracked: RabbitMqTopology[] = []
  const version = admin.connection.serverProperties.version
  return {
    url,
    namespace: `bench-rmq-${randomBytes(4).toString('hex')}`,
    version: typeof version === 'string' ? version : 'unknown',
    connect: () => connect(url),
    ready: async (queue) => (await channel.checkQueue(queue)).messageCount,
    purge: async (queue) => {
      await channel.purgeQueue(queue)
    },
    track: (topology) => void tracked.push(topology),
    remove: async () => {
      try {
        const exchanges = new Set<string>()
        for (const { declarations } of tracked) {
          for (const d of declarations) {
            if (d.kind === 'queue') await channel.deleteQueue(d.name)
            else if (d.kind === 'exchange') exchanges.add(d.name)
          }
        }
        for (const name of exchanges) await channel.deleteExchange(name)
      } finally {
        await admin.close()
      }
    },
  }
}
