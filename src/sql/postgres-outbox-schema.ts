/**
 * The DDL of the PostgreSQL (and PGlite) outbox. Printable for users who run their own migrations:
 * `outboxSchemaSql({ schema, table })`.
 */
import { ConfigurationError } from '../errors.js'
import { validateIdentifier } from './sql-executor.js'

/** Where the outbox lives. */
export interface PostgresOutboxNames {
  /** Default `switchyard`. */
  readonly schema?: string
  /**
   * Default `outbox`; the key counter table is `<table>_keys`, the table of stored message ids
   * `<table>_ids`.
   */
  readonly table?: string
  /**
   * The outbox table's fill factor, 10–100: how full an insert leaves a page. Default 50: the
   * free half lets a claim (which changes no indexed column) update its rows in place, a HOT
   * update with no new index entries, which drains about 1.6× faster here than at 100, for twice
   * the space per row until cleanup. Applies when `ensureSchema` creates the table; for a table
   * that exists, `ALTER TABLE … SET (fillfactor = n)` (new pages only).
   */
  readonly fillFactor?: number
}

/** @internal Validated, quoted names. */
export interface QualifiedNames {
  readonly schema: string
  readonly outbox: string
  readonly keys: string
  readonly ids: string
  /** The NOTIFY channel (unquoted, validated). */
  readonly channel: string
}

export function qualify(names: PostgresOutboxNames = {}): QualifiedNames {
  const schema = validateIdentifier(names.schema ?? 'switchyard', 'schema')
  const table = validateIdentifier(names.table ?? 'outbox', 'table')
  validateIdentifier(`${table}_keys`, 'table (with its _keys suffix)')
  validateIdentifier(`${table}_ids`, 'table (with its _ids suffix)')
  return {
    schema: `"${schema}"`,
    outbox: `"${schema}"."${table}"`,
    keys: `"${schema}"."${table}_keys"`,
    ids: `"${schema}"."${table}_ids"`,
    channel: `${schema}_${table}`.slice(0, 63),
  }
}

/** @internal The table's fill factor: the option, checked (a `ConfigurationError`), or 50. */
export function fillFactorOf(names: PostgresOutboxNames): number {
  const fillFactor = names.fillFactor ?? 50
  if (!Number.isInteger(fillFactor) || fillFactor < 10 || fillFactor > 100)
    throw new ConfigurationError(
      `fillFactor must be a whole number from 10 to 100; got ${String(fillFactor)}`,
      { details: { option: 'fillFactor' } },
    )
  return fillFactor
}

/** The statements that create the outbox, in order. Every one is idempotent. */
export function outboxSchemaSql(names: PostgresOutboxNames = {}): string[] {
  const q = qualify(names)
  const fillFactor = fillFactorOf(names)
  const index = (suffix: string): string => `"${(names.table ?? 'outbox').slice(0, 40)}_${suffix}"`
  return [
    `CREATE SCHEMA IF NOT EXISTS ${q.schema}`,
    // The primary key is `seq`, the order claims take rows in: a row's claim token carries it, so
    // marks find rows by an 8-byte key. Marking a row published is not a HOT update (it changes
    // `state`, which the partial indexes filter on), so it writes a new entry in every index that
    // holds published rows: here only this one and `published`. The message id has no index of
    // its own here (a unique one cost the relay ~15%: an entry per mark): the `_ids` table below
    // keeps ids unique, and `dead` finds dead rows by id.
    // A claim leaves `state` alone (the lease lives in `lease_token` and `available_at`), so
    // claiming writes no index entry at all.
    `CREATE TABLE IF NOT EXISTS ${q.outbox} (
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id           text NOT NULL,
  topic        text NOT NULL,
  key          text,
  key_seq      bigint,
  type         text NOT NULL,
  body         bytea NOT NULL,
  headers      jsonb NOT NULL DEFAULT '{}',
  state        text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'published', 'dead', 'skipped')),
  attempts     integer NOT NULL DEFAULT 0,
  available_at timestamptz NOT NULL DEFAULT now(),
  lease_owner  text,
  lease_token  uuid,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  published_at timestamptz
) WITH (fillfactor = ${fillFactor})`,
    `CREATE TABLE IF NOT EXISTS ${q.keys} (
  key      text PRIMARY KEY,
  last_seq bigint NOT NULL
)`,
    // The ids of the rows stored: an append inserts them with the rows (a duplicate fails the
    // append), cleanup deletes them with the rows. Marks never touch this table.
    `CREATE TABLE IF NOT EXISTS ${q.ids} (
  id text PRIMARY KEY
)`,
    `CREATE INDEX IF NOT EXISTS ${index('due')} ON ${q.outbox} (seq) WHERE state = 'pending'`,
    // The head-of-line check looks for an earlier unpublished row of the key: without this index
    // it reads every earlier row of the key, published ones included.
    `CREATE INDEX IF NOT EXISTS ${index('open_keys')} ON ${q.outbox} (key, key_seq) WHERE key IS NOT NULL AND state IN ('pending', 'dead')`,
    `CREATE INDEX IF NOT EXISTS ${index('published')} ON ${q.outbox} (published_at) WHERE state = 'published'`,
    // `retry(ids)` and `skip(ids)` name dead rows by message id.
    `CREATE INDEX IF NOT EXISTS ${index('dead')} ON ${q.outbox} (id) WHERE state = 'dead'`,
  ]
}
