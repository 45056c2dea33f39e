/**
 * The in-memory transport: publisher and subscriber for one process (the embedded default, tests
 * and demos). It keeps the subscriber contract in full — consumer groups, competing subscriptions,
 * redelivery with delay, dead letters with their reason, order per key (a key waits while one of
 * its messages is in flight or waiting for a retry) — but nothing survives the process.
 *
 * A group exists from its first `subscribe` and keeps receiving while none of its subscriptions
 * runs (like a durable queue): messages wait for the next subscription of the group.
 */
import { ConfigurationError, ErrorCode, TransportError } from '../errors.js'
import type { Publisher, TransportMessage } from './publisher.js'
import {
  DEFAULT_REDELIVERY,
  type DeadLetter,
  type DeliveryHandler,
  type RedeliveryPolicy,
  type SubscribeOptions,
  type Subscriber,
  type Subscription,
} from './subscriber.js'

/** A listener of published messages. */
export type PublishListener = (topic: string, message: TransportMessage) => void

/** A message waiting in, or handed out by, one group. */
interface Entry {
  readonly message: TransportMessage
  attempts: number
  inFlight: boolean
  /** Not deliverable before this time (ms since the epoch): a retry's delay. */
  notBefore: number
  firstFailureAt?: string
}

class GroupSubscription implements Subscription {
  running = 0
  readonly aborts = new AbortController()
  /** Removes the listener on the caller's `signal`, which may outlive the subscription. */
  detach: (() => void) | undefined
  #idle: (() => void) | undefined
  #closed: Promise<void> | undefined

  constructor(
    readonly group: Group,
    readonly handler: DeliveryHandler,
    readonly concurrency: number,
    readonly retry: RedeliveryPolicy,
  ) {}

  get open(): boolean {
    return this.#closed === undefined
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.detach?.()
      this.group.subscriptions.delete(this)
      this.aborts.abort()
      if (this.running > 0) await new Promise<void>((resolve) => (this.#idle = resolve))
      this.group.pump() // what it would have taken goes to the group's other subscriptions
    })()
    return this.#closed
  }

  settled(): void {
    this.running--
    if (this.running === 0) this.#idle?.()
  }
}

class Group {
  readonly entries: Entry[] = []
  readonly subscriptions = new Set<GroupSubscription>()
  readonly deadLetters: DeadLetter[] = []
  #timer: NodeJS.Timeout | undefined
  #next = 0

  constructor(
    readonly topic: string,
    readonly name: string,
  ) {}

  push(message: TransportMessage): void {
    this.entries.push({ message, attempts: 0, inFlight: false, notBefore: 0 })
    this.pump()
  }

  /** Hands out every deliverable message to a subscription with room, keeping keys in order. */
  pump(): void {
    const now = Date.now()
    const busyKeys = new Set<string>()
    let wakeAt = Infinity
    for (const entry of this.entries) {
      const key = entry.message.key
      if (key !== undefined && busyKeys.has(key)) continue
      if (key !== undefined) busyKeys.add(key) // later messages of the key wait for this one
      if (entry.inFlight) continue
      if (entry.notBefore > now) {
        wakeAt = Math.min(wakeAt, entry.notBefore)
        continue
      }
      const subscription = this.#withRoom()
      if (subscription === undefined) break
      this.#deliver(subscription, entry)
    }
    clearTimeout(this.#timer)
    this.#timer = undefined
    // A retry's delay needs a timer only while someone can take the message.
    if (wakeAt !== Infinity && this.subscriptions.size > 0) {
      this.#timer = setTimeout(() => this.pump(), Math.max(0, wakeAt - Date.now()))
    }
  }

  stop(): void {
    clearTimeout(this.#timer)
  }

  /** Round-robin over the subscriptions that may take one more message. */
  #withRoom(): GroupSubscription | undefined {
    const all = [...this.subscriptions]
    for (let i = 0; i < all.length; i++) {
      const candidate = all[(this.#next + i) % all.length]!
      if (candidate.open && candidate.running < candidate.concurrency) {
        this.#next = (this.#next + i + 1) % all.length
        return candidate
      }
    }
    return undefined
  }

  #deliver(subscription: GroupSubscription, entry: Entry): void {
    entry.inFlight = true
    entry.attempts++
    subscription.running++
    // Each delivery gets its own copy, as from a broker: a handler changing it changes neither a
    // redelivery nor another group's copy.
    const { message } = entry
    const delivery = {
      ...message,
      headers: { ...message.headers },
      body: message.body.slice(),
      topic: this.topic,
      attempt: entry.attempts,
    }
    void (async () => {
      try {
        const outcome = await subscription.handler(delivery, subscription.aborts.signal)
        if (outcome !== undefined && typeof outcome.deadLetter === 'string')
          this.#deadLetter(entry, outcome.deadLetter)
        else this.#remove(entry)
      } catch (error) {
        if (subscription.aborts.signal.aborted) {
          // Rejected while its subscription closes: given back, not counted as a failure.
          entry.attempts--
          entry.inFlight = false
          return
        }
        const reason = error instanceof Error ? error.message : String(error)
        entry.firstFailureAt ??= new Date().toISOString()
        if (entry.attempts >= subscription.retry.maxAttempts) this.#deadLetter(entry, reason)
        else {
          entry.inFlight = false
          entry.notBefore = Date.now() + retryDelay(subscription.retry, entry.attempts)
        }
      } finally {
        subscription.settled()
        this.pump()
      }
    })()
  }

  #deadLetter(entry: Entry, reason: string): void {
    const now = new Date().toISOString()
    this.deadLetters.push({
      message: entry.message,
      topic: this.topic,
      group: this.name,
      reason,
      attempts: entry.attempts,
      firstFailureAt: entry.firstFailureAt ?? now,
      lastFailureAt: now,
    })
    this.#remove(entry)
  }

  #remove(entry: Entry): void {
    const index = this.entries.indexOf(entry)
    if (index >= 0) this.entries.splice(index, 1)
  }
}

export class InMemoryTransport implements Publisher, Subscriber, AsyncDisposable {
  readonly #topics = new Map<string, TransportMessage[]>()
  readonly #groups = new Map<string, Map<string, Group>>()
  readonly #listeners = new Set<PublishListener>()
  #closed: Promise<void> | undefined

  async publish(topic: string, messages: readonly TransportMessage[]): Promise<void> {
    this.#assertOpen(topic)
    let list = this.#topics.get(topic)
    if (list === undefined) this.#topics.set(topic, (list = []))
    for (const published of messages) {
      // The transport keeps its own copy: the caller may reuse its buffers once publish resolved.
      const message: TransportMessage = {
        ...published,
        headers: Object.freeze({ ...published.headers }),
        body: published.body.slice(),
      }
      list.push(message)
      for (const group of this.#groups.get(topic)?.values() ?? []) group.push(message)
      for (const listener of this.#listeners) listener(topic, message)
    }
    return Promise.resolve()
  }

  async subscribe(
    topic: string,
    handler: DeliveryHandler,
    options: SubscribeOptions,
  ): Promise<Subscription> {
    this.#assertOpen(topic)
    const concurrency = options.concurrency ?? 1
    const retry = options.retry ?? DEFAULT_REDELIVERY
    if (typeof options.group !== 'string' || options.group === '')
      throw new ConfigurationError('subscribe needs a group name')
    if (!Number.isSafeInteger(concurrency) || concurrency < 1)
      throw new ConfigurationError('concurrency must be a whole number ≥ 1')
    if (!Number.isSafeInteger(retry.maxAttempts) || retry.maxAttempts < 1)
      throw new ConfigurationError('retry.maxAttempts must be a whole number ≥ 1')
    let groups = this.#groups.get(topic)
    if (groups === undefined) this.#groups.set(topic, (groups = new Map<string, Group>()))
    let group = groups.get(options.group)
    if (group === undefined) groups.set(options.group, (group = new Group(topic, options.group)))
    const subscription = new GroupSubscription(group, handler, concurrency, retry)
    if (options.signal?.aborted) return Promise.resolve(subscription)
    group.subscriptions.add(subscription)
    const signal = options.signal
    if (signal !== undefined) {
      const onAbort = (): void => void subscription.close()
      signal.addEventListener('abort', onAbort, { once: true })
      subscription.detach = () => signal.removeEventListener('abort', onAbort)
    }
    group.pump()
    return Promise.resolve(subscription)
  }

  /** Everything published to a topic, in order. */
  published(topic: string): readonly TransportMessage[] {
    return this.#topics.get(topic) ?? []
  }

  /** The dead letters of a topic (of one group, or of all), oldest first. */
  deadLetters(topic: string, group?: string): readonly DeadLetter[] {
    const groups = [...(this.#groups.get(topic)?.values() ?? [])]
    return groups
      .filter((g) => group === undefined || g.name === group)
      .flatMap((g) => g.deadLetters)
  }

  /** Messages of a group not yet acknowledged (waiting, in flight or waiting for a retry). */
  pending(topic: string, group: string): number {
    return this.#groups.get(topic)?.get(group)?.entries.length ?? 0
  }

  /** Calls `listener` for every message published from now on; returns a handle to stop. */
  onPublish(listener: PublishListener): Disposable {
    this.#listeners.add(listener)
    return { [Symbol.dispose]: () => void this.#listeners.delete(listener) }
  }

  /** Refuses further publishes and subscriptions, and closes every subscription (idempotent). */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      const groups = [...this.#groups.values()].flatMap((byName) => [...byName.values()])
      await Promise.all(groups.flatMap((g) => [...g.subscriptions].map((s) => s.close())))
      for (const group of groups) group.stop()
    })()
    return this.#closed
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #assertOpen(topic: string): void {
    if (this.#closed !== undefined)
      throw new TransportError(`The in-memory transport is closed (topic "${topic}")`, {
        code: ErrorCode.TransportClosed,
        retryable: false,
        details: { topic },
      })
  }
}

/** The policy's delay, or the default's when the policy's function throws or answers nonsense. */
function retryDelay(policy: RedeliveryPolicy, attempt: number): number {
  let delay: number
  try {
    delay = policy.delayMs(attempt)
  } catch {
    delay = DEFAULT_REDELIVERY.delayMs(attempt)
  }
  return Number.isFinite(delay) && delay > 0 ? delay : 0
}
