import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { BusRecorder, BusSpecification } from 'switchyard-bus/testing'
import { describe, expect, it } from 'vitest'
import { AddBatch, Allocate, Allocated, GetAllocations, OutOfStock } from './domain.js'
import { createService } from './service.js'

const spec = BusSpecification.for(() => createService().bus).given(
  AddBatch({ ref: 'b1', sku: 'LAMP', qty: 10 }),
)

describe('the allocation service', () => {
  it('allocates to a batch with room and publishes Allocated', async () => {
    await spec.when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 4 })).thenReturns('b1')
    await spec
      .when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 4 }))
      .thenPublished(Allocated, { orderId: 'o1', batchRef: 'b1' })
  })

  it('records OutOfStock when no batch has room, and allocates nothing', async () => {
    await spec
      .when(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 11 }))
      .then(({ result, published }) => {
        expect(result).toBeUndefined()
        expect(published.map((e) => e.type)).toEqual(['OutOfStock'])
      })
  })

  it('rejects an unknown sku and publishes nothing', async () => {
    await spec
      .when(Allocate({ orderId: 'o1', sku: 'SOFA', qty: 1 }))
      .then(({ failed, error, published }) => {
        expect(failed).toBe(true)
        expect(String(error)).toContain('Invalid sku SOFA')
        expect(published).toEqual([])
      })
  })

  it('updates the read model from the Allocated event', async () => {
    await spec
      .given(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 1 }))
      .when(GetAllocations({ orderId: 'o1' }))
      .thenReturns(['b1'])
  })

  it('lets a test override a dependency for one scenario', async () => {
    const notes: string[] = []
    const { bus } = createService()
    await bus.execute(AddBatch({ ref: 'b1', sku: 'LAMP', qty: 1 }))
    {
      using _fake = bus.override('notify', () => (text: string) => void notes.push(text))
      using recorder = BusRecorder.attach(bus)
      await bus.execute(Allocate({ orderId: 'o1', sku: 'LAMP', qty: 5 }))
      recorder.expectPublished(OutOfStock, { sku: 'LAMP' })
    }
    await bus.execute(Allocate({ orderId: 'o2', sku: 'LAMP', qty: 5 }))
    expect(notes).toEqual(['out of stock: LAMP'])
  })

  it('runs main.ts and prints the expected output', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    const output = execFileSync(
      process.execPath,
      ['--import', 'tsx', 'examples/02-unit-of-work-and-aggregates/main.ts'],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      },
    )
    let from = 0
    for (const pattern of readFileSync(new URL('./expected-output.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean)) {
      const match = new RegExp(pattern).exec(output.slice(from))
      expect(match, `expected /${pattern}/ in:\n${output}`).not.toBeNull()
      from += match!.index + match![0].length
    }
  }, 60_000)
})
