/**
 * The outbox relay: claims due rows in batches, publishes them, marks them.
 *
 * - At least once: a row is marked published only after the publisher confirmed it; a crash
 *   anywhere leaves it claimable again once its lease expires (duplicates keep the message id).
 * - Order per key comes from the store (a batch holds at most the head row of each key); topics of
 *   a batch are published one after the other.
 * - A failed publish marks the batch's rows failed with exponential backoff per row (in database
 *   time), dead after `maxAttempts`; the loop never stops on an error, it logs and backs off.
 * - Wakes on the store's change hint (LISTEN/NOTIFY) where it has one; polls anyway.
 * - `stop()` stops claiming, lets the batch in hand finish (or releases it after `stopTimeoutMs`).
 * - Every store call is bounded by `storeTimeoutMs`: a call on a connection that hangs without an
 *   error (half-open TCP, a silent network) is abandoned, so the loop backs off and carries on.
 */
import {
  ConfigurationError,
  ErrorCode,
  isSwitchyardError,
  OutboxStoreError,
  TransportError,
} from '../errors.js'
import { type Logger, logAt, silentLogger } from '../core/logger.js'
import type { Publisher, TransportMessage } from '../transport/publisher.js'
import { faultPoint } from './fault-points.js'
import type {
  ClaimedRecord,
  MarkAndClaim,
  OutboxMaintenance,
  OutboxStatus,
  OutboxStore,
} from './outbox-store.js'

/** Per-batch and periodic figures for metrics. */
export interface RelayMetrics {
  readonly published: number
  readonly failed: number
  readonly dead: number
  /** Present when a status check ran (every `statusIntervalMs`). */
  readonly status?: OutboxStatus
}

/** A store that can wake relays when rows are appended (PostgreSQL LISTEN). */
export interface WakeUpSource {
  /** Calls `wake` on each hint until the returned function is called. */
  listen(wake: () => void): Promise<() => Promise<void>>
  /**
   * How long writers may go without a hint of their own, ms (hints are coalesced over this
   * window). After a hint or a published batch the relay polls this often, for a while, instead
   * of waiting `pollIntervalMs`. 0 or absent: every write sends a hint.
   */
  readonly hintWindowMs?: number
}

/** After activity, a relay polls every hint window for this many windows (at least 100 ms). */
const LINGER_WINDOWS = 10

/** Options of {@link OutboxRelay}. */
export interface OutboxRelayOptions {
  readonly store: OutboxStore &
    Partial<OutboxMaintenance> &
    Partial<WakeUpSource> &
    Partial<MarkAndClaim>
  readonly publisher: Publisher
  /** Rows per claim. Default 100. */
  readonly batchSize?: number
  /**
   * Batches in flight at once, each claimed, published and marked on its own. Default 1. More
   * overlaps one batch's publish confirms and store calls with the others' (for a broker whose
   * confirms take a while, `batchSize` × `concurrency` is the number of messages awaiting a
   * confirm). Order per key holds whatever the value: a key's next row cannot be claimed while
   * the row before it is in flight.
   */
  readonly concurrency?: number
  /** Lease per claim, ms. Default 30,000. Must exceed `publishTimeoutMs`. */
  readonly leaseMs?: number
  /** Longest wait for a publish to be confirmed, ms. Default 10,000. */
  readonly publishTimeoutMs?: number
  /** Poll interval when idle, ms. Default 1,000 (LISTEN wakes it sooner where available). */
  readonly pollIntervalMs?: number
  /** Attempts before a row is dead. Default 10. */
  readonly maxAttempts?: number
  /** Backoff per failed row: initial and largest delay, ms. Default 1,000 and 300,000. */
  readonly backoff?: { readonly initialDelay?: number; readonly maxDelay?: number }
  /** Name in the lease (`lease_owner`). Default `relay-<pid>-<random>`. */
  readonly owner?: string
  readonly logger?: Logger
  /** Called after each batch (and status check). */
  readonly onMetrics?: (metrics: RelayMetrics) => void
  /** How often to read the store status for `onMetrics`, ms. Default 10,000; 0 = never. */
  readonly statusIntervalMs?: number
  /** How long `stop()` waits for the batch in hand, ms, before releasing it. Default 10,000. */
  readonly stopTimeoutMs?: number
  /**
   * Longest wait for one store call, ms: `claim`, `markPublished`, `markFailed`, `release`,
   * `status`, and setting up or ending LISTEN. Default 10,000, or `leaseMs` when that is shorter;
   * 0 = no limit.
   *
   * A driver call on a connection that hangs without an error (a half-open TCP connection, a
   * network that drops packets silently) may never settle; without this bound the relay would
   * stop for good. A call that takes longer is abandoned: the batch fails with a retryable
   * `OutboxStoreError`, the relay logs it, backs off and claims again. Abandoning is safe: rows of
   * an abandoned claim stay leased and are claimed again once the lease expires (and if the claim
   * completes after all, its rows are released at once); marks are fenced by the claim's token,
   * and rows left unmarked are published again after their lease (at least once, same ids).
   *
   * The abandoned driver call itself goes on holding its connection: give the driver its own
   * limits too (pg: `query_timeout`, `connectionTimeoutMillis`; mysql2: `connectTimeout`), so the
   * pool gets the connection back.
   */
  readonly storeTimeoutMs?: number
  readonly signal?: AbortSignal
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const timer = setTimeout(done, ms)
    function done(): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })

export class OutboxRelay implements AsyncDisposable {
  readonly #o: Required<Omit<OutboxRelayOptions, 'onMetrics' | 'signal' | 'backoff'>> & {
    readonly onMetrics: OutboxRelayOptions['onMetrics'] | undefined
    readonly signal: AbortSignal | undefined
  }
  readonly #initialDelay: number
  readonly #maxDelay: number
  #loop: Promise<void> | undefined
  #stopping = new AbortController()
  /** Wakes every idle worker of the loop. */
  readonly #wakers = new Set<() => void>()
  /** Wake-up hints so far: a worker that saw one arrive during its claim claims again. */
  #hints = 0
  /** Until when (performance.now()) the idle loop polls every hint window: see WakeUpSource. */
  #lingerUntil = 0
  /** The batches claimed and not yet settled, for `stop()` to release. */
  readonly #inHand = new Set<readonly ClaimedRecord[]>()
  #lastStatus = 0

  constructor(options: OutboxRelayOptions) {
    const o = {
      store: options.store,
      publisher: options.publisher,
      batchSize: options.batchSize ?? 100,
      concurrency: options.concurrency ?? 1,
      leaseMs: options.leaseMs ?? 30_000,
      publishTimeoutMs: options.publishTimeoutMs ?? 10_000,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      maxAttempts: options.maxAttempts ?? 10,
      owner: options.owner ?? `relay-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
      logger: options.logger ?? silentLogger,
      statusIntervalMs: options.statusIntervalMs ?? 10_000,
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      storeTimeoutMs: options.storeTimeoutMs ?? Math.min(10_000, options.leaseMs ?? 30_000),
      onMetrics: options.onMetrics,
      signal: options.signal,
    }
    this.#initialDelay = options.backoff?.initialDelay ?? 1000
    this.#maxDelay = options.backoff?.maxDelay ?? 300_000
    const problems: string[] = []
    for (const [name, value] of Object.entries({
      batchSize: o.batchSize,
      concurrency: o.concurrency,
      leaseMs: o.leaseMs,
      publishTimeoutMs: o.publishTimeoutMs,
      pollIntervalMs: o.pollIntervalMs,
      maxAttempts: o.maxAttempts,
    })) {
      if (!Number.isSafeInteger(value) || value < 1)
        problems.push(`${name} must be a whole number ≥ 1`)
    }
    if (!Number.isSafeInteger(o.storeTimeoutMs) || o.storeTimeoutMs < 0)
      problems.push('storeTimeoutMs must be a whole number ≥ 0 (0 = no limit)')
    if (o.publishTimeoutMs >= o.leaseMs)
      problems.push(
        'publishTimeoutMs must be shorter than leaseMs, or a slow publish could outlive its lease',
      )
    if (!(this.#initialDelay >= 0 && this.#maxDelay >= this.#initialDelay))
      problems.push('backoff needs 0 ≤ initialDelay ≤ maxDelay')
    if (problems.length > 0)
      throw new ConfigurationError(`Invalid OutboxRelay options: ${problems.join('; ')}`, {
        problems,
      })
    this.#o = o
  }

  /** Starts the loop (idempotent). It runs until `stop()` or the signal aborts. */
  start(): void {
    this.#loop ??= this.#run()
  }

  /** Claims and publishes one batch; resolves with how many rows it published. */
  async runOnce(): Promise<number> {
    return this.#batch({ unmarked: [] }, false)
  }

  /**
   * One batch; resolves with how many rows were marked published. Claims (marking
   * `hand.unmarked`, the previous batch's last topic, in the same call where the store has
   * `markAndClaim`), publishes, and marks. With `defer`, on such a store, the
   * last topic's rows are left unmarked in `hand`, for the next call to mark while it claims: one
   * round trip per batch instead of two. `hand.unmarked` is emptied as soon as they are marked.
   */
  async #batch(hand: { unmarked: readonly ClaimedRecord[] }, defer: boolean): Promise<number> {
    const o = this.#o
    const { store } = o
    const unmarked = hand.unmarked
    const merged = store.markAndClaim !== undefined && unmarked.length > 0
    const claimStarted = Date.now() // the lease started after this, in database time
    const claimOptions = { limit: o.batchSize, leaseMs: o.leaseMs, owner: o.owner }
    let published = 0
    let claimed: ClaimedRecord[]
    if (merged) {
      const markAndClaim = store.markAndClaim!.bind(store)
      const result = await this.#bounded(
        'markAndClaim',
        () => markAndClaim(unmarked, claimOptions),
        (late) => this.#releaseLate(late.claimed),
      )
      published += this.#accepted(unmarked, result.accepted)
      this.#marked(hand)
      claimed = result.claimed
    } else {
      if (unmarked.length > 0) {
        published += await this.#mark(unmarked)
        this.#marked(hand)
      }
      claimed = await this.#bounded(
        'claim',
        () => store.claim(claimOptions),
        (late) => this.#releaseLate(late),
      )
    }
    if (claimed.length === 0) {
      if (published > 0) await this.#report({ published, failed: 0, dead: 0 })
      return published
    }
    faultPoint('relay.after-claim')
    this.#inHand.add(claimed)
    let failed = 0
    let dead = 0
    try {
      const groups = [...groupByTopic(claimed)]
      for (const [index, [topic, rows]] of groups.entries()) {
        if (index > 0) {
          faultPoint('relay.between-marks')
          // Topics are published one after the other: a group whose publish could outlast the
          // lease goes back to the store instead, or another relay could claim it meanwhile.
          if (Date.now() - claimStarted + o.publishTimeoutMs >= o.leaseMs) {
            await this.#giveBack(groups.slice(index).flatMap(([, rest]) => rest))
            break
          }
        }
        try {
          await this.#publish(topic, rows)
        } catch (error) {
          const reason = failureReason(error)
          logAt(
            o.logger,
            'warn',
            { err: error, topic, rows: rows.length },
            'outbox publish failed; rows will be retried',
          )
          for (const row of rows) {
            const outcome = await this.#bounded('markFailed', () =>
              o.store.markFailed(row, reason, {
                retryInMs: this.#delay(row.attempts),
                maxAttempts: o.maxAttempts,
              }),
            )
            if (outcome === 'dead') {
              dead++
              logAt(
                o.logger,
                'error',
                { messageId: row.id, topic, key: row.key, attempts: row.attempts, reason },
                'outbox row is dead after its last attempt',
              )
            } else if (outcome === 'retry') failed++
          }
          continue
        }
        faultPoint('relay.after-publish')
        if (defer && store.markAndClaim !== undefined && index === groups.length - 1) {
          hand.unmarked = rows
          this.#inHand.add(rows) // until the next claim marks them
        } else published += await this.#mark(rows)
      }
    } finally {
      this.#inHand.delete(claimed)
    }
    await this.#report({ published, failed, dead })
    return published
  }

  /** The deferred rows are marked: no longer in hand. */
  #marked(hand: { unmarked: readonly ClaimedRecord[] }): void {
    this.#inHand.delete(hand.unmarked)
    hand.unmarked = []
  }

  /** Marks published rows; returns how many the fence accepted. */
  async #mark(rows: readonly ClaimedRecord[]): Promise<number> {
    const { store } = this.#o
    const accepted = await this.#bounded('markPublished', () => store.markPublished(rows))
    return this.#accepted(rows, accepted)
  }

  /** Logs the rows a mark's fence refused (another relay took them over), returns `accepted`. */
  #accepted(rows: readonly ClaimedRecord[], accepted: number): number {
    if (accepted < rows.length) {
      logAt(
        this.#o.logger,
        'warn',
        { topic: rows[0]?.topic, stale: rows.length - accepted },
        'some rows were published after their lease was taken over; another relay re-publishes them (duplicates)',
      )
    }
    return accepted
  }

  /** Stops claiming, waits for the batch in hand (up to `stopTimeoutMs`), then releases what is left. */
  async stop(): Promise<void> {
    this.#stopping.abort()
    this.#wakeAll()
    const loop = this.#loop
    if (loop === undefined) return
    // The wait is cancelled as soon as the loop ends, so no timer outlives stop().
    const waited = new AbortController()
    const timedOut = await Promise.race([
      loop.then(() => false),
      sleep(this.#o.stopTimeoutMs, waited.signal).then(() => !waited.signal.aborted),
    ])
    waited.abort()
    if (timedOut && this.#inHand.size > 0) await this.#release([...this.#inHand].flat())
  }

  /** Puts claimed rows back, not counted as an attempt, where the store can (bounded like any call). */
  async #release(rows: readonly ClaimedRecord[]): Promise<void> {
    const { store } = this.#o
    const { release } = store
    if (release !== undefined) await this.#bounded('release', () => release.call(store, rows))
  }

  /** Puts rows of the batch back unpublished (not counted as an attempt) where the store can. */
  async #giveBack(rows: readonly ClaimedRecord[]): Promise<void> {
    logAt(
      this.#o.logger,
      'info',
      { rows: rows.length },
      'the rest of the batch would outlast its lease; released for the next claim',
    )
    await this.#release(rows)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  async #run(): Promise<void> {
    const o = this.#o
    const stop = this.#stopping.signal
    o.signal?.addEventListener('abort', () => this.#stopping.abort(), { once: true })
    let stopListening: (() => Promise<void>) | undefined
    try {
      const { listen } = o.store
      if (listen !== undefined) {
        stopListening = await this.#bounded(
          'listen',
          () => listen.call(o.store, () => this.#hint()),
          (late) => void late().catch(() => undefined),
        ).catch((error: unknown) => {
          logAt(o.logger, 'warn', { err: error }, 'outbox relay could not LISTEN; polling only')
          return undefined
        })
      }
      await Promise.all(Array.from({ length: o.concurrency }, () => this.#work(stop)))
    } finally {
      if (stopListening !== undefined)
        await this.#bounded('unlisten', stopListening).catch(() => undefined)
    }
  }

  /**
   * One worker of the loop: a batch at a time, until stopped. The rows of a batch's last topic
   * are marked by the next batch's claim (where the store can), so they stay "in hand" until then,
   * and are marked on their own when the worker stops.
   */
  async #work(stop: AbortSignal): Promise<void> {
    const o = this.#o
    let errors = 0
    const hand: { unmarked: readonly ClaimedRecord[] } = { unmarked: [] }
    try {
      while (!stop.aborted) {
        const hints = this.#hints // rows appended after this are seen by this claim or hint again
        let published: number
        try {
          published = await this.#batch(hand, true)
          errors = 0
        } catch (error) {
          errors++
          logAt(
            o.logger,
            'error',
            { err: error, consecutiveErrors: errors },
            'outbox relay batch failed; backing off',
          )
          await sleep(
            Math.min(
              Math.max(this.#initialDelay, o.pollIntervalMs) * 2 ** Math.min(errors, 16),
              o.pollIntervalMs * 30,
            ),
            stop,
          )
          continue // the unmarked rows are marked with the next claim (the fence keeps it exact)
        }
        // Marking a key's head row makes its next row claimable: wake the workers that found
        // nothing (they would wait a poll interval), and claim again at once.
        if (published > 0) this.#wakeAll()
        if (published > 0 || hand.unmarked.length > 0) {
          this.#linger()
          continue
        }
        // A hint that arrived during the claim may be for rows it missed: claim again.
        if (this.#hints === hints) await this.#idle(stop)
      }
    } finally {
      const { unmarked } = hand
      if (unmarked.length > 0) {
        this.#marked(hand)
        const published = await this.#mark(unmarked).catch((error: unknown) => {
          logAt(o.logger, 'warn', { err: error }, 'outbox relay could not mark its last batch')
          return 0
        })
        await this.#report({ published, failed: 0, dead: 0 })
      }
    }
  }

  /** Waits for the poll interval or a wake-up hint, whichever comes first. */
  #hint(): void {
    this.#hints++
    this.#linger()
    this.#wakeAll()
  }

  #wakeAll(): void {
    for (const wake of this.#wakers) wake()
  }

  /**
   * Writers coalesce their hints (one per window per store): a write right after another one's
   * hint sends none, and may commit after the claim that hint caused. Polling every window for a
   * while after activity finds such rows as soon as a hint of their own would have.
   */
  #linger(): void {
    const window = this.#o.store.hintWindowMs ?? 0
    if (window > 0) this.#lingerUntil = performance.now() + Math.max(100, LINGER_WINDOWS * window)
  }

  async #idle(stop: AbortSignal): Promise<void> {
    // stop() may have come while the batch before was running: its abort event has fired already.
    if (stop.aborted) return
    const woken = new AbortController()
    const onStop = (): void => woken.abort()
    stop.addEventListener('abort', onStop, { once: true })
    const wake = (): void => woken.abort()
    this.#wakers.add(wake)
    const { pollIntervalMs } = this.#o
    const window = this.#o.store.hintWindowMs ?? 0
    const lingering = window > 0 && performance.now() < this.#lingerUntil
    try {
      await sleep(lingering ? Math.min(window, pollIntervalMs) : pollIntervalMs, woken.signal)
    } finally {
      this.#wakers.delete(wake)
      stop.removeEventListener('abort', onStop)
    }
  }

  async #publish(topic: string, rows: readonly ClaimedRecord[]): Promise<void> {
    const messages: TransportMessage[] = rows.map((r) => ({
      id: r.id,
      key: r.key,
      headers: r.headers,
      body: r.body,
    }))
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new TransportError(
              `Publishing ${rows.length} message(s) to "${topic}" was not confirmed within ${this.#o.publishTimeoutMs} ms`,
              { code: ErrorCode.PublishTimeout, details: { topic } },
            ),
          ),
        this.#o.publishTimeoutMs,
      )
    })
    try {
      await Promise.race([this.#o.publisher.publish(topic, messages), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Runs one store call, abandoning it after `storeTimeoutMs` with a retryable `OutboxStoreError`.
   * `late` gets the result of an abandoned call that completes after all.
   */
  async #bounded<T>(
    operation: string,
    call: () => Promise<T>,
    late?: (value: T) => void,
  ): Promise<T> {
    const ms = this.#o.storeTimeoutMs
    const work = call()
    if (ms === 0) return work
    let timer: NodeJS.Timeout | undefined
    let immediate: NodeJS.Immediate | undefined
    let abandoned = false
    const timeout = new Promise<never>((_, reject) => {
      // The rejection waits one more turn of the event loop, so an answer that arrived while the
      // loop was blocked (a long GC pause, SIGSTOP) wins over the timer that fired first.
      const expire = (): void => {
        abandoned = true
        reject(
          new OutboxStoreError(
            `Outbox ${operation} did not complete within ${ms} ms (storeTimeoutMs); the relay abandoned it and will retry. A database connection that hangs without an error (half-open) does this: give the driver its own query and connect timeouts`,
            { code: ErrorCode.OutboxStore, details: { operation, timeoutMs: ms } },
          ),
        )
      }
      timer = setTimeout(() => (immediate = setImmediate(expire)), ms)
    })
    try {
      return await Promise.race([work, timeout])
    } finally {
      clearTimeout(timer)
      clearImmediate(immediate)
      if (abandoned && late !== undefined) void work.then(late, () => undefined)
    }
  }

  /** Gives back the rows of a claim that completed after it was abandoned. */
  #releaseLate(rows: readonly ClaimedRecord[]): void {
    if (rows.length === 0) return
    logAt(
      this.#o.logger,
      'warn',
      { rows: rows.length },
      'an abandoned outbox claim completed late; releasing its rows (else they wait for their lease)',
    )
    void this.#release(rows).catch(() => undefined)
  }

  /** Exponential backoff with full jitter, capped. */
  #delay(attempts: number): number {
    const ceiling = Math.min(this.#maxDelay, this.#initialDelay * 2 ** Math.max(0, attempts - 1))
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2)
  }

  async #report(batch: { published: number; failed: number; dead: number }): Promise<void> {
    const o = this.#o
    if (o.onMetrics === undefined) return
    let status: OutboxStatus | undefined
    const now = Date.now()
    if (
      o.statusIntervalMs > 0 &&
      o.store.status !== undefined &&
      now - this.#lastStatus >= o.statusIntervalMs
    ) {
      this.#lastStatus = now
      const read = o.store.status.bind(o.store)
      status = await this.#bounded('status', read).catch(() => undefined)
    }
    o.onMetrics(status === undefined ? batch : { ...batch, status })
  }
}

function groupByTopic(rows: readonly ClaimedRecord[]): Map<string, ClaimedRecord[]> {
  const groups = new Map<string, ClaimedRecord[]>()
  for (const row of rows) {
    const list = groups.get(row.topic)
    if (list === undefined) groups.set(row.topic, [row])
    else list.push(row)
  }
  return groups
}

/**
 * The reason stored with a failed row: the error's message, after its code for a Switchyard error
 * (`SWITCHYARD_UNROUTABLE: …`), so a dead row says which failure ended it.
 */
function failureReason(error: unknown): string {
  if (isSwitchyardError(error)) return `${error.code}: ${error.message}`
  return error instanceof Error ? error.message : String(error)
}
