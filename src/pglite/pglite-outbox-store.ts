/**
 * The outbox on PGlite, the embedded default: the PostgreSQL engine over PGlite's single
 * connection. One process, one relay (PGlite cannot be shared between processes); the relay
 * wakes on PGlite's LISTEN. Crash guarantees are those of PGlite's file storage, weaker than a
 * PostgreSQL server's (see docs/stores/pglite.md).
 */
import { type WakeUpSource } from '../index.js'
import { PostgresInboxEngine, type PostgresInboxOptions } from '../sql/postgres-inbox-engine.js'
import { PostgresOutboxEngine, type PostgresOutboxOptions } from '../sql/postgres-outbox-engine.js'
import { fromPglite, type PgliteDatabase } from './pglite-client.js'
import { preparedPglite } from './pglite-prepared.js'

/** Options of {@link PgliteOutboxStore}. */
export interface PgliteOutboxStoreOptions extends PostgresOutboxOptions {
  /** Your PGlite instance. */
  readonly db: PgliteDatabase
  /**
   * Keep the store's statements as prepared statements on the instance, named `switchyard_…`:
   * PGlite would plan each again every time (a third of an append's cost). Claims and marks are
   * prepared before they first run. An append never prepares inside your transaction: the first
   * of each shape runs as a plain query and its `PREPARE` runs on the instance once your
   * transaction has ended; later appends run it. Appends must then go through transactions of this
   * store's `db`; after `DEALLOCATE ALL` on it, one append fails (its transaction rolls back) and
   * the store's appends run unprepared from then on. Default true.
   */
  readonly prepare?: boolean
}

/** The outbox on PGlite. Append inside `db.transaction(async (tx) => store.append(fromPglite(tx), …))`. */
export class PgliteOutboxStore extends PostgresOutboxEngine implements WakeUpSource {
  readonly #db: PgliteDatabase

  constructor(options: PgliteOutboxStoreOptions) {
    const prepared = options.prepare === false ? undefined : preparedPglite(options.db)
    super(
      prepared ?? fromPglite(options.db),
      options,
      prepared && { appendOn: (tx) => prepared.within(tx) },
    )
    this.#db = options.db
  }

  async listen(wake: () => void): Promise<() => Promise<void>> {
    return this.#db.listen(this.names.channel, () => wake())
  }
}

/** Options of {@link PgliteInboxStore}. */
export interface PgliteInboxStoreOptions extends PostgresInboxOptions {
  readonly db: PgliteDatabase
}

/** The inbox on PGlite. Record inside `db.transaction(async (tx) => store.tryRecord(fromPglite(tx), …))`. */
export class PgliteInboxStore extends PostgresInboxEngine {
  constructor(options: PgliteInboxStoreOptions) {
    super(fromPglite(options.db), options)
  }
}
