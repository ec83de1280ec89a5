// The change feed, like Delta's Change Data Feed: rows that changed in commit versions
// (from, to], with _change_type, _commit_version and _commit_timestamp.
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from './duckdb';

export function qualified(table: string): string {
  return table.split('.').map(sqlIdentifier).join('.');
}

/**
 * SQL selecting the changes of `table` after version `from` up to and including `to`.
 * Append tables carry _commit_version on every row, so their feed is the rows themselves
 * ('insert', with _rowid to find a row again); mutable tables keep pre/post images in
 * <table>__changes.
 */
export async function changeFeedSql(db: DuckDBConnection, table: string, from: number, to: number): Promise<string> {
  const kind = (await db.runAndReadAll(`SELECT kind FROM lake.tables WHERE table_name = ${sqlString(table)}`)).getRows()[0]?.[0];
  if (kind === undefined) throw new Error(`table ${table} is not registered in the lake`);
  const range = `c._commit_version > ${Math.trunc(from)} AND c._commit_version <= ${Math.trunc(to)}`;
  const source = kind === 'append'
    ? `(SELECT *, rowid AS _rowid, 'insert' AS _change_type FROM ${qualified(table)})`
    : qualified(`${table}__changes`);
  return `
    SELECT c.*, l.committed_at AS _commit_timestamp
    FROM ${source} AS c
    JOIN lake.commit_log AS l ON l.table_name = ${sqlString(table)} AND l.version = c._commit_version
    WHERE ${range}`;
}

const CHANGE_WEIGHT = `CASE WHEN _change_type IN ('insert', 'update_postimage') THEN 1 ELSE -1 END`;

/**
 * Creates a mutable table and its change table (<table>__changes: same columns plus
 * _change_type and _commit_version), and registers it, unless it exists.
 */
export async function ensureMutableTable(
  db: DuckDBConnection,
  table: string,
  definition: { columns: string } | { as: string },
): Promise<void> {
  await db.run('columns' in definition
    ? `CREATE TABLE IF NOT EXISTS ${qualified(table)} (${definition.columns})`
    : `CREATE TABLE IF NOT EXISTS ${qualified(table)} AS SELECT * FROM (${definition.as}) WITH NO DATA`);
  await db.run(`CREATE TABLE IF NOT EXISTS ${qualified(`${table}__changes`)} AS
    SELECT *, NULL::VARCHAR AS _change_type, NULL::BIGINT AS _commit_version FROM ${qualified(table)} WITH NO DATA`);
  await db.run(`INSERT INTO lake.tables VALUES (${sqlString(table)}, 'mutable', now()::TIMESTAMP) ON CONFLICT DO NOTHING`);
}

/** Replaces a table's rows by `selectSql`'s, writing only the difference to its change feed. */
export async function replaceWithChanges(db: DuckDBConnection, table: string, selectSql: string, version: number) {
  const t = qualified(table);
  const changes = qualified(`${table}__changes`);
  await db.run(`CREATE OR REPLACE TEMP TABLE replacement AS ${selectSql}`);
  const deleted = (await db.run(`INSERT INTO ${changes} SELECT *, 'delete', ${version} FROM (SELECT * FROM ${t} EXCEPT ALL SELECT * FROM replacement)`)).rowsChanged;
  const inserted = (await db.run(`INSERT INTO ${changes} SELECT *, 'insert', ${version} FROM (SELECT * FROM replacement EXCEPT ALL SELECT * FROM ${t})`)).rowsChanged;
  if (deleted + inserted > 0) {
    await db.run(`DELETE FROM ${t}`);
    await db.run(`INSERT INTO ${t} SELECT * FROM replacement`);
  }
  await db.run('DROP TABLE replacement');
  return { rowsInserted: inserted, rowsDeleted: deleted };
}

/**
 * Upserts `sourceTable`'s rows into `table` by key, writing update pre/post images and inserts
 * to its change feed. Matched rows are deleted and the source rows appended, rather than
 * updated in place: DuckDB keeps in-place updates in memory, per vector and column, until a
 * checkpoint, which for updates at random keys grew into out-of-memory errors and
 * checkpoint storms (bench/profile.ts); deletes and appends stay small.
 */
export async function mergeWithChanges(db: DuckDBConnection, table: string, keys: string[], sourceTable: string, version: number) {
  const t = qualified(table);
  const changes = qualified(`${table}__changes`);
  const on = (left: string, right: string) => keys.map((k) => `${left}.${sqlIdentifier(k)} = ${right}.${sqlIdentifier(k)}`).join(' AND ');
  // Pre-images are the rows about to be replaced; post-images are the source rows themselves.
  await db.run(`CREATE OR REPLACE TEMP TABLE merge_preimages AS SELECT t.* FROM ${t} t SEMI JOIN ${sourceTable} s ON ${on('t', 's')}`);
  const updated = (await db.run(`INSERT INTO ${changes} BY NAME
    SELECT *, 'update_preimage' AS _change_type, ${version} AS _commit_version FROM merge_preimages`)).rowsChanged;
  const total = (await db.run(`INSERT INTO ${changes} BY NAME
    SELECT s.*, CASE WHEN p.${sqlIdentifier(keys[0])} IS NULL THEN 'insert' ELSE 'update_postimage' END AS _change_type, ${version} AS _commit_version
    FROM ${sourceTable} s LEFT JOIN merge_preimages p ON ${on('p', 's')}`)).rowsChanged;
  if (updated > 0) await db.run(`DELETE FROM ${t} AS t USING merge_preimages AS p WHERE ${on('t', 'p')}`);
  await db.run(`INSERT INTO ${t} BY NAME SELECT * FROM ${sourceTable}`);
  await db.run('DROP TABLE merge_preimages');
  return { rowsUpdated: updated, rowsInserted: total - updated };
}

/** A mutable table as it was at commit `version`, rebuilt from its change feed. */
export function tableAsOfSql(table: string, version: number): string {
  return `
    SELECT * EXCLUDE (_weight) FROM (
      SELECT * EXCLUDE (_change_type, _commit_version), sum(${CHANGE_WEIGHT}) AS _weight
      FROM ${qualified(`${table}__changes`)} WHERE _commit_version <= ${Math.trunc(version)} GROUP BY ALL)
    WHERE _weight > 0`;
}
