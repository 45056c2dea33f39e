/** The test-runner functions a conformance suite uses: vitest's, jest's, node:test's, mocha's… */
export interface SuiteRunner {
  describe(name: string, body: () => void): void
  /** Registers a test; `it.skip`, when the runner has it, registers a skipped one (shown as skipped). */
  it: ((name: string, body: () => Promise<void>) => void) & {
    skip?: (name: string, body: () => Promise<void>) => void
  }
  beforeEach(body: () => Promise<void>): void
  afterEach(body: () => Promise<void>): void
}

/** Registers `body` as a test, or as a skipped one naming `reason`. */
export function register(
  t: SuiteRunner,
  name: string,
  body: () => Promise<void>,
  reason: string | undefined,
): void {
  if (reason === undefined) t.it(name, body)
  else if (t.it.skip !== undefined) t.it.skip(`${name} (skipped: ${reason})`, body)
  else t.it(`${name} (skipped: ${reason})`, () => Promise.resolve())
}
