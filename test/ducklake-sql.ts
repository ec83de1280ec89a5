// Plain-SQL DuckLake for the tests that check DuckLake itself (ducklake-issues, ducklake-conflicts):
// DuckDB instances of their own, each attached to a fresh lake on the test PostgreSQL catalog with
// no netpulse code between. Several instances stand for the processes that share a lake (each has
// its own catalog cache and connection pool).
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { loadExtensions, type LakeConfig } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { closeInstance, createInstance, extensionSettings, sqlString } from '../lake/duckdb';
import { tempDir, testLake } from './helpers';

/** What these tests run on; a test name that says "fixed" or "still present" says it of this. */
export const DUCKLAKE = 'DuckLake 1.0 (DuckDB 1.5.5)';

export interface Instance { db: DuckDBConnection; instance: DuckDBInstance; q: <T = Record<string, string>>(sql: string) => Promise<T[]> }

/** A DuckDB instance of its own with the lake attached as `lk` (and in use); `inlining` sets DATA_INLINING_ROW_LIMIT. */
async function attach(lake: LakeConfig, opened: Instance[], inlining?: number): Promise<Instance> {
  const instance = await createInstance(':memory:', { autoinstall_known_extensions: 'false', ...extensionSettings() });
  const db = await instance.connect();
  const self = { db, instance, q: async <T>(sql: string) => (await db.runAndReadAll(sql)).getRowObjectsJson() as T[] };
  opened.push(self);
  await loadExtensions(db);
  await db.run(`ATTACH ${sqlString(`ducklake:postgres:${lake.catalog}`)} AS lk (DATA_PATH ${sqlString(`${lake.dataPath}/`)},
    METADATA_SCHEMA ${sqlString(lake.catalogSchema)}${inlining === undefined ? '' : `, DATA_INLINING_ROW_LIMIT ${inlining}`})`);
  await db.run('USE lk');
  return self;
}

/** Runs `body` with a fresh lake and an attach function; closes every instance and drops the lake after. */
export async function withFreshLake(tag: string, body: (lake: LakeConfig, open: (inlining?: number) => Promise<Instance>) => Promise<void>, catalog?: string) {
  const lake = { ...testLake(tempDir(tag)), ...(catalog && { catalog }) };
  const opened: Instance[] = [];
  try {
    await body(lake, (inlining) => attach(lake, opened, inlining));
  } finally {
    for (const { db, instance } of opened) {
      db.closeSync();
      closeInstance(instance);
    }
    await dropLake(lake);
  }
}

/** A DuckLake metadata table of the lake attached as `lk`. */
export const meta = (lake: LakeConfig, table: string) => `__ducklake_metadata_lk.${lake.catalogSchema}.${table}`;
/** How many data files (Parquet) the lake's tables read now. */
export const liveFiles = async (lake: LakeConfig, i: Instance) =>
  Number((await i.q(`SELECT count(*) AS n FROM ${meta(lake, 'ducklake_data_file')} WHERE end_snapshot IS NULL`))[0].n);
/** The lake's current snapshot id. */
export const snapshot = async (i: Instance) => Number((await i.q('SELECT id FROM lk.current_snapshot()'))[0].id);
