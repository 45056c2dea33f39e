/**
 * The part every database unit of work shares: one open transaction, the user's repositories
 * built on its executor, tracked aggregates reported to the unit of work, and the outbox writer
 * attached so integration events are appended inside that same transaction at commit. Each
 * driver folder only says how to begin, commit and roll back.
 */
import type { AggregateRoot } from '../core/aggregate.js'
import type { Repository } from '../core/repository.js'
import { UnitOfWork } from '../core/unit-of-work.js'
import type { OutboxWriter } from '../outbox/outbox-writer.js'
import type { SqlExecutor } from './sql-executor.js'

/** What every database unit of work is given, beside its connection. */
export interface SqlUnitOfWorkOptions<R extends Record<string, Repository>> {
  /** Makes the repositories of this unit of work, given the transaction's executor. */
  readonly repositories: (tx: SqlExecutor) => R
  /** Appends integration events to the outbox inside the transaction. */
  readonly outbox?: OutboxWriter
}

/** An open transaction: its executor and how to end it (each may be called once). */
export interface OpenTransaction {
  readonly executor: SqlExecutor
  commit(): Promise<void>
  rollback(): Promise<void>
}

export abstract class SqlUnitOfWork<R extends Record<string, Repository>> extends UnitOfWork {
  /** The transaction's executor, for your own statements. */
  readonly tx: SqlExecutor
  readonly repositories: R
  #transaction: OpenTransaction | undefined

  protected constructor(transaction: OpenTransaction, options: SqlUnitOfWorkOptions<R>) {
    super()
    this.#transaction = transaction
    this.tx = transaction.executor
    this.repositories = options.repositories(this.tx)
    // Repositories built on TrackingRepository report what they track, so `added` hooks run.
    for (const repository of Object.values(this.repositories)) {
      if ('onTrack' in repository)
        (repository as { onTrack: unknown }).onTrack = (aggregate: AggregateRoot) =>
          this.tracked(aggregate)
    }
    options.outbox?.attach(this, this.tx)
  }

  protected participants(): Iterable<Repository> {
    return Object.values(this.repositories)
  }

  protected commitTransaction(): Promise<void> {
    const transaction = this.#end()
    return transaction === undefined ? Promise.resolve() : transaction.commit()
  }

  protected rollbackTransaction(): Promise<void> {
    const transaction = this.#end()
    return transaction === undefined ? Promise.resolve() : transaction.rollback()
  }

  /** The transaction, once: ending it twice is a no-op. */
  #end(): OpenTransaction | undefined {
    const transaction = this.#transaction
    this.#transaction = undefined
    return transaction
  }
}
