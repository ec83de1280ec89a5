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
 * ('insert'); mutable tables keep pre/post images in <table>__changes.
 */
export async function changeFeedSql(db: DuckDBConnection, table: string, from: number, to: number): Promise<string> {
  const kind = (await db.runAndReadAll(`SELECT kind FROM lake.tables WHERE table_name = ${sqlString(table)}`)).getRows()[0]?.[0];
  if (kind === undefined) throw new Error(`table ${table} is not registered in the lake`);
  const range = `c._commit_version > ${Math.trunc(from)} AND c._commit_version <= ${Math.trunc(to)}`;
  const source = kind === 'append'
    ? `(SELECT *, 'insert' AS _change_type FROM ${qualified(table)})`
    : qualified(`${table}__changes`);
  return `
    SELECT c.*, l.committed_at AS _commit_timestamp
    FROM ${source} AS c
    JOIN lake.commit_log AS l ON l.table_name = ${sqlString(table)} AND l.version = c._commit_version
    WHERE ${range}`;
}
