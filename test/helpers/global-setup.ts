/**
 * Probes each service the integration tests need, once per run, and provides its URL (or null).
 * Under CI a missing service fails the run here, with one clear line; locally the tests that need
 * it skip with a loud banner (see services.ts).
 */
import type { TestProject } from 'vitest/node'
import { requireService, type ServiceName } from './services.js'

const NEEDED: readonly ServiceName[] = ['postgres', 'mysql', 'rabbitmq']

export default async function setup(project: TestProject): Promise<void> {
  const urls: Partial<Record<ServiceName, string | null>> = {}
  for (const name of NEEDED) urls[name] = (await requireService(name)) ?? null
  project.provide('services', urls)
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Partial<Record<ServiceName, string | null>>
  }
}
