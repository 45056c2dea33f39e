// switchyard-bus/postgres: the outbox on PostgreSQL through your own `pg` pool. Re-exports only.
export { fromPg } from './postgres-client.js'
export type {
  FromPgOptions,
  PgNamedQuery,
  PgPool,
  PgPoolClient,
  PgQueryable,
} from './postgres-client.js'
export { PostgresInboxStore, PostgresOutboxStore } from './postgres-outbox-store.js'
export type {
  PostgresInboxOptions,
  PostgresInboxStoreOptions,
  PostgresOutboxOptions,
  PostgresOutboxStoreOptions,
} from './postgres-outbox-store.js'
export { inboxSchemaSql } from '../sql/postgres-inbox-engine.js'
export { outboxSchemaSql } from '../sql/postgres-outbox-schema.js'
export type { PostgresOutboxNames } from '../sql/postgres-outbox-schema.js'
export { PostgresUnitOfWork } from './postgres-unit-of-work.js'
export type { PostgresUnitOfWorkOptions } from './postgres-unit-of-work.js'
