/**
 * The backing services tests may need, where to find them, and the rule for a missing one:
 * with `CI` set, a missing service FAILS the run with one clear line; outside CI the tests that
 * need it are skipped with a loud banner. Addresses come from `SWITCHYARD_<SERVICE>_URL`,
 * defaulting to the loopback services of the development machines (shared/SERVICES.md).
 */
import { connect } from 'node:net'

/** A service a test may need. */
export type ServiceName = 'postgres' | 'mysql' | 'redis' | 'rabbitmq' | 'nats' | 'mqtt'

export const SERVICES: Readonly<
  Record<ServiceName, { readonly env: string; readonly defaultUrl: string }>
> = {
  postgres: { env: 'SWITCHYARD_PG_URL', defaultUrl: 'postgres://postgres@127.0.0.1:5432/test' },
  mysql: { env: 'SWITCHYARD_MYSQL_URL', defaultUrl: 'mysql://root@127.0.0.1:3306/test' },
  redis: { env: 'SWITCHYARD_REDIS_URL', defaultUrl: 'redis://127.0.0.1:6379' },
  rabbitmq: { env: 'SWITCHYARD_AMQP_URL', defaultUrl: 'amqp://guest:guest@127.0.0.1:5672' },
  nats: { env: 'SWITCHYARD_NATS_URL', defaultUrl: 'nats://127.0.0.1:4222' },
  mqtt: { env: 'SWITCHYARD_MQTT_URL', defaultUrl: 'mqtt://127.0.0.1:1883' },
}

type Env = Readonly<Record<string, string | undefined>>

/** True when running under CI (`CI` set to anything but empty, `0` or `false`). */
export function isCi(env: Env = process.env): boolean {
  const value = env.CI
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false'
}

/** The URL of a service: its environment variable, or the loopback default. */
export function serviceUrl(name: ServiceName, env: Env = process.env): string {
  const { env: variable, defaultUrl } = SERVICES[name]
  const value = env[variable]
  return value === undefined || value === '' ? defaultUrl : value
}

/** The URL with any password replaced by `***`, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparseable URL>'
  }
}

const DEFAULT_PORTS: Readonly<Record<string, number>> = {
  'postgres:': 5432,
  'postgresql:': 5432,
  'mysql:': 3306,
  'redis:': 6379,
  'amqp:': 5672,
  'nats:': 4222,
  'mqtt:': 1883,
}

/** Whether something accepts TCP connections at the URL's host and port. */
export async function probe(url: string, timeoutMs = 1000): Promise<boolean> {
  let host: string
  let port: number
  try {
    const parsed = new URL(url)
    host = parsed.hostname === '' ? '127.0.0.1' : parsed.hostname.replace(/^\[|\]$/g, '')
    port = parsed.port === '' ? (DEFAULT_PORTS[parsed.protocol] ?? 0) : Number(parsed.port)
  } catch {
    return false
  }
  if (port === 0) return false
  return new Promise<boolean>((resolve) => {
    const socket = connect({ host, port })
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** What to do about a service: use it, skip its tests (with a banner), or fail the run. */
export type ServiceDecision =
  | { readonly action: 'use'; readonly url: string }
  | { readonly action: 'skip'; readonly banner: string }
  | { readonly action: 'fail'; readonly error: Error }

/** The rule, as a pure function: available → use; missing under CI → fail; missing locally → skip. */
export function decide(
  name: ServiceName,
  url: string,
  available: boolean,
  ci: boolean,
): ServiceDecision {
  if (available) return { action: 'use', url }
  const where = `${redactUrl(url)} (set ${SERVICES[name].env} to point elsewhere)`
  if (ci) {
    return {
      action: 'fail',
      error: new Error(
        `Service ${name} is not reachable at ${where}; CI is set, so tests that need it fail instead of skipping`,
      ),
    }
  }
  const line = '!'.repeat(78)
  return {
    action: 'skip',
    banner: `\n${line}\n!! SKIPPING ${name} tests: nothing listens at ${where}.\n!! Under CI this is a failure. Start it with the command in shared/SERVICES.md.\n${line}\n`,
  }
}

/**
 * Probes a service and applies the rule: resolves with the URL to use, throws under CI when it is
 * missing, or prints the banner and resolves with undefined (skip) outside CI.
 */
export async function requireService(
  name: ServiceName,
  env: Env = process.env,
): Promise<string | undefined> {
  const url = serviceUrl(name, env)
  const decision = decide(name, url, await probe(url), isCi(env))
  switch (decision.action) {
    case 'use':
      return decision.url
    case 'fail':
      throw decision.error
    case 'skip':
      process.stderr.write(decision.banner)
      return undefined
  }
}
