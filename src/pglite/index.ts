// switchyard-bus/pglite: the outbox on embedded PGlite, through your own instance. Re-exports only.
export { fromPglite } from './pglite-client.js'
export type { PgliteDatabase, PgliteQueryable } from './pglite-client.js'
export { PgliteInboxStore, PgliteOutboxStore } from './pglite-outbox-store.js'
export type { PgliteInboxStoreOptions, PgliteOutboxStoreOptions } from './pglite-outbox-store.js'
export { inboxSchemaSql } from '../sql/postgres-inbox-engine.js'
export { outboxSchemaSql } from '../sql/postgres-outbox-schema.js'
export { PgliteUnitOfWork } from './pglite-unit-of-work.js'
export type { PgliteUnitOfWorkOptions } from './pglite-unit-of-work.js'
