/**
 * UUIDv7 (RFC 9562): a 48-bit Unix millisecond timestamp, then a 12-bit counter (method 1 of
 * RFC 9562 §6.2, seeded at random each millisecond), then 62 random bits. Ids made in one process
 * sort in creation order, also within one millisecond; if the counter overflows, the timestamp
 * moves on by one millisecond so order still holds.
 *
 * Hand-written (about 40 lines) because Node 20 has only `randomUUID()` (v4) and this is on the
 * path of every message created; random bytes come from a pooled `randomFillSync` buffer.
 */
import { randomFillSync } from 'node:crypto'

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const POOL_SIZE = 4096
const pool = Buffer.allocUnsafe(POOL_SIZE)
let poolOffset = POOL_SIZE

let lastMs = -1
let counter = 0

function randomBytes(count: number): number {
  if (poolOffset + count > POOL_SIZE) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const at = poolOffset
  poolOffset += count
  return at
}

/** A new time-ordered UUIDv7 string, e.g. `0190b6e2-7c1a-7d3e-9f4b-2a6c8e0d1f23`. */
export function uuidv7(now: number = Date.now()): string {
  let ms = now
  if (ms > lastMs) {
    const r = randomBytes(2)
    // Seed the counter in the lower half of its range so it has room to grow within the ms.
    counter = ((pool[r]! << 8) | pool[r + 1]!) & 0x7ff
    lastMs = ms
  } else {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      counter = 0
      ms = ++lastMs
    }
  }
  const r = randomBytes(8)
  const high = Math.floor(ms / 0x10000)
  const low = ms & 0xffff
  return (
    HEX[(high >>> 24) & 0xff]! +
    HEX[(high >>> 16) & 0xff]! +
    HEX[(high >>> 8) & 0xff]! +
    HEX[high & 0xff]! +
    '-' +
    HEX[(low >>> 8) & 0xff]! +
    HEX[low & 0xff]! +
    '-' +
    HEX[0x70 | (counter >>> 8)]! +
    HEX[counter & 0xff]! +
    '-' +
    HEX[0x80 | (pool[r]! & 0x3f)]! +
    HEX[pool[r + 1]!]! +
    '-' +
    HEX[pool[r + 2]!]! +
    HEX[pool[r + 3]!]! +
    HEX[pool[r + 4]!]! +
    HEX[pool[r + 5]!]! +
    HEX[pool[r + 6]!]! +
    HEX[pool[r + 7]!]!
  )
}
