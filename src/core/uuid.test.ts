import { describe, expect, it } from 'vitest'
import { uuidv7 } from './uuid.js'

describe('uuidv7', () => {
  it('has the version 7 and RFC 9562 variant bits', () => {
    for (let i = 0; i < 1000; i++) {
      expect(uuidv7()).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      )
    }
  })

  it('encodes the millisecond timestamp in the first 48 bits', () => {
    // Ahead of every id made so far in this process: ids never go back in time, so a fixed date
    // (this test had one) fails once the clock passes it.
    const ms = Date.now() + 3_600_000
    const id = uuidv7(ms)
    expect(parseInt(id.slice(0, 8) + id.slice(9, 13), 16)).toBe(ms)
  })

  it('sorts in creation order, also within one millisecond and past counter overflow', () => {
    const ids: string[] = []
    const at = Date.now() + 60_000
    for (let i = 0; i < 10_000; i++) ids.push(uuidv7(at))
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('stays ordered when the clock goes backwards', () => {
    const first = uuidv7(Date.now() + 120_000)
    const second = uuidv7(Date.now())
    expect(second > first).toBe(true)
  })
})
