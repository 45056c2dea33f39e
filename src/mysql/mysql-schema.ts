/** The DDL of the MariaDB / MySQL outbox and inbox (InnoDB). Printable for your own migrations. */
import { validateIdentifier } from '../index.js'

/** Where the tables live. */
export interface MysqlNames {
  /** The database; default: the connection's current database. */
  readonly database?: string
  /** Default `outbox` (counter table `<table>_keys`) or `inbox`. */
  readonly table?: string
}

/** @internal Validated, quoted names. */
export function mysqlName(names: MysqlNames, fallback: string, suffix = ''): string {
  const table = validateIdentifier(`${names.table ?? fallback}${suffix}`, 'table')
  const database =
    names.database === undefined ? undefined : validateIdentifier(names.database, 'database')
  return database === undefined ? `\`${table}\`` : `\`${database}\`.\`${table}\``
}

/**
 * The statements that create the outbox. Each is idempotent.
 *
 * Ids and keys are `VARBINARY` (UTF-8 bytes, up to 255 characters): they compare byte for byte
 * whatever the database's collation, so `Lamp` and `LAMP`, or `a` and `a `, are different keys and
 * different ids (a case- or pad-insensitive collation would merge their counters and inbox records).
 * Times are UTC: every statement writes and compares `UTC_TIMESTAMP(6)`, never the session's zone.
 */
export function mysqlOutboxSchemaSql(names: MysqlNames = {}): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${mysqlName(names, 'outbox')} (
  seq          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  id           VARBINARY(1020) NOT NULL,
  topic        VARCHAR(255) NOT NULL,
  msg_key      VARBINARY(1020) NULL,
  key_seq      BIGINT NULL,
  type         VARCHAR(255) NOT NULL,
  body         LONGBLOB NOT NULL,
  headers      LONGTEXT NOT NULL,
  state        VARCHAR(16) NOT NULL DEFAULT 'pending',
  attempts     INT NOT NULL DEFAULT 0,
  available_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  lease_owner  VARCHAR(255) NULL,
  lease_token  CHAR(36) NULL,
  lease_until  DATETIME(6) NULL,
  last_error   TEXT NULL,
  created_at   DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  published_at DATETIME(6) NULL,
  UNIQUE KEY uq_id (id),
  UNIQUE KEY uq_key_seq (msg_key, key_seq),
  KEY ix_state_seq (state, seq),
  KEY ix_published (state, published_at)
) ENGINE=InnoDB`,
    `CREATE TABLE IF NOT EXISTS ${mysqlName(names, 'outbox', '_keys')} (
  msg_key  VARBINARY(1020) NOT NULL PRIMARY KEY,
  last_seq BIGINT NOT NULL
) ENGINE=InnoDB`,
  ]
}

/** The statements that create the inbox. */
export function mysqlInboxSchemaSql(names: MysqlNames = {}): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${mysqlName(names, 'inbox')} (
  consumer    VARBINARY(1020) NOT NULL,
  message_id  VARBINARY(1020) NOT NULL,
  recorded_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (consumer, message_id),
  KEY ix_recorded_at (recorded_at)
) ENGINE=InnoDB`,
  ]
}
