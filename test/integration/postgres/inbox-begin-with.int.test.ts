/**
 * The inbox record sent with BEGIN (one round trip) by a PostgresUnitOfWork in a consumer's
 * delivery: the literals it is written with read back exactly, on the real server, whatever
 * `standard_conforming_strings` says; the statements that go out; and every failure path keeps
 * statements inside the transaction and the connection clean.
 */
import type pg from 'pg'
import { afterAll, afterEach, beforeEach, describe, expect, inject, it } from 'vitest'
import { deliveryScope, type DeliveryScope } from '../../../src/core/delivery-scope.js'
import { ErrorCode, isSwitchyardError } from '../../../src/index.js'
import {
  type PgPool,
  type PgPoolClient,
  PostgresInboxStore,
  PostgresUnitOfWork,
} from '../../../src/postgres/index.js'
import { pgTextLiteral } from '../../../src/sql/postgres-literal.js'
import { createPool, uniqueSchema, withPool } from '../../helpers/postgres.js'

const url = inject('services').postgres ?? null
const pool = url === null ? undefined : createPool(url)
afterAll(async () => {
  await pool?.end()
})

/** Text a message id or a consumer name could hold: quotes, escapes, comments, any Unicode. */
const HOSTILE = [
  "'",
  "''",
  "it's",
  '\\',
  '\\\\',
  "\\'",
  "'\\",
  'ends with a backslash \\',
  "x'); DROP TABLE t; --",
  "x\\'); DROP TABLE t; --",
  '$$',
  '$tag$ body $tag$',
  '-- a comment',
  '/* open comment',
  '*/',
  ';',
  "E'",
  '"double"',
  'line\nnext',
  'cr\rlf\r\n',
  'tab\t',
  '\\n not a newline',
  '\\x41 \\101 \\u0041',
  'ünïcode 😀 עברית 中文 \u200b\ufeff',
  'é (e + combining acute)',
  '\u007f\u0001\u001f',
  'x'.repeat(10_000),
]

/** Random text over an alphabet of the characters that matter, for many more cases. */
function fuzz(count: number): string[] {
  const alphabet = ["'", '\\', '$', '-', '/', '*', ';', '"', 'E', 'e', '\n', ' ', 'a', '😀', 'ß']
  let seed = 7
  const next = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed % n
  }
  return Array.from({ length: count }, () =>
    Array.from({ length: 1 + next(24) }, () => alphabet[next(alphabet.length)]!).join(''),
  )
}

const NO_DELIVERY: DeliveryScope = { join: () => Promise.resolve(true) }
/** Runs `work` as a consumer's dispatch does: a unit of work begun in it defers its BEGIN. */
const inDelivery = <T>(work: () => Promise<T>): Promise<T> => deliveryScope.run(NO_DELIVERY, work)

/** A pool whose clients record every statement text they send. */
function recording(real: pg.Pool, sent: string[]): PgPool {
  return {
    query: (text, values) => real.query(text, values),
    connect: async () => {
      const client = await real.connect()
      const recorded: PgPoolClient = {
        query: (text: string, values?: unknown[]) => {
          sent.push(text)
          return client.query(text, values)
        },
        release: (error?: Error | boolean) => client.release(error),
        on: (_event: string, listener: (error: never) => void) => {
          client.on('error', listener as (error: Error) => void)
        },
        removeListener: (_event: string, listener: (error: never) => void) => {
          client.removeListener('error', listener as (error: Error) => void)
        },
      }
      return recorded
    },
  }
}

describe.skipIf(pool === undefined)('PostgreSQL literals of the inbox record', () => {
  it.each([['on'], ['off']])(
    'read back exactly as a parameter does, with standard_conforming_strings %s',
    async (setting) => {
      const client = await pool!.connect()
      try {
        await client.query(`SET standard_conforming_strings = ${setting}`)
        for (const text of [...HOSTILE, ...fuzz(300)]) {
          const literal = pgTextLiteral(text)
          const { rows } = await client.query<{ v: string; p: string }>(
            `SELECT ${literal} AS v, $1::text AS p`,
            [text],
          )
          expect(rows[0]!.v, `literal ${JSON.stringify(literal)}`).toBe(text)
          expect(rows[0]!.v).toBe(rows[0]!.p)
        }
      } finally {
        await client.query('RESET standard_conforming_strings').catch(() => undefined)
        client.release()
      }
    },
  )

  it('keeps a lone surrogate the way a parameter does (both become U+FFFD)', async () => {
    const text = 'a\ud800b'
    const { rows } = await pool!.query<{ v: string; p: string }>(
      `SELECT ${pgTextLiteral(text)} AS v, $1::text AS p`,
      [text],
    )
    expect(rows[0]!.v).toBe(rows[0]!.p)
  })
})

describe.skipIf(pool === undefined)('PostgresUnitOfWork in a consumer delivery', () => {
  let schema: string
  let inbox: PostgresInboxStore
  let rows: string
  beforeEach(async () => {
    schema = uniqueSchema()
    inbox = new PostgresInboxStore({ pool: pool!, schema })
    await inbox.ensureSchema()
    rows = `"${schema}".effects`
    await pool!.query(`CREATE TABLE ${rows} (id serial PRIMARY KEY, note text NOT NULL)`)
  })
  afterEach(async () => {
    await pool!.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
  })

  const begin = (on: PgPool = pool!) =>
    PostgresUnitOfWork.begin({ pool: on, repositories: () => ({}) })
  const recorded = async (): Promise<{ consumer: string; message_id: string }[]> =>
    (
      await pool!.query<{ consumer: string; message_id: string }>(
        `SELECT consumer, message_id FROM "${schema}".inbox ORDER BY consumer, message_id`,
      )
    ).rows
  const effects = async (): Promise<string[]> =>
    (await pool!.query<{ note: string }>(`SELECT note FROM ${rows} ORDER BY id`)).rows.map(
      (r) => r.note,
    )

  it('sends BEGIN with the inbox record in one message, then the statements and COMMIT', async () => {
    const sent: string[] = []
    await inDelivery(async () => {
      const uow = await begin(recording(pool!, sent))
      expect(sent).toEqual([]) // BEGIN waits for the record
      expect(await inbox.tryRecord(uow.tx, 'shipping/ship', 'm-1')).toBe(true)
      await uow.tx.query(`INSERT INTO ${rows} (note) VALUES ($1)`, ['shipped'])
      await uow.commit()
    })
    expect(sent).toEqual([
      `BEGIN; INSERT INTO "${schema}"."inbox" (consumer, message_id) VALUES (E'shipping/ship', E'm-1') ON CONFLICT DO NOTHING`,
      `INSERT INTO ${rows} (note) VALUES ($1)`,
      'COMMIT',
    ])
    expect(await recorded()).toEqual([{ consumer: 'shipping/ship', message_id: 'm-1' }])
    expect(await effects()).toEqual(['shipped'])
  })

  it('records hostile ids and consumer names exactly, and finds them again', async () => {
    const ids = [...HOSTILE, ...fuzz(100)]
    const unique = [...new Set(ids)]
    for (const id of unique) {
      await inDelivery(async () => {
        const uow = await begin()
        expect(await inbox.tryRecord(uow.tx, `c/${id}`, id), JSON.stringify(id)).toBe(true)
        await uow.commit()
      })
    }
    const found = await recorded()
    expect(found.map((r) => r.message_id).sort()).toEqual([...unique].sort())
    expect(found.every((r) => r.consumer === `c/${r.message_id}`)).toBe(true)
    for (const id of unique.slice(0, 40)) {
      await inDelivery(async () => {
        const uow = await begin()
        expect(await inbox.tryRecord(uow.tx, `c/${id}`, id), JSON.stringify(id)).toBe(false)
        await uow.rollback()
      })
    }
  })

  it('forgets the record and the changes on rollback', async () => {
    await inDelivery(async () => {
      const uow = await begin()
      expect(await inbox.tryRecord(uow.tx, 'shipping/ship', 'm-1')).toBe(true)
      await uow.tx.query(`INSERT INTO ${rows} (note) VALUES ($1)`, ['shipped'])
      await uow.rollback()
    })
    expect(await recorded()).toEqual([])
    expect(await effects()).toEqual([])
  })

  it('sends neither BEGIN nor COMMIT for work that ran no statement, and frees the client', async () => {
    const sent: string[] = []
    await withPool(url!, 1, async (small) => {
      await inDelivery(async () => {
        for (let i = 0; i < 3; i++) {
          const uow = await begin(recording(small, sent))
          if (i === 1) await uow.rollback()
          else await uow.commit()
        }
      })
      expect(sent).toEqual([])
      expect(small.idleCount).toBe(1) // one connection, returned each time
    })
  })

  it('begins just before the first statement when it is not the inbox record', async () => {
    const sent: string[] = []
    await inDelivery(async () => {
      const uow = await begin(recording(pool!, sent))
      await Promise.all([
        uow.tx.query(`INSERT INTO ${rows} (note) VALUES ($1)`, ['a']),
        uow.tx.query(`INSERT INTO ${rows} (note) VALUES ($1)`, ['b']),
      ])
      // The transaction has begun: the record takes the parameterized statement.
      expect(await inbox.tryRecord(uow.tx, 'shipping/ship', 'm-1')).toBe(true)
      await uow.rollback()
    })
    expect(sent[0]).toBe('BEGIN')
    expect(sent.filter((s) => s === 'BEGIN')).toHaveLength(1)
    expect(sent.at(-1)).toBe('ROLLBACK')
    expect(sent[3]).toMatch(/VALUES \(\$1, \$2\) ON CONFLICT DO NOTHING$/)
    expect(await effects()).toEqual([]) // both inserts were inside the rolled-back transaction
    expect(await recorded()).toEqual([])
  })

  it('keeps BEGIN eager outside a delivery', async () => {
    const sent: string[] = []
    const uow = await begin(recording(pool!, sent))
    expect(sent).toEqual(['BEGIN'])
    expect(await inbox.tryRecord(uow.tx, 'shipping/ship', 'm-1')).toBe(true)
    await uow.commit()
    expect(sent).toEqual([
      'BEGIN',
      `INSERT INTO "${schema}"."inbox" (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
      'COMMIT',
    ])
  })

  it('fails the record, every later statement and the commit when BEGIN with it fails; the connection stays usable', async () => {
    const missing = new PostgresInboxStore({ pool: pool!, schema, table: 'no_such_inbox' })
    await withPool(url!, 1, async (small) => {
      await inDelivery(async () => {
        const uow = await begin(small)
        const failed = await missing
          .tryRecord(uow.tx, 'shipping/ship', 'm-1')
          .catch((e: unknown) => e)
        expect(isSwitchyardError(failed) && failed.code).toBe(ErrorCode.OutboxStore)
        expect(String((failed as Error).cause)).toMatch(/no_such_inbox/)
        await expect(uow.tx.query(`INSERT INTO ${rows} (note) VALUES ('x')`)).rejects.toThrow(
          /no_such_inbox/,
        )
        await expect(uow.commit()).rejects.toThrow(/no_such_inbox/)
        expect(uow.state).toBe('rolled-back')
      })
      expect(await effects()).toEqual([])
      // The one connection was given back clean (or replaced): a new transaction works.
      await inDelivery(async () => {
        const uow = await begin(small)
        expect(await inbox.tryRecord(uow.tx, 'shipping/ship', 'm-2')).toBe(true)
        await uow.commit()
      })
      expect(await recorded()).toEqual([{ consumer: 'shipping/ship', message_id: 'm-2' }])
    })
  })

  it('rolls back cleanly after a failed BEGIN with the record', async () => {
    const missing = new PostgresInboxStore({ pool: pool!, schema, table: 'no_such_inbox' })
    await withPool(url!, 1, async (small) => {
      await inDelivery(async () => {
        const uow = await begin(small)
        await expect(missing.tryRecord(uow.tx, 'shipping/ship', 'm-1')).rejects.toThrow()
        await uow.rollback()
      })
      const { rows: status } = await small.query<{ t: string }>(
        "SELECT CASE WHEN now() = statement_timestamp() THEN 'outside' ELSE 'inside' END AS t",
      )
      expect(status[0]!.t).toBe('outside') // no transaction left open on the connection
    })
  })

  it('takes the parameterized statement for an id with a NUL, which fails as it always did', async () => {
    const sent: string[] = []
    await inDelivery(async () => {
      const uow = await begin(recording(pool!, sent))
      const failed = await inbox
        .tryRecord(uow.tx, 'shipping/ship', 'a\u0000b')
        .catch((e: unknown) => e)
      expect(isSwitchyardError(failed) && failed.code).toBe(ErrorCode.OutboxStore)
      await uow.rollback()
    })
    expect(sent[0]).toBe('BEGIN')
    expect(sent[1]).toMatch(/VALUES \(\$1, \$2\) ON CONFLICT DO NOTHING$/)
    expect(await recorded()).toEqual([])
  })
})
