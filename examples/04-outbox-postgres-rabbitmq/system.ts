/**
 * The two services as child processes of one run, and what main.ts and the test look at: the
 * HTTP calls to the allocation service, the tables of both services (read directly, through a
 * pool of their own) and the consumer group's dead letters. `stop()` stops the services,
 * `close()` also deletes the run's schemas, exchange and queues.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { connect } from 'amqplib'
import pg from 'pg'
import type { DeadLetter } from 'switchyard-bus'
import { RabbitMqTransport } from 'switchyard-bus/rabbitmq'
import { AMQP_URL, PG_URL, removeRun, type RunNames } from './config.js'

const here = fileURLToPath(new URL('.', import.meta.url))

/** How a service process ended. */
export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A service running as a child process (`node --import tsx <file>`). */
export class ServiceProcess {
  readonly lines: string[] = []
  readonly exited: Promise<Exit>
  readonly #child: ChildProcess
  readonly #waiters = new Set<() => void>()

  constructor(
    readonly name: string,
    file: string,
    env: Record<string, string>,
    echo: (line: string) => void,
  ) {
    this.#child = spawn(process.execPath, ['--import', 'tsx', `${here}${file}`], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let pending = ''
    const take = (chunk: Buffer): void => {
      pending += chunk.toString('utf8')
      const lines = pending.split('\n')
      pending = lines.pop() ?? ''
      for (const line of lines.filter(Boolean)) {
        this.lines.push(line)
        echo(`[${name}] ${line}`)
      }
      for (const wake of this.#waiters) wake()
    }
    this.#child.stdout!.on('data', take)
    this.#child.stderr!.on('data', take)
    this.exited = new Promise((resolve) =>
      this.#child.once('exit', (code, signal) => {
        for (const wake of this.#waiters) wake()
        resolve({ code, signal })
      }),
    )
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null
  }

  /** The first line matching `pattern`; rejects if the process exits or `ms` pass first. */
  async waitFor(pattern: RegExp, ms = 20_000): Promise<RegExpExecArray> {
    const deadline = Date.now() + ms
    for (;;) {
      for (const line of this.lines) {
        const match = pattern.exec(line)
        if (match !== null) return match
      }
      if (!this.running || Date.now() > deadline)
        throw new Error(
          `${this.name}: no line matching ${String(pattern)} (${this.running ? 'timed out' : 'exited'}); its output:\n${this.lines.join('\n')}`,
        )
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          clearTimeout(timer)
          this.#waiters.delete(wake)
          resolve()
        }
        const timer = setTimeout(wake, Math.min(200, Math.max(0, deadline - Date.now())))
        this.#waiters.add(wake)
      })
    }
  }

  /** Sends SIGTERM (a graceful stop) and waits for the exit; SIGKILL after `ms`. */
  async stop(ms = 15_000): Promise<Exit> {
    if (this.running) this.#child.kill('SIGTERM')
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), ms)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A row of the reporting service's read model. */
export interface ReadModelRow {
  readonly messageId: string
  readonly orderId: string
  readonly sku: string
  readonly qty: number
  readonly batchRef: string
  readonly correlationId: string
  readonly causationId: string | null
}

/** One run: its services, HTTP calls to the allocation service, and both services' tables. */
export class System {
  readonly pool: pg.Pool
  producer: ServiceProcess | undefined
  consumer: ServiceProcess | undefined
  #baseUrl = ''

  constructor(
    readonly names: RunNames,
    readonly echo: (line: string) => void = () => undefined,
  ) {
    this.pool = new pg.Pool({ connectionString: PG_URL, max: 2 })
  }

  /** Starts the allocation service and waits until it listens. */
  async startProducer(): Promise<ServiceProcess> {
    const service = new ServiceProcess('allocation', 'producer.ts', this.#env(), this.echo)
    this.producer = service
    this.#baseUrl = (await service.waitFor(/listening on (http:\/\/\S+);/))[1]!
    return service
  }

  /** Starts the reporting service and waits until it consumes its queue. */
  async startConsumer(
    options: { readonly crashAfterCommit?: string } = {},
  ): Promise<ServiceProcess> {
    const env = this.#env()
    if (options.crashAfterCommit !== undefined) env.CRASH_AFTER_COMMIT = options.crashAfterCommit
    const service = new ServiceProcess('reporting', 'consumer.ts', env, this.echo)
    this.consumer = service
    await service.waitFor(/^consuming /)
    return service
  }

  /** A POST to the allocation service: the status and the JSON answer. */
  async post(
    path: '/batches' | '/allocations',
    body: object,
    correlationId?: string,
  ): Promise<{ status: number; body: { batchRef?: string; error?: string } }> {
    const headers: Record<string, string> = { 'content-type': 'application/json' }
    if (correlationId !== undefined) headers['x-correlation-id'] = correlationId
    const response = await fetch(`${this.#baseUrl}${path}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
    })
    return { status: response.status, body: (await response.json()) as { batchRef?: string } }
  }

  /** The allocation service's outbox rows, oldest first. */
  async outboxRows(): Promise<{ id: string; key: string; keySeq: number; state: string }[]> {
    const { rows } = await this.pool.query<{
      id: string
      key: string
      keySeq: number
      state: string
    }>(
      `SELECT id, key, key_seq::int AS "keySeq", state FROM "${this.names.allocationSchema}".outbox ORDER BY seq`,
    )
    return rows
  }

  /** The reporting service's read model, in the order rows were written. */
  async readModel(): Promise<ReadModelRow[]> {
    const { rows } = await this.pool.query<ReadModelRow>(
      `SELECT message_id AS "messageId", order_id AS "orderId", sku, qty, batch_ref AS "batchRef",
              correlation_id AS "correlationId", causation_id AS "causationId"
         FROM "${this.names.reportingSchema}".allocations_view ORDER BY id`,
    )
    return rows
  }

  /** The reporting service's inbox records: consumer scope and message id. */
  async inbox(): Promise<{ consumer: string; messageId: string }[]> {
    const { rows } = await this.pool.query<{ consumer: string; messageId: string }>(
      `SELECT consumer, message_id AS "messageId" FROM "${this.names.reportingSchema}".inbox ORDER BY recorded_at`,
    )
    return rows
  }

  /** Waits until `check` holds, polling; fails after `ms`. */
  async until(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  /** The reporting group's dead letters (read, not removed). */
  async deadLetters(): Promise<DeadLetter[]> {
    const { topic, group, namespace } = this.names
    const reader = new RabbitMqTransport({ connection: () => connect(AMQP_URL), namespace })
    try {
      return await reader.deadLetters(topic, group)
    } finally {
      await reader.close()
    }
  }

  /** Stops the services still running (SIGTERM, a graceful stop); their exits, by name. */
  async stop(): Promise<Record<string, Exit>> {
    const exits: Record<string, Exit> = {}
    for (const service of [this.consumer, this.producer])
      if (service !== undefined) exits[service.name] = await service.stop()
    return exits
  }

  /** Stops the services; with `remove`, deletes the run's schemas, exchange and queues. */
  async close(options: { readonly remove: boolean }): Promise<void> {
    try {
      await this.stop()
      if (options.remove) await removeRun(this.names, this.pool)
    } finally {
      await this.pool.end()
    }
  }

  #env(): Record<string, string> {
    return { EXAMPLE_RUN: this.names.run, PORT: '0' }
  }
}
