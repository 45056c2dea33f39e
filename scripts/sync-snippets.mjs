#!/usr/bin/env node
// Rewrites every code block that follows a `<!-- snippet: path/to/file.ts -->` marker in README.md
// and docs/**/*.md with the file's current content. Run after editing a snippet:
// `npm run docs:sync`. docs/snippets.test.ts checks that the blocks and files agree.
import console from 'node:console'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, URL } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const pages = [
  'README.md',
  ...readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.md'))
    .map((f) => join('docs', f)),
]
const MARKER = /(<!-- snippet: (\S+) -->\s*```ts\n)([\s\S]*?)```/g
let changed = 0
for (const page of pages) {
  const path = join(root, page)
  const text = readFileSync(path, 'utf8')
  const next = text.replace(
    MARKER,
    (_all, head, file) => `${head}${readFileSync(join(root, file), 'utf8')}\`\`\``,
  )
  if (next !== text) {
    writeFileSync(path, next)
    changed++
    console.log(`updated ${page}`)
  }
}
console.log(`${changed} page(s) updated`)
