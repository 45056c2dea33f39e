// Packs the built package with `npm pack`, installs only the tarball into an empty project (no dev
// dependencies, no optional peers) and loads every `exports` entry the way a consumer would:
// with import() and with require() (Node >= 20.19 requires ESM without flags).
// Needs a built dist/: `npm test` runs `npm run build` first.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))

interface PackageJson {
  name: string
  exports: unknown
}

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson

/** The `exports` map as subpath → target; a bare string or a top-level conditions object is `.`. */
function exportsMap(value: unknown): Record<string, unknown> {
  if (typeof value === 'string' || Array.isArray(value)) return { '.': value }
  if (value === null || typeof value !== 'object') return {}
  const keys = Object.keys(value)
  return keys.every((key) => key.startsWith('.'))
    ? (value as Record<string, unknown>)
    : { '.': value }
}

const exportsEntries = exportsMap(pkg.exports)
const subpaths = Object.keys(exportsEntries).filter((key) => key !== './package.json')
const specifierOf = (subpath: string): string =>
  subpath === '.' ? pkg.name : `${pkg.name}${subpath.slice(1)}`

/** Files allowed in the tarball besides dist/. */
const ROOT_FILES = new Set(['package.json', 'README.md', 'LICENSE'])

interface PackResult {
  filename: string
  files: { path: string }[]
}

interface RunResult {
  stdout: string
  stderr: string
}

/** Runs a command to completion; throws with its output when it fails. */
function run(command: string, args: string[], cwd: string, env = process.env): RunResult {
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8' })
  if (result.error !== undefined) {
    throw new Error(
      `${command} ${args.join(' ')} (in ${cwd}) could not start: ${result.error.message}`,
    )
  }
  if (result.status !== 0) {
    throw new Error(
      [
        `${command} ${args.join(' ')} (in ${cwd}) exited with ${result.status ?? result.signal}`,
        `stdout: ${result.stdout.trim()}`,
        `stderr: ${result.stderr.trim()}`,
      ].join('\n'),
    )
  }
  return { stdout: result.stdout, stderr: result.stderr }
}

/** The environment for npm, without the location variables an outer `npm test`/`npx` run sets. */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of ['npm_config_local_prefix', 'npm_config_prefix', 'npm_package_json']) {
    delete env[key]
  }
  return env
}

/** The environment for consumer `node` processes: plain Node, no loaders from the test runner. */
function nodeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  return env
}

// Child scripts, written into the consumer project. Each prints the sorted export names as JSON.
const IMPORT_SCRIPT = `
const namespace = await import(process.argv[2])
console.log(JSON.stringify(Object.keys(namespace).sort()))
`
const REQUIRE_SCRIPT = `
'use strict'
if (!process.features.require_module) {
  console.error('require() of ES modules is not supported by Node ' + process.version + ' (need >= 20.19)')
  process.exit(2)
}
const exported = require(process.argv[2])
console.log(JSON.stringify(Object.keys(exported).filter((name) => name !== '__esModule').sort()))
`
const REQUIRE_PACKAGE_JSON_SCRIPT = `
'use strict'
const manifest = require(process.argv[2] + '/package.json')
console.log(JSON.stringify({ name: manifest.name, version: manifest.version }))
`

describe(`the packed ${pkg.name} tarball`, () => {
  const tempDirs: string[] = []
  let packed: PackResult
  let project: string

  beforeAll(() => {
    if (!existsSync(join(root, 'dist'))) {
      throw new Error(
        'dist/ is missing: run `npm run build` before the package tests (`npm test` does it for you)',
      )
    }
    const packDir = mkdtempSync(join(tmpdir(), 'switchyard-pack-'))
    tempDirs.push(packDir)
    // --ignore-scripts keeps stdout pure JSON; the build is done beforehand (checked above).
    const { stdout } = run(
      'npm',
      ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir],
      root,
      npmEnv(),
    )
    const results = JSON.parse(stdout) as PackResult[]
    expect(results).toHaveLength(1)
    packed = results[0]!
    const tarball = join(packDir, packed.filename)
    expect(existsSync(tarball), `npm pack did not write ${tarball}`).toBe(true)

    project = mkdtempSync(join(tmpdir(), 'switchyard-consumer-'))
    tempDirs.push(project)
    writeFileSync(join(project, 'package.json'), JSON.stringify({ type: 'module', private: true }))
    run(
      'npm',
      ['install', '--omit=dev', '--omit=peer', '--no-audit', '--no-fund', tarball],
      project,
      npmEnv(),
    )
    writeFileSync(join(project, 'check-import.mjs'), IMPORT_SCRIPT)
    writeFileSync(join(project, 'check-require.cjs'), REQUIRE_SCRIPT)
    writeFileSync(join(project, 'check-require-package-json.cjs'), REQUIRE_PACKAGE_JSON_SCRIPT)
  })

  afterAll(() => {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  })

  it('contains only dist/, package.json, README.md and LICENSE, and no test files', () => {
    const paths = packed.files.map((file) => file.path)
    const outside = paths.filter((path) => !path.startsWith('dist/') && !ROOT_FILES.has(path))
    expect(outside, 'files outside dist/ and the root files').toEqual([])
    expect(
      paths.filter((path) => /\.test(-d)?\./.test(path)),
      'test files',
    ).toEqual([])
    expect(
      paths.filter((path) => /(^|\/)src\//.test(path)),
      'src/ files',
    ).toEqual([])
    expect(paths).toContain('package.json')
    expect(paths).toContain('LICENSE')
    expect(paths).toContain('README.md')
    expect(paths.filter((path) => path.endsWith('.map'))).toEqual([])
  })

  it.each(subpaths)('ships the JavaScript and type declarations of exports entry %s', (subpath) => {
    const target = exportsEntries[subpath]
    expect(typeof target, `exports[${subpath}] is not a plain path`).toBe('string')
    const js = (target as string).replace(/^\.\//, '')
    const paths = packed.files.map((file) => file.path)
    expect(paths).toContain(js)
    expect(paths).toContain(js.replace(/\.js$/, '.d.ts'))
  })

  it.each(subpaths)(
    'imports exports entry %s with import() and require(), with no dev dependencies or peers installed',
    (subpath) => {
      const specifier = specifierOf(subpath)
      const imported = JSON.parse(
        run('node', ['check-import.mjs', specifier], project, nodeEnv()).stdout,
      ) as string[]
      expect(imported.length, `import('${specifier}') has no exports`).toBeGreaterThan(0)

      const required = JSON.parse(
        run('node', ['check-require.cjs', specifier], project, nodeEnv()).stdout,
      ) as string[]
      expect(required.length, `require('${specifier}') has no exports`).toBeGreaterThan(0)
      expect(required, `require('${specifier}') and import() disagree`).toEqual(imported)
    },
  )

  it(`resolves require('${pkg.name}/package.json')`, () => {
    const manifest = JSON.parse(
      run('node', ['check-require-package-json.cjs', pkg.name], project, nodeEnv()).stdout,
    ) as { name: string; version: string }
    expect(manifest.name).toBe(pkg.name)
  })
})
