/**
 * Shared pieces of the RabbitMQ integration tests: the broker URL (from the global setup), unique
 * `sy-<id>` names, transports that connect directly or through a `TcpProxy`, a raw amqplib
 * connection for looking behind the transport, and the removal of everything a test declared.
 */
import { connect, type ChannelModel } from 'amqplib'
import { inject } from 'vitest'
import type { DeadLetter } from '../../../src/index.js'
import {
  RabbitMqTransport,
  type RabbitMqTopology,
  type RabbitMqTransportOptions,
} from '../../../src/rabbitmq/index.js'

/** The broker's URL, or null when it is not reachable (the tests skip; under CI the run fails). */
export const amqpUrl: string | null = inject('services').rabbitmq ?? null

/** A unique name prefix, `sy-<random>`. */
export const uniqueId = (): string => `sy-${Math.random().toString(36).slice(2, 10)}`

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Polls `check` until it holds, failing after `ms` (liveness only). */
export async function until(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}

/** Reads a group's dead letters until there are at least `count` (liveness only). */
export async function deadLettersEventually(
  transport: RabbitMqTransport,
  topic: string,
  group: string,
  count = 1,
  ms = 15_000,
): Promise<DeadLetter[]> {
  const deadline = Date.now() + ms
  for (;;) {
    const letters = await transport.deadLetters(topic, group)
    if (letters.length >= count) return letters
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${ms} ms waiting for ${count} dead letter(s)`)
    await sleep(20)
  }
}

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)
export const text = (body: Uint8Array): string => new TextDecoder().decode(body)

/**
 * A namespace for one test: transports made through it use it and are closed at `cleanup()`, which
 * also deletes every queue and exchange of the topologies the test touched (delay queues of other
 * delays expire on their own through `x-expires`).
 */
export class TestBroker {
  readonly id = uniqueId()
  readonly #transports: RabbitMqTransport[] = []
  readonly #connections: ChannelModel[] = []
  readonly #topologies: RabbitMqTopology[] = []

  constructor(readonly url: string) {}

  /** A topic name of this test. */
  topic(name = 'topic'): string {
    return `${this.id}-${name}`
  }

  /** A transport in this test's namespace; `url` defaults to the broker's (pass a proxy's). */
  transport(options: Partial<RabbitMqTransportOptions> = {}, url = this.url): RabbitMqTransport {
    const transport = new RabbitMqTransport({
      connection: () => connect(url),
      namespace: this.id,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
      ...options,
    })
    this.#transports.push(transport)
    return transport
  }

  /** A raw amqplib connection, closed at cleanup. */
  async raw(): Promise<ChannelModel> {
    const connection = await connect(this.url)
    this.#connections.push(connection)
    return connection
  }

  /** Remembers a topology to delete at cleanup, and returns it. */
  track(topology: RabbitMqTopology): RabbitMqTopology {
    this.#topologies.push(topology)
    return topology
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.#transports.map((t) => t.close()))
    const admin = await connect(this.url)
    try {
      const channel = await admin.createChannel()
      for (const topology of this.#topologies)
        for (const d of topology.declarations)
          if (d.kind === 'queue') await channel.deleteQueue(d.name)
      for (const topology of this.#topologies)
        for (const d of topology.declarations)
          if (d.kind === 'exchange') await channel.deleteExchange(d.name)
      await channel.close()
    } finally {
      await admin.close()
      await Promise.all(this.#connections.map((c) => c.close().catch(() => undefined)))
    }
  }
}
