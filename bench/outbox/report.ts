/**
 * The outbox benchmark's report: a table of figures per backend, one table of ratios against their
 * targets (PASS / MISS / info / n/a), and one JSON line with every figure.
 */
import { cpus } from 'node:os'
import { fmt, median, spreadPercent, table } from '../dispatch/harness.js'
import type { AppendResult } from './append.js'
import type { Backend } from './backends.js'
import type { LatencyResult } from './latency.js'
import type { MemoryResult, MemorySample } from './relay-memory.js'
import type { RelayThroughputResult } from './relay-throughput.js'

export type Figures =
  | { readonly backend: Backend; readonly skipped: string }
  | {
      readonly backend: Backend
      readonly skipped?: undefined
      readonly settings: string
      /** 1-minute load average before and after this backend's measurements. */
      readonly load: { readonly before: number; readonly after: number }
      readonly append: AppendResult
      readonly relay: RelayThroughputResult
      readonly latency: LatencyResult
      readonly latencyLow: LatencyResult
      readonly memory: MemoryResult
    }

type Measured = Exclude<Figures, { readonly skipped: string }>

export interface RunInfo {
  readonly quick: boolean
  readonly platform: string
  readonly config: Readonly<Record<string, number>>
  readonly minutes: number
}

interface Target {
  readonly name: string
  readonly shown: string
  readonly target: string
  readonly result: 'PASS' | 'MISS' | 'info' | 'n/a'
  readonly note?: string
}

/** Targets of the brief. */
export const TARGETS = {
  appendRatio: 0.8,
  relayRatio: 0.7,
  twoRelayRatio: 1.3,
  rssGrowthMB: 50,
} as const

export function printReport(all: readonly Figures[], info: RunInfo): void {
  console.log('')
  console.log(
    `switchyard-bus outbox benchmark${info.quick ? ' (BENCH_QUICK: smoke run, figures are rough)' : ''}`,
  )
  console.log(info.platform)
  console.log(
    Object.entries(info.config)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ') + `; whole run ${fmt(info.minutes, 1)} min`,
  )
  const targets: Target[] = []
  for (const f of all) {
    console.log('')
    if (f.skipped !== undefined) {
      console.log(`== ${f.backend.name}: SKIPPED, ${f.skipped}`)
      continue
    }
    printBackend(f)
    targets.push(...targetsOf(f))
  }
  console.log('')
  console.log(
    table(
      ['ratio / target', 'measured', 'target', 'result'],
      targets.map((t) => [
        t.name,
        t.shown,
        t.target,
        t.note === undefined ? t.result : `${t.result}: ${t.note}`,
      ]),
    ),
  )
  const scored = targets.filter((t) => t.result === 'PASS' || t.result === 'MISS')
  const missed = scored.filter((t) => t.result === 'MISS').length
  console.log('')
  console.log(
    `${scored.length - missed}/${scored.length} targets met${missed > 0 ? ` (${missed} MISS)` : ''}.`,
  )
}

function printBackend(f: Measured): void {
  const { append, relay, latency, memory } = f
  console.log(`== ${f.backend.name}: ${f.settings}`)
  console.log(`   ${f.backend.clientsNote}`)
  console.log(
    `   load average (1 min) ${fmt(f.load.before, 2)} before, ${fmt(f.load.after, 2)} after, on ${cpus().length} cpus`,
  )
  console.log('')
  const row = (label: string, values: readonly number[] | undefined, unit: string): string[] =>
    values === undefined
      ? [label, unit, 'n/a', '', '', '']
      : [
          label,
          unit,
          fmt(median(values), 0),
          fmt(Math.min(...values), 0),
          fmt(Math.max(...values), 0),
          `±${fmt(spreadPercent(values))}%`,
        ]
  console.log(
    table(
      ['case', 'unit', 'median', 'min', 'max', 'MAD'],
      [
        row('append: BEGIN; INSERT; COMMIT (baseline)', append.baseline, 'tx/s'),
        row('append: + store.append(tx, [1 record])', append.outbox, 'tx/s'),
        row('append: + store.append, notify: false (info)', append.outboxNoNotify, 'tx/s'),
        row('append: + a second business INSERT (info)', append.secondInsert, 'tx/s'),
        row('append: + the outbox row alone (info)', append.rowOnly, 'tx/s'),
        row('drain: SELECT … SKIP LOCKED + UPDATE (baseline)', relay.baseline, 'rows/s'),
        row('drain: 1 OutboxRelay, its loop', relay.relay, 'rows/s'),
        row('drain: 2 OutboxRelays, separate pools', relay.twoRelays, 'rows/s'),
        row('drain: 2 bare loops at once (info)', relay.twoBaselines, 'rows/s'),
      ],
    ),
  )
  console.log(
    `   drain: ${relay.rows.toLocaleString('en-US')} prefilled rows per run, batch 100, to an InMemoryTransport;` +
      ` the transport retained ${fmt(relay.transportBytesPerMessage, 0)} B of heap per message published`,
  )
  console.log('')
  console.log(
    'latency, COMMIT acknowledged → published (LISTEN/NOTIFY wake-up, poll interval 1 s):',
  )
  for (const l of [latency, f.latencyLow]) console.log(`   ${latencyLine(l)}`)
  console.log('')
  printMemory(memory)
}

function latencyLine(l: LatencyResult): string {
  const over =
    l.skipped > 0 ? `; OVER CAPACITY: ${l.skipped.toLocaleString('en-US')} send slots missed` : ''
  const early = l.early > 0 ? `; ${l.early} published before their COMMIT returned` : ''
  return (
    `${l.rate.toLocaleString('en-US')} msg/s for ${l.seconds} s: p50 ${fmt(l.p50, 2)} ms, p99 ${fmt(l.p99, 2)} ms, ` +
    `max ${fmt(l.max, 2)} ms; ${l.counted.toLocaleString('en-US')} messages, achieved ${fmt(l.achievedRate, 0)} msg/s${over}${early}`
  )
}

function printMemory(memory: MemoryResult): void {
  console.log(
    `relay memory: ${memory.rows.toLocaleString('en-US')} rows appended in ${fmt(memory.fillSeconds, 1)} s, ` +
      `drained in ${fmt(memory.drainSeconds, 1)} s (${fmt(memory.rows / memory.drainSeconds, 0)} rows/s), ` +
      `runOnce loop, batch 100, counting publisher, keys spread over ${memory.keys.toLocaleString('en-US')}; samples after a full GC` +
      (memory.housekeepingSeconds > 0
        ? `, each after cleanup(0) + VACUUM + CHECKPOINT (${fmt(memory.housekeepingSeconds, 1)} s in all, not in the drain time)`
        : ''),
  )
  console.log(
    table(
      [
        'published',
        'at s',
        'RSS MB',
        'of it WebAssembly MB',
        'heap MB',
        'external MB',
        'database MB',
      ],
      memory.samples.map((s) => [
        s.published.toLocaleString('en-US'),
        fmt(s.seconds, 1),
        fmt(s.rssMB, 1),
        fmt(s.wasmMB, 1),
        fmt(s.heapMB, 1),
        fmt(s.externalMB, 1),
        fmt(s.databaseMB, 1),
      ]),
    ),
  )
}

const first = (m: MemoryResult): MemorySample => m.samples[0]!
const last = (m: MemoryResult): MemorySample => m.samples[m.samples.length - 1]!

/**
 * The largest rise over the first sample, at any later sample: "flat" must hold all the way, not
 * only at the end (on PGlite the last cleanup shrinks the database, which would hide a rise).
 */
function largestGrowth(m: MemoryResult, value: (s: MemorySample) => number): number {
  const base = value(first(m))
  return Math.max(...m.samples.slice(1).map((s) => value(s) - base))
}

const rss = (s: MemorySample): number => s.rssMB

/**
 * The RSS outside WebAssembly memories: the relay's and Node's. On PGlite the database runs in this
 * process, in a WebAssembly memory whose pages stay resident once its allocator has touched them.
 */
const relayRss = (s: MemorySample): number => s.rssMB - (Number.isFinite(s.wasmMB) ? s.wasmMB : 0)

/** PGlite: the database runs in this process (elsewhere, WebAssembly memory is Node's own). */
const embedded = (f: Measured): boolean => f.backend.id === 'pglite'

/** The ratios of one backend, each from medians of the same run. */
export function ratios(f: Measured): {
  append: number
  appendNoNotify: number
  appendSecondInsert: number
  appendRowOnly: number
  relay: number
  twoRelays: number | undefined
  twoBaselines: number | undefined
  rssGrowthMB: number
  relayRssGrowthMB: number
  heapGrowthMB: number
} {
  const { append, relay, memory } = f
  return {
    append: median(append.outbox) / median(append.baseline),
    appendNoNotify: median(append.outboxNoNotify) / median(append.baseline),
    appendSecondInsert: median(append.secondInsert) / median(append.baseline),
    appendRowOnly: median(append.rowOnly) / median(append.baseline),
    relay: median(relay.relay) / median(relay.baseline),
    twoRelays:
      relay.twoRelays === undefined ? undefined : median(relay.twoRelays) / median(relay.relay),
    twoBaselines:
      relay.twoBaselines === undefined
        ? undefined
        : median(relay.twoBaselines) / median(relay.baseline),
    rssGrowthMB: largestGrowth(memory, rss),
    relayRssGrowthMB: embedded(f) ? largestGrowth(memory, relayRss) : largestGrowth(memory, rss),
    heapGrowthMB: largestGrowth(memory, (s) => s.heapMB),
  }
}

function targetsOf(f: Measured): Target[] {
  const r = ratios(f)
  const name = f.backend.name
  const at = (value: number, min: number): 'PASS' | 'MISS' => (value >= min ? 'PASS' : 'MISS')
  const rows = (n: number): string => (n >= 1_000_000 ? `${n / 1_000_000}M` : `${n / 1000}k`)
  const m = f.memory
  return [
    {
      name: `${name}: append, outbox / plain transaction`,
      shown: ratioShown(r.append, f.append.outbox, f.append.baseline),
      target: `≥ ${fmt(TARGETS.appendRatio, 2)}×`,
      result: at(r.append, TARGETS.appendRatio),
    },
    {
      name: `${name}: append, outbox notify: false / plain (info)`,
      shown: ratioShown(r.appendNoNotify, f.append.outboxNoNotify, f.append.baseline),
      target: '-',
      result: 'info',
    },
    {
      name: `${name}: append, a second business INSERT instead / plain (info: one more statement)`,
      shown: ratioShown(r.appendSecondInsert, f.append.secondInsert, f.append.baseline),
      target: '-',
      result: 'info',
    },
    {
      name: `${name}: append, the outbox row alone instead / plain (info: no counter, id row, NOTIFY)`,
      shown: ratioShown(r.appendRowOnly, f.append.rowOnly, f.append.baseline),
      target: '-',
      result: 'info',
    },
    {
      name: `${name}: drain, 1 relay / bare SKIP LOCKED loop`,
      shown: ratioShown(r.relay, f.relay.relay, f.relay.baseline),
      target: `≥ ${fmt(TARGETS.relayRatio, 2)}×`,
      result: at(r.relay, TARGETS.relayRatio),
    },
    r.twoRelays === undefined
      ? {
          name: `${name}: drain, 2 relays / 1 relay`,
          shown: 'n/a',
          target: `≥ ${fmt(TARGETS.twoRelayRatio, 2)}×`,
          result: 'n/a',
          note: 'single connection, no second relay can work at once',
        }
      : {
          name: `${name}: drain, 2 relays / 1 relay`,
          shown: ratioShown(r.twoRelays, f.relay.twoRelays ?? [], f.relay.relay),
          target: `≥ ${fmt(TARGETS.twoRelayRatio, 2)}×`,
          result: at(r.twoRelays, TARGETS.twoRelayRatio),
        },
    ...(r.twoBaselines === undefined
      ? []
      : [
          {
            name: `${name}: drain, 2 bare loops / 1 bare loop (info: what a second consumer gains here)`,
            shown: ratioShown(r.twoBaselines, f.relay.twoBaselines ?? [], f.relay.baseline),
            target: '-',
            result: 'info' as const,
          },
        ]),
    ...[f.latency, f.latencyLow].map((l): Target => ({
      name: `${name}: latency p50 / p99 at ${l.rate} msg/s${l.skipped > 0 ? ` (reached ${fmt(l.achievedRate, 0)})` : ''}`,
      shown: `${fmt(l.p50, 1)} / ${fmt(l.p99, 1)} ms`,
      target: '-',
      result: 'info',
    })),
    {
      name:
        `${name}: relay RSS rise from ${rows(first(m).published)} to ${rows(last(m).published)} published (largest)` +
        (embedded(f) ? ", outside the database's WebAssembly memory" : ''),
      shown: signedMB(r.relayRssGrowthMB, 1),
      target: `< ${TARGETS.rssGrowthMB} MB`,
      result: r.relayRssGrowthMB < TARGETS.rssGrowthMB ? 'PASS' : 'MISS',
    },
    ...(embedded(f)
      ? [
          {
            name: `${name}: process RSS rise, the database's WebAssembly memory included (info)`,
            shown: signedMB(r.rssGrowthMB, 1),
            target: '-',
            result: 'info' as const,
          },
        ]
      : []),
    {
      name: `${name}: relay heap rise, likewise (info)`,
      shown: signedMB(r.heapGrowthMB, 2),
      target: '-',
      result: 'info',
    },
  ]
}

const signedMB = (mb: number, digits: number): string =>
  `${mb >= 0 ? '+' : ''}${fmt(mb, digits)} MB`

/**
 * A ratio of medians, with the range of the per-round ratios after it: both sides of a round ran
 * back to back, so on a machine whose load drifts the round ratios are the steadier figure.
 */
function ratioShown(value: number, top: readonly number[], bottom: readonly number[]): string {
  const rounds = top.map((t, i) => t / (bottom[i] ?? Number.NaN))
  if (rounds.length < 2) return `${fmt(value, 2)}×`
  return `${fmt(value, 2)}× (rounds ${fmt(Math.min(...rounds), 2)}–${fmt(Math.max(...rounds), 2)})`
}

/** One line of JSON with every figure, for tooling. */
export function printJson(all: readonly Figures[], quick: boolean): void {
  const out: Record<string, unknown> = {
    bench: 'switchyard-bus/outbox',
    quick,
    node: process.version,
    at: new Date().toISOString(),
  }
  for (const f of all) {
    if (f.skipped !== undefined) {
      out[f.backend.id] = { skipped: f.skipped }
      continue
    }
    out[f.backend.id] = {
      settings: f.settings,
      append: { ...f.append, median: medians(f.append) },
      relay: {
        ...f.relay,
        median: {
          baseline: median(f.relay.baseline),
          relay: median(f.relay.relay),
          twoRelays: f.relay.twoRelays === undefined ? null : median(f.relay.twoRelays),
          twoBaselines: f.relay.twoBaselines === undefined ? null : median(f.relay.twoBaselines),
        },
      },
      load: f.load,
      latency: f.latency,
      latencyLow: f.latencyLow,
      memory: f.memory,
      ratios: {
        ...ratios(f),
        twoRelays: ratios(f).twoRelays ?? null,
        twoBaselines: ratios(f).twoBaselines ?? null,
      },
    }
  }
  console.log(
    JSON.stringify(out, (_key, value: unknown) =>
      typeof value === 'number' ? Math.round(value * 1000) / 1000 : value,
    ),
  )
}

const medians = (a: AppendResult): Record<keyof AppendResult, number> => ({
  baseline: median(a.baseline),
  outbox: median(a.outbox),
  outboxNoNotify: median(a.outboxNoNotify),
  secondInsert: median(a.secondInsert),
  rowOnly: median(a.rowOnly),
})
