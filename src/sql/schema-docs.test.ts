import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { mysqlInboxSchemaSql, mysqlOutboxSchemaSql } from '../mysql/index.js'
import { inboxSchemaSql, outboxSchemaSql } from '../postgres/index.js'

const page = (name: string): string =>
  readFileSync(new URL(`../../docs/stores/${name}.md`, import.meta.url), 'utf8')

/** The store pages print the DDL the stores create: every statement, verbatim. */
describe('the DDL on the store pages', () => {
  const cases = [
    ['postgres', [...outboxSchemaSql(), ...inboxSchemaSql()]],
    ['pglite', [...outboxSchemaSql(), ...inboxSchemaSql()]],
    ['mysql', [...mysqlOutboxSchemaSql(), ...mysqlInboxSchemaSql()]],
  ] as const
  it.each(cases)('docs/stores/%s.md shows every statement ensureSchema runs', (name, ddl) => {
    const text = page(name)
    for (const statement of ddl) expect(text).toContain(`${statement};`)
  })
})
