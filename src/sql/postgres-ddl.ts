/**
 * @internal How the PostgreSQL and PGlite stores run their DDL in `ensureSchema`: every statement
 * in one `DO` block, so one implicit transaction on one connection, serialised by an advisory lock
 * per schema that the outbox's and the inbox's DDL share, so concurrent callers cannot race on the
 * catalog, even when both create the schema.
 */
import { pgTextLiteral } from './postgres-literal.js'

/** The `DO` block; `schema` is the quoted, validated schema name, the statements the store's own. */
export function lockedDdl(schema: string, statements: readonly string[]): string {
  const body = statements.map((statement) => `EXECUTE $ddl$${statement}$ddl$;`).join('\n')
  const lock = pgTextLiteral(`switchyard-ddl:${schema}`)
  return `DO $switchyard$ BEGIN PERFORM pg_advisory_xact_lock(hashtext(${lock})); ${body} END $switchyard$`
}
