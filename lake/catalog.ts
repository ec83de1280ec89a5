// The lake's own bookkeeping tables, created once per database file per process.
import type { DuckDBConnection } from '@duckdb/node-api';
import path from 'node:path';
import { withConnection } from './duckdb';

const ready = new Map<string, Promise<void>>();

const CATALOG_DDL = `
CREATE SCHEMA IF NOT EXISTS lake;
CREATE SCHEMA IF NOT EXISTS bronze;
-- One row per committed batch per table: the table's versions (like Delta's _delta_log).
CREATE TABLE IF NOT EXISTS lake.commit_log (
  table_name    VARCHAR NOT NULL,
  version       BIGINT NOT NULL,
  batch_id      VARCHAR NOT NULL,
  batch_seq     BIGINT NOT NULL,
  operation     VARCHAR NOT NULL,
  rows_inserted BIGINT NOT NULL DEFAULT 0,
  rows_updated  BIGINT NOT NULL DEFAULT 0,
  rows_deleted  BIGINT NOT NULL DEFAULT 0,
  committed_at  TIMESTAMP NOT NULL,
  details       JSON,
  PRIMARY KEY (table_name, version),
  UNIQUE (table_name, batch_id)
);
-- How each table's change feed is read: 'append' tables carry _commit_version on their rows;
-- 'mutable' tables write pre/post images to <table>__changes.
CREATE TABLE IF NOT EXISTS lake.tables (
  table_name VARCHAR PRIMARY KEY,
  kind       VARCHAR NOT NULL CHECK (kind IN ('append', 'mutable')),
  created_at TIMESTAMP NOT NULL
);
-- Which batch introduced which column (schema evolution history).
CREATE TABLE IF NOT EXISTS lake.schema_versions (
  table_name     VARCHAR NOT NULL,
  schema_version INTEGER NOT NULL,
  commit_version BIGINT NOT NULL,
  batch_id       VARCHAR NOT NULL,
  column_name    VARCHAR NOT NULL,
  column_type    VARCHAR NOT NULL,
  added_at       TIMESTAMP NOT NULL
);
-- Every landing file a table has taken, ingested or quarantined: never taken twice.
CREATE TABLE IF NOT EXISTS lake.file_ledger (
  table_name VARCHAR NOT NULL,
  path       VARCHAR NOT NULL,
  size_bytes BIGINT NOT NULL,
  mtime_ms   BIGINT NOT NULL,
  outcome    VARCHAR NOT NULL CHECK (outcome IN ('ingested', 'quarantined')),
  batch_id   VARCHAR NOT NULL,
  version    BIGINT NOT NULL,
  PRIMARY KEY (table_name, path)
);
-- One row per committed batch and per pipeline pass: what ran, where, how much, how long.
CREATE TABLE IF NOT EXISTS lake.event_log (
  logged_at        TIMESTAMP NOT NULL,
  kind             VARCHAR NOT NULL,   -- batch | pass
  layer            VARCHAR NOT NULL,   -- bronze | silver | gold | pipeline
  source           VARCHAR NOT NULL,   -- table, or the pipeline workflow
  batch_id         VARCHAR,
  rows_in          BIGINT,
  rows_out         BIGINT,
  rows_quarantined BIGINT,
  duration_ms      BIGINT,
  workflow_id      VARCHAR,
  run_id           VARCHAR,
  details          JSON
);
-- Landing files that could not be read, with the reason.
CREATE TABLE IF NOT EXISTS bronze.quarantine (
  table_name     VARCHAR NOT NULL,
  path           VARCHAR NOT NULL,
  error          VARCHAR NOT NULL,
  batch_id       VARCHAR NOT NULL,
  commit_version BIGINT NOT NULL,
  quarantined_at TIMESTAMP NOT NULL
);
`;

// DuckDB names the database after the file, so lake.duckdb would shadow schema lake.
const SCHEMAS = ['lake', 'bronze', 'silver', 'gold'];

/** Opens a connection to a lake whose catalog tables exist. */
export async function withLake<T>(lakeFile: string, work: (db: DuckDBConnection) => Promise<T>): Promise<T> {
  let init = ready.get(lakeFile);
  if (!init) {
    const stem = path.basename(lakeFile).replace(/\.[^.]*$/, '').toLowerCase();
    if (SCHEMAS.includes(stem)) {
      throw new Error(`lake file ${lakeFile}: DuckDB would name it "${stem}", which clashes with schema ${stem}; choose another file name`);
    }
    init = withConnection(lakeFile, async (db) => void (await db.run(CATALOG_DDL)));
    ready.set(lakeFile, init);
    init.catch(() => ready.delete(lakeFile));
  }
  await init;
  return withConnection(lakeFile, work);
}

export function forgetLake(lakeFile: string): void {
  ready.delete(lakeFile);
}
