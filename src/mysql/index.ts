// switchyard-bus/mysql: the outbox and inbox on MariaDB ≥ 10.6 / MySQL 8, through your own mysql2 pool.
export { fromMysql2 } from './mysql-client.js'
export type { MysqlPool, MysqlPoolConnection, MysqlQueryable } from './mysql-client.js'
export { MysqlInboxStore, MysqlOutboxStore } from './mysql-outbox-store.js'
export type { MysqlInboxStoreOptions, MysqlOutboxStoreOptions } from './mysql-outbox-store.js'
export { mysqlInboxSchemaSql, mysqlOutboxSchemaSql } from './mysql-schema.js'
export type { MysqlNames } from './mysql-schema.js'
export { MysqlUnitOfWork } from './mysql-unit-of-work.js'
export type { MysqlUnitOfWorkOptions } from './mysql-unit-of-work.js'
