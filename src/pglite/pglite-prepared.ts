/**
 * @internal A `SqlExecutor` over a PGlite instance that keeps the statements it is asked to name
 * (`query(sql, params, { name })`) as server-side prepared statements: PGlite plans every query
 * again, and for the relay's claim that planning was a tenth of each batch, for an append more
 * than a third of its cost. PGlite's `query` has no named statements and cannot bind parameters to
 * `EXECUTE`, so the statement is prepared once with SQL (`PREPARE name AS …`) and run as
 * `EXECUTE name(literal, …)`.
 *
 * The store's own statements run on the instance, outside any transaction of the user's: a
 * failed `PREPARE` there aborts nothing. Appends run inside the user's transaction, where a failed
 * statement would abort it; `within(tx)` never prepares there. An append whose statement is not
 * prepared yet runs as a plain query, and queues its `PREPARE` on the instance, which PGlite runs
 * once the transaction has ended (it runs one transaction at a time, and a query of the instance
 * waits for the open one); later appends run it as `EXECUTE`. If a statement prepared before is
 * missing in a transaction (`DEALLOCATE ALL` ran, or the transaction belongs to another instance),
 * that one append fails, and `within` runs plain queries from then on.
 *
 * Parameters become literals only of the kinds the stores bind (null, finite numbers, booleans,
 * text, bytes, and flat arrays of text or numbers); text is an escape string (postgres-literal.ts),
 * arrays are array literals inside one. Anything else, or text holding NUL, runs the statement as a
 * plain query instead, so the driver reports on it as always.
 */
import type { QueryOptions, SqlExecutor, SqlResult } from '../index.js'
import { toBuffer } from '../core/bytes.js'
import { pgLiteralSafe, pgTextLiteral } from '../sql/postgres-literal.js'
import { fromPglite, type PgliteQueryable } from './pglite-client.js'

/** SQLSTATE of `PREPARE` when the name exists, and of `EXECUTE` when it does not. */
const DUPLICATE_PREPARED = '42P05'
const MISSING_PREPARED = '26000'
const NAME = /^[a-z_][a-z0-9_]{0,62}$/

/** The instance's executor, and a maker of executors for the user's transactions on it. */
export interface PglitePrepared extends SqlExecutor {
  /** `tx` (a transaction on the same instance), running the statements prepared so far as `EXECUTE`. */
  within(tx: SqlExecutor): SqlExecutor
}

export function preparedPglite(db: PgliteQueryable): PglitePrepared {
  const plain = fromPglite(db)
  const prepared = new Set<string>()
  const queued = new Set<string>()
  let inTransactions = true

  async function prepare(name: string, sql: string): Promise<void> {
    try {
      await db.query(`PREPARE ${name} AS ${sql}`)
    } catch (error) {
      // Another store on the same instance prepared it: the name is derived from the text.
      if (sqlState(error) !== DUPLICATE_PREPARED) throw error
    }
    prepared.add(name)
  }

  /** Prepares after the transaction in progress (PGlite queues the query); errors are dropped. */
  function prepareLater(name: string, sql: string): void {
    if (queued.has(name)) return
    queued.add(name)
    prepare(name, sql).then(
      () => queued.delete(name),
      // The statement is wrong or the instance closed: the append said so, or will.
      () => queued.delete(name),
    )
  }

  return {
    async query<R extends object>(
      sql: string,
      params: readonly unknown[] = [],
      options: QueryOptions = {},
    ): Promise<SqlResult<R>> {
      const run = executable(options.name, params)
      if (run === undefined) return plain.query<R>(sql, params)
      if (!prepared.has(run.name)) await prepare(run.name, sql)
      try {
        return await plain.query<R>(run.text)
      } catch (error) {
        // DEALLOCATE ALL or DISCARD ALL ran on the instance: prepare again, once.
        if (sqlState(error) !== MISSING_PREPARED) throw error
        prepared.delete(run.name)
        await prepare(run.name, sql)
        return plain.query<R>(run.text)
      }
    },

    within(tx: SqlExecutor): SqlExecutor {
      return {
        async query<R extends object>(
          sql: string,
          params: readonly unknown[] = [],
          options: QueryOptions = {},
        ): Promise<SqlResult<R>> {
          const run = inTransactions ? executable(options.name, params) : undefined
          if (run === undefined) return tx.query<R>(sql, params)
          if (!prepared.has(run.name)) {
            prepareLater(run.name, sql)
            return tx.query<R>(sql, params)
          }
          try {
            return await tx.query<R>(run.text)
          } catch (error) {
            if (sqlState(error) === MISSING_PREPARED) {
              prepared.delete(run.name)
              inTransactions = false
            }
            throw error
          }
        },
      }
    },
  }
}

/**
 * The statement's name and its `EXECUTE` with the values as literals, or undefined when it runs as
 * a plain query (no name, a name that is not a plain identifier, or a value no literal can hold).
 */
function executable(
  name: string | undefined,
  params: readonly unknown[],
): { readonly name: string; readonly text: string } | undefined {
  if (name === undefined || !NAME.test(name)) return undefined
  const args = literals(params)
  if (args === undefined) return undefined
  return {
    name,
    text: args.length === 0 ? `EXECUTE ${name}` : `EXECUTE ${name}(${args.join(', ')})`,
  }
}

function sqlState(error: unknown): unknown {
  return typeof error === 'object' && error !== null
    ? (error as { code?: unknown }).code
    : undefined
}

/** The parameters as SQL literals, or undefined if one of them cannot be one. */
function literals(params: readonly unknown[]): string[] | undefined {
  const out: string[] = []
  for (const value of params) {
    const literal = scalar(value) ?? array(value)
    if (literal === undefined) return undefined
    out.push(literal)
  }
  return out
}

function scalar(value: unknown): string | undefined {
  if (value === null) return 'NULL'
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined
    case 'bigint':
      return String(value)
    case 'boolean':
      return value ? 'TRUE' : 'FALSE'
    case 'string':
      return pgLiteralSafe(value) ? pgTextLiteral(value) : undefined
    case 'object':
      return value instanceof Uint8Array ? `E'\\\\x${toBuffer(value).toString('hex')}'` : undefined
    case 'function':
    case 'symbol':
    case 'undefined':
      break // the driver's own handling applies
  }
  return undefined
}

/** A flat array of text or numbers (or nulls) as an array literal, itself an escape string. */
function array(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined
  const elements: string[] = []
  for (const element of value as unknown[]) {
    if (element === null) elements.push('NULL')
    else if (typeof element === 'number' && Number.isFinite(element)) elements.push(String(element))
    else if (typeof element === 'string' && pgLiteralSafe(element))
      // Quoted, with `"` and `\` escaped for the array syntax; the escape string escapes again.
      elements.push(`"${element.replace(/["\\]/g, (c) => `\\${c}`)}"`)
    else return undefined
  }
  return pgTextLiteral(`{${elements.join(',')}}`)
}
