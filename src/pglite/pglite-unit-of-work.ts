/**
 * A unit of work on one PGlite transaction: your repositories get the transaction's executor, and
 * (with an `outbox`) integration events are appended to the outbox in that same transaction at
 * commit. Begin one per handler invocation: `transient(() => PgliteUnitOfWork.begin({ … }))`.
 *
 * PGlite has one connection, so its transactions run one at a time: `begin` waits until the
 * transaction before it ended, and every other statement on the database (the relay's claims
 * included) waits while one is open. Never begin a second unit of work on the same database while
 * holding one — it would wait for itself.
 */
import {
  type OpenTransaction,
  type Repository,
  SqlUnitOfWork,
  type SqlUnitOfWorkOptions,
} from '../index.js'
import { fromPglite, type PgliteDatabase } from './pglite-client.js'

/** Options of {@link PgliteUnitOfWork.begin}. */
export interface PgliteUnitOfWorkOptions<
  R extends Record<string, Repository>,
> extends SqlUnitOfWorkOptions<R> {
  readonly db: PgliteDatabase
}

/** Thrown inside PGlite's transaction callback to make it roll back; never escapes. */
const ROLLBACK = new Error('switchyard: the PGlite unit of work rolled back')

export class PgliteUnitOfWork<R extends Record<string, Repository>> extends SqlUnitOfWork<R> {
  /** Waits for the database, then begins a transaction on it. */
  static begin<R extends Record<string, Repository>>(
    options: PgliteUnitOfWorkOptions<R>,
  ): Promise<PgliteUnitOfWork<R>> {
    // PGlite only offers callback transactions: the callback stays pending until the unit of
    // work decides, then returns (COMMIT) or throws the ROLLBACK marker (ROLLBACK).
    return new Promise((resolve, reject) => {
      let decide: (commit: boolean) => void = () => undefined
      const decision = new Promise<boolean>((settle) => (decide = settle))
      let opened = false
      const ended = options.db.transaction(async (tx) => {
        const transaction: OpenTransaction = {
          executor: fromPglite(tx),
          commit: async () => {
            decide(true)
            await ended
          },
          rollback: async () => {
            decide(false)
            await ended.catch((error: unknown) => {
              if (error !== ROLLBACK) throw error
            })
          },
        }
        const unitOfWork = new PgliteUnitOfWork(transaction, options)
        opened = true
        resolve(unitOfWork)
        if (!(await decision)) throw ROLLBACK
      })
      ended.catch((error: unknown) => {
        // Before the unit of work exists, BEGIN or your `repositories` failed.
        if (!opened) reject(error instanceof Error ? error : new Error(String(error)))
      })
    })
  }
}
