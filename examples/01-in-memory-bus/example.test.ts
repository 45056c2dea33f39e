import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const run = (file: string): string =>
  execFileSync(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })

/** Asserts each pattern matches the output, in order. */
function expectInOrder(output: string, patterns: readonly string[]): void {
  let from = 0
  for (const pattern of patterns) {
    const match = new RegExp(pattern).exec(output.slice(from))
    expect(match, `expected /${pattern}/ after position ${from} in:\n${output}`).not.toBeNull()
    from += match!.index + match![0].length
  }
}

describe('example 01-in-memory-bus', () => {
  it('runs the demo and prints the expected output', () => {
    const patterns = readFileSync(new URL('./expected-output.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter(Boolean)
    expectInOrder(run('examples/01-in-memory-bus/main.ts'), patterns)
  }, 60_000)

  it('runs the README quickstart', () => {
    expectInOrder(run('examples/01-in-memory-bus/quickstart.ts'), [
      'allocated order-1 to batch-lamp',
      'execute resolved with batch-lamp, after every follow-up ran',
    ])
  }, 60_000)
})
