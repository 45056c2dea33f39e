/**
 * Doc snippets are compiled files: a code block in README.md or docs/ that follows a marker
 * `<!-- snippet: path/to/file.ts -->` must equal that file, which `npm run typecheck` compiles.
 * Every file in docs/snippets/ is also run here, each in its own Node process that must exit 0,
 * so a snippet whose (async) assertions fail fails the build.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { requireService, SERVICES, type ServiceName } from '../test/helpers/services.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const pages = [
  'README.md',
  ...readdirSync(`${root}docs`, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
const MARKER = /<!-- snippet: (\S+) -->\s*```ts\n([\s\S]*?)```/g

const markers = pages.flatMap((page) =>
  [...readFileSync(`${root}${page}`, 'utf8').matchAll(MARKER)].map((m) => ({
    page,
    file: m[1]!,
    code: m[2]!,
  })),
)

describe('doc snippets', () => {
  it('has snippet markers in the README (the quickstart)', () => {
    expect(
      markers.some(
        (m) => m.page === 'README.md' && m.file === 'examples/01-in-memory-bus/quickstart.ts',
      ),
    ).toBe(true)
  })

  it.each(markers.map((m) => [`${m.page} → ${m.file}`, m] as const))(
    '%s matches the compiled file',
    (_name, m) => {
      expect(m.code).toBe(readFileSync(`${root}${m.file}`, 'utf8'))
    },
  )

  const snippets = readdirSync(`${root}docs/snippets`).filter(
    (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
  )
  it.for(snippets)('docs/snippets/%s runs and exits 0', { timeout: 60_000 }, async (file, ctx) => {
    // Snippets that talk to a service (they read its SWITCHYARD_*_URL) follow the service rule:
    // fail under CI, loud skip locally.
    const source = readFileSync(`${root}docs/snippets/${file}`, 'utf8')
    for (const service of Object.keys(SERVICES) as ServiceName[]) {
      if (source.includes(SERVICES[service].env) && (await requireService(service)) === undefined) {
        ctx.skip()
        return
      }
    }
    const run = spawnSync(process.execPath, ['--import', 'tsx', `docs/snippets/${file}`], {
      cwd: root,
      encoding: 'utf8',
      timeout: 60_000,
    })
    expect(run.status, `${file} failed:\n${run.stdout}\n${run.stderr}`).toBe(0)
  })
})
