#!/usr/bin/env node
// Checks that package.json `exports` and the src/ folders agree (run from anywhere:
// `node scripts/check-exports.mjs`). Exits 1 with one line per problem.
//
// Rules:
// - `.` points to ./dist/index.js and src/index.ts exists.
// - Every other key `./<x>` (except ./package.json) points to ./dist/<x>/index.js and
//   src/<x>/index.ts exists; <x> is never one of the internal folders.
// - Every public folder src/<folder>/index.ts has an `./<folder>` entry. Public folders are the
//   folders directly under src/ that contain an index.ts, except the internal ones below.
// - `./package.json` points to ./package.json.
// - `type` is "module", `sideEffects` is false, `engines.node` is ">=20.19".
// Node globals are imported explicitly: the ESLint config declares no Node globals for .mjs files.
import console from 'node:console'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import process from 'node:process'
import { fileURLToPath, URL } from 'node:url'

/** Folders under src/ that are implementation detail: never exported, even with an index.ts. */
const INTERNAL_FOLDERS = new Set(['core', 'outbox', 'transport', 'sql'])
const ENGINES_NODE = '>=20.19'

const root = fileURLToPath(new URL('..', import.meta.url))
const src = join(root, 'src')
const problems = []

let pkg
try {
  pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
} catch (error) {
  console.error(`package.json: cannot read or parse: ${String(error)}`)
  process.exit(1)
}

if (pkg.type !== 'module') {
  problems.push(`package.json: "type" must be "module" (is ${JSON.stringify(pkg.type)})`)
}
if (pkg.sideEffects !== false) {
  problems.push(`package.json: "sideEffects" must be false (is ${JSON.stringify(pkg.sideEffects)})`)
}
if (pkg.engines?.node !== ENGINES_NODE) {
  problems.push(
    `package.json: "engines.node" must be "${ENGINES_NODE}" (is ${JSON.stringify(pkg.engines?.node)})`,
  )
}

const exportsMap = pkg.exports
const isMap =
  exportsMap !== null &&
  typeof exportsMap === 'object' &&
  !Array.isArray(exportsMap) &&
  Object.keys(exportsMap).length > 0 &&
  Object.keys(exportsMap).every((key) => key.startsWith('.'))

if (!isMap) {
  problems.push(
    `package.json: "exports" must be an object of subpaths ("." , "./<folder>", "./package.json") (is ${JSON.stringify(exportsMap)})`,
  )
} else {
  for (const [key, target] of Object.entries(exportsMap)) {
    if (key === './package.json') {
      if (target !== './package.json') {
        problems.push(
          `exports["./package.json"]: must be "./package.json" (is ${JSON.stringify(target)})`,
        )
      }
      continue
    }
    if (key !== '.' && !/^\.\/[a-z0-9][a-z0-9._-]*(\/[a-z0-9][a-z0-9._-]*)*$/i.test(key)) {
      problems.push(
        `exports[${JSON.stringify(key)}]: key must be "." or "./<folder>" (no wildcards, no trailing slash)`,
      )
      continue
    }
    const folder = key === '.' ? '' : key.slice(2)
    const expectedTarget = key === '.' ? './dist/index.js' : `./dist/${folder}/index.js`
    const source = key === '.' ? 'src/index.ts' : `src/${folder}/index.ts`
    const topFolder = folder.split('/')[0]
    if (topFolder !== undefined && INTERNAL_FOLDERS.has(topFolder)) {
      problems.push(
        `exports[${JSON.stringify(key)}]: src/${topFolder} is internal and must not be exported`,
      )
    }
    if (target !== expectedTarget) {
      problems.push(
        `exports[${JSON.stringify(key)}]: must be "${expectedTarget}" (is ${JSON.stringify(target)})`,
      )
    }
    if (!existsSync(join(root, source))) {
      problems.push(`exports[${JSON.stringify(key)}]: source ${source} does not exist`)
    }
  }
  if (!('./package.json' in exportsMap)) {
    problems.push(`exports: missing "./package.json": "./package.json"`)
  }
}

const exportedKeys = isMap ? new Set(Object.keys(exportsMap)) : new Set()
let folders = []
try {
  folders = readdirSync(src, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
} catch (error) {
  problems.push(`src/: cannot read: ${String(error)}`)
}
for (const folder of folders) {
  if (INTERNAL_FOLDERS.has(folder)) continue
  if (!existsSync(join(src, folder, 'index.ts'))) continue
  if (!exportedKeys.has(`./${folder}`)) {
    problems.push(
      `src/${folder}/index.ts: public folder has no exports entry (add "./${folder}": "./dist/${folder}/index.js")`,
    )
  }
}

if (problems.length > 0) {
  for (const problem of problems) console.error(problem)
  console.error(`exports check failed: ${problems.length} problem(s)`)
  process.exit(1)
}
console.log(`exports ok: ${exportedKeys.size} entries`)
