/**
 * The RabbitMQ benchmark's report: one table of figures, one of ratios against their targets
 * (PASS / MISS / info), and one JSON line with every figure.
 */
import { fmt, median, spreadPercent, table } from '../dispatch/harness.js'
import type { ConsumerBenchResult } from './consumer.js'
import type { BatchSplit, RelayBenchResult } from './relay.js'
import type { Samples } from './samples.js'

/** Targets of the brief. */
export const TARGETS = { relay: 0.6, consumer: 0.8 } as const

export type RabbitMqFigures =
  | { readonly skipped: string }
  | {
      readonly skipped?: undefined
      /** PostgreSQL settings and RabbitMQ's version. */
      readonly services: string
      /** 1-minute load average before and after. */
      readonly load: { readonly before: number; readonly after: number }
      readonly relay: RelayBenchResult
      readonly consumer: ConsumerBenchResult
    }

export interface RabbitMqRunInfo {
  readonly quick: boolean
  readonly platform: string
  readonly config: Readonly<Record<string, number>>
  readonly minutes: number
}

interface Ratio {
  readonly name: string
  readonly top: Samples
  readonly bottom: Samples
  readonly target: number | undefined
}

type Measured = Exclude<RabbitMqFigures, { readonly skipped: string }>

function ratiosOf(f: Measured): Ratio[] {
  const { relay, consumer } = f
  return [
    {
      name: 'relay, 4 × 250 in flight / bare publish',
      top: relay.relay,
      bottom: relay.bare,
      target: TARGETS.relay,
    },
    {
      name: 'relay, defaults (1 × 100) / bare publish (info)',
      top: relay.relaySerial,
      bottom: relay.bare,
      target: undefined,
    },
    {
      name: 'consumer + inbox / bare consume + INSERT',
      top: consumer.consumer,
      bottom: consumer.bare,
      target: TARGETS.consumer,
    },
    {
      name: 'consumer + inbox / bare + hand-written inbox (info)',
      top: consumer.consumer,
      bottom: consumer.bareInbox,
      target: undefined,
    },
    {
      name: 'bare + hand-written inbox / bare (info)',
      top: consumer.bareInbox,
      bottom: consumer.bare,
      target: undefined,
    },
  ]
}

const valueOf = (r: Ratio): number => median(r.top.perSecond) / median(r.bottom.perSecond)

export function printRabbitMqReport(f: RabbitMqFigures, info: RabbitMqRunInfo): void {
  const settings = Object.entries(info.config).map(([name, value]) => `${name}=${value}`)
  const title = info.quick
    ? 'switchyard-bus RabbitMQ benchmark (BENCH_QUICK: smoke run, figures are rough)'
    : 'switchyard-bus RabbitMQ benchmark'
  const minutes = `whole run ${fmt(info.minutes, 1)} min`
  console.log(['', title, info.platform, `${settings.join(', ')}; ${minutes}`, ''].join('\n'))
  if (f.skipped !== undefined) {
    console.log(`SKIPPED: ${f.skipped}`)
    return
  }
  const { relay, consumer } = f
  console.log(f.services)
  console.log(`load average (1 min) ${fmt(f.load.before, 2)} before, ${fmt(f.load.after, 2)} after`)
  console.log('')
  const row = (label: string, { perSecond, cpuMicros }: Samples): string[] => [
    label,
    fmt(median(perSecond), 0),
    fmt(Math.min(...perSecond), 0),
    fmt(Math.max(...perSecond), 0),
    `±${fmt(spreadPercent(perSecond))}%`,
    fmt(median(cpuMicros), 1),
  ]
  const c = consumer.concurrency
  console.log(
    table(
      ['case (messages per second)', 'median', 'min', 'max', 'MAD', 'node CPU µs/msg'],
      [
        row('relay: bare amqplib, 1,000 confirms in flight', relay.bare),
        row('relay: OutboxRelay batch 250 × concurrency 4 → RabbitMqTransport', relay.relay),
        row('relay: OutboxRelay defaults, batch 100 × 1 (info)', relay.relaySerial),
        row(`consume: bare amqplib, prefetch ${c}, BEGIN; INSERT; COMMIT`, consumer.bare),
        row('consume: bare + hand-written inbox INSERT (info)', consumer.bareInbox),
        row(`consume: Consumer + inbox + PostgresUnitOfWork, concurrency ${c}`, consumer.consumer),
      ],
    ),
  )
  console.log('')
  const where = (label: string, b: BatchSplit): string =>
    `${label}: ${fmt(median(b.publishMs), 2)} ms per publish (confirms included, ` +
    `${fmt(median(b.publishShare) * 100, 0)}% of the relay's busy time), ${fmt(median(b.storeMs), 2)} ms per batch in the store (claim + mark)`
  console.log(
    `relay: ${relay.rows.toLocaleString('en-US')} rows per drain, keys from ${relay.keys.toLocaleString('en-US')}`,
  )
  console.log(`  ${where('250 × 4', relay.split.relay)}`)
  console.log(`  ${where('100 × 1', relay.split.relaySerial)}`)
  console.log(
    `consume: ${consumer.messages.toLocaleString('en-US')} messages per drain, one pg pool of ${c} connections on both sides`,
  )
  console.log('')
  const ratios = ratiosOf(f)
  console.log(
    table(
      ['ratio / target', 'measured', 'target', 'result'],
      ratios.map((r) => [
        r.name,
        shown(r),
        r.target === undefined ? '-' : `≥ ${fmt(r.target, 2)}×`,
        r.target === undefined ? 'info' : valueOf(r) >= r.target ? 'PASS' : 'MISS',
      ]),
    ),
  )
  const scored = ratios.filter((r) => r.target !== undefined)
  const met = scored.filter((r) => valueOf(r) >= r.target!).length
  console.log('')
  console.log(
    `${met}/${scored.length} targets met${met < scored.length ? ` (${scored.length - met} MISS)` : ''}.`,
  )
}

/** The ratio of medians, then the range of the ratios of single rounds (run back to back). */
function shown(r: Ratio): string {
  const perRound = r.top.perSecond.map((t, i) => t / r.bottom.perSecond[i]!)
  const low = Math.min(...perRound)
  const high = Math.max(...perRound)
  return `${fmt(valueOf(r), 2)}× (rounds ${fmt(low, 2)}–${fmt(high, 2)})`
}

/** One line of JSON with every figure, for tooling. */
export function printRabbitMqJson(f: RabbitMqFigures, quick: boolean): void {
  const out: Record<string, unknown> = {
    bench: 'switchyard-bus/rabbitmq',
    quick,
    node: process.version,
    at: new Date().toISOString(),
  }
  if (f.skipped !== undefined) out.skipped = f.skipped
  else {
    out.services = f.services
    out.load = f.load
    out.relay = f.relay
    out.consumer = f.consumer
    out.ratios = Object.fromEntries(ratiosOf(f).map((r) => [r.name, valueOf(r)]))
  }
  console.log(JSON.stringify(out, thousandths))
}

/** JSON replacer: numbers to three decimals, so the line stays short. */
function thousandths(_key: string, value: unknown): unknown {
  return typeof value === 'number' ? Math.round(value * 1000) / 1000 : value
}
