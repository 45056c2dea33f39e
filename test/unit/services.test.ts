import { createServer, type Server } from 'node:net'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { decide, isCi, probe, redactUrl, requireService, serviceUrl } from '../helpers/services.js'

let server: Server
let openPort = 0
let closedPort = 0

beforeAll(async () => {
  server = createServer((socket) => socket.end())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  openPort = (server.address() as { port: number }).port
  const spare = createServer()
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve))
  closedPort = (spare.address() as { port: number }).port
  await new Promise<void>((resolve) => spare.close(() => resolve()))
})

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('the missing-service rule', () => {
  it('fails the run under CI when a service is missing, never skips', async () => {
    const env = { CI: 'true', SWITCHYARD_PG_URL: `postgres://u:secret@127.0.0.1:${closedPort}/db` }
    await expect(requireService('postgres', env)).rejects.toThrow(
      /Service postgres is not reachable at .*CI is set/,
    )
    await expect(requireService('postgres', env)).rejects.not.toThrow(/secret/)
  })

  it('skips with a loud banner outside CI', async () => {
    const write = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    try {
      const env = { SWITCHYARD_REDIS_URL: `redis://127.0.0.1:${closedPort}` }
      await expect(requireService('redis', env)).resolves.toBeUndefined()
      expect(String(write.mock.calls[0]?.[0])).toMatch(/SKIPPING redis tests/)
    } finally {
      write.mockRestore()
    }
  })

  it('uses a reachable service, under CI or not', async () => {
    const url = `nats://127.0.0.1:${openPort}`
    await expect(requireService('nats', { CI: 'true', SWITCHYARD_NATS_URL: url })).resolves.toBe(
      url,
    )
    await expect(requireService('nats', { SWITCHYARD_NATS_URL: url })).resolves.toBe(url)
  })

  it('decides purely from availability and CI', () => {
    expect(decide('mysql', 'mysql://x', true, true).action).toBe('use')
    expect(decide('mysql', 'mysql://x', false, true).action).toBe('fail')
    expect(decide('mysql', 'mysql://x', false, false).action).toBe('skip')
  })
})

describe('service configuration', () => {
  it('reads SWITCHYARD_*_URL and falls back to the loopback defaults', () => {
    expect(serviceUrl('postgres', {})).toBe('postgres://postgres@127.0.0.1:5432/test')
    expect(serviceUrl('rabbitmq', { SWITCHYARD_AMQP_URL: 'amqp://h:1' })).toBe('amqp://h:1')
  })

  it('recognises CI from the CI variable', () => {
    expect(isCi({ CI: 'true' })).toBe(true)
    expect(isCi({ CI: '1' })).toBe(true)
    expect(isCi({ CI: 'false' })).toBe(false)
    expect(isCi({ CI: '' })).toBe(false)
    expect(isCi({})).toBe(false)
  })

  it('never shows a password', () => {
    expect(redactUrl('amqp://guest:hunter2@127.0.0.1:5672')).toBe('amqp://guest:***@127.0.0.1:5672')
  })

  it('probes TCP reachability', async () => {
    expect(await probe(`redis://127.0.0.1:${openPort}`)).toBe(true)
    expect(await probe(`redis://127.0.0.1:${closedPort}`)).toBe(false)
    expect(await probe('not a url')).toBe(false)
  })
})
