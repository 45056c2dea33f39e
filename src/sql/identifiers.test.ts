import { describe, expect, it } from 'vitest'
import { ErrorCode, isSwitchyardError, validateIdentifier } from '../index.js'
import { MysqlInboxStore, MysqlOutboxStore } from '../mysql/index.js'
import { PgliteOutboxStore } from '../pglite/index.js'
import { outboxSchemaSql, PostgresInboxStore, PostgresOutboxStore } from '../postgres/index.js'

const hostile = [
  'outbox"; DROP TABLE t; --',
  'outbox`; DROP TABLE t; --',
  "out'box",
  'out%box',
  'out box',
  'outbox;',
  '1outbox',
  '',
  'x'.repeat(64),
  'ünïcode',
  'a'.repeat(62) + 'é', // 64 bytes
]
const never = (): never => {
  throw new Error('no SQL may run for a rejected name')
}
const pool = { query: never, connect: never, getConnection: never } as never

/** What `attempt` threw, synchronously (undefined if it returned): refusals come before any SQL. */
function thrown(attempt: () => unknown): unknown {
  try {
    attempt()
  } catch (error) {
    return error
  }
  return undefined
}

describe('identifier validation (RELIABILITY T22)', () => {
  it.each(hostile)('refuses %j with a ConfigurationError before any SQL runs', (name) => {
    const attempts = [
      () => validateIdentifier(name, 'table'),
      () => new PostgresOutboxStore({ pool, table: name }),
      () => new PostgresOutboxStore({ pool, schema: name }),
      () => new PostgresInboxStore({ pool, table: name }),
      () => new PgliteOutboxStore({ db: pool, schema: name }),
      () => new MysqlOutboxStore({ pool, table: name }),
      () => new MysqlOutboxStore({ pool, database: name }),
      () => new MysqlInboxStore({ pool, table: name }),
      () => outboxSchemaSql({ table: name }),
    ]
    for (const attempt of attempts)
      expect(isSwitchyardError(thrown(attempt), ErrorCode.Configuration)).toBe(true)
  })

  it('accepts ordinary names and quotes them in the DDL', () => {
    expect(validateIdentifier('orders_outbox_2', 'table')).toBe('orders_outbox_2')
    expect(validateIdentifier('_private', 'table')).toBe('_private')
    const ddl = outboxSchemaSql({ schema: 'Billing', table: 'Outbox' }).join('\n')
    expect(ddl).toContain('"Billing"."Outbox"')
  })
})

describe('outbox fill factor', () => {
  it('is 50 by default, takes 10 to 100, and refuses anything else before any SQL runs', () => {
    expect(outboxSchemaSql().join('\n')).toContain('WITH (fillfactor = 50)')
    expect(outboxSchemaSql({ fillFactor: 100 }).join('\n')).toContain('WITH (fillfactor = 100)')
    for (const fillFactor of [9, 101, 50.5, Number.NaN, '50; DROP TABLE t' as unknown as number]) {
      for (const attempt of [
        () => outboxSchemaSql({ fillFactor }),
        () => new PostgresOutboxStore({ pool, fillFactor }),
        () => new PgliteOutboxStore({ db: pool, fillFactor }),
      ])
        expect(isSwitchyardError(thrown(attempt), ErrorCode.Configuration)).toBe(true)
    }
  })
})
