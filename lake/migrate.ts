// What DuckLake's own migration of a 0.3 lake (DuckDB 1.4.x) to 1.0 leaves undone, done once on a
// writer's attach. DuckLake 1.0 keeps inlined VARCHAR and JSON values as bytea and timestamps and
// dates as varchar in a PostgreSQL catalog; the migration leaves the inlined-data tables 0.3 made
// with their old column types (duckdb/ducklake#843), so a 1.0 writer's next inlined commit fails
// on a timestamp column ("column is of type timestamp with time zone but expression is of type
// character varying") or, in a table without one, stores each string as its hex literal.
// Reproduction: test/migration.test.ts.
import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlIdentifier, sqlString } from './duckdb';

/**
 * One PostgreSQL statement: the old inlined-data columns converted to 1.0's types, under a lock
 * on the inlined-table registry so that writers attaching at once convert each column once.
 * Nothing to convert (a lake made by 1.0, or converted already) costs one catalog query.
 */
function conversionSql(schema: string): string {
  const s = sqlIdentifier(schema);
  return `DO $convert$
DECLARE col record;
BEGIN
  LOCK TABLE ${s}.ducklake_inlined_data_tables IN EXCLUSIVE MODE;
  FOR col IN
    SELECT c.table_name, c.column_name, c.data_type
    FROM information_schema.columns c JOIN ${s}.ducklake_inlined_data_tables i ON i.table_name = c.table_name
    WHERE c.table_schema = ${sqlString(schema)} AND c.column_name NOT IN ('row_id', 'begin_snapshot', 'end_snapshot')
      AND (c.data_type IN ('timestamp with time zone', 'timestamp without time zone', 'date', 'json')
        OR (c.data_type = 'character varying' AND EXISTS (SELECT FROM ${s}.ducklake_column d
              WHERE d.table_id = i.table_id AND lower(d.column_name) = lower(c.column_name) AND lower(d.column_type) IN ('varchar', 'json'))))
  LOOP
    EXECUTE format('ALTER TABLE %I.%I ALTER COLUMN %I TYPE %s USING %s', ${sqlString(schema)}, col.table_name, col.column_name,
      CASE WHEN col.data_type IN ('character varying', 'json') THEN 'bytea' ELSE 'varchar' END,
      CASE col.data_type
        WHEN 'character varying' THEN format('convert_to(%I, ''UTF8'')', col.column_name)
        WHEN 'json' THEN format('convert_to(%I::text, ''UTF8'')', col.column_name)
        WHEN 'timestamp with time zone' THEN format('to_char(%I AT TIME ZONE ''UTC'', ''YYYY-MM-DD HH24:MI:SS.US'') || ''+00''', col.column_name)
        WHEN 'timestamp without time zone' THEN format('to_char(%I, ''YYYY-MM-DD HH24:MI:SS.US'')', col.column_name)
        ELSE format('to_char(%I, ''YYYY-MM-DD'')', col.column_name)
      END);
  END LOOP;
END $convert$`;
}

/** Converts a migrated lake's old inlined-data tables (see above); `catalog` is the writer's libpq string. */
export async function convertLegacyInlinedData(db: DuckDBConnection, catalog: string, schema: string): Promise<void> {
  await db.run(`ATTACH ${sqlString(catalog)} AS netpulse_catalog_admin (TYPE postgres)`);
  try {
    await db.run(`CALL postgres_execute('netpulse_catalog_admin', ${sqlString(conversionSql(schema))})`);
  } finally {
    await db.run('DETACH netpulse_catalog_admin');
  }
  // The lake's attachment read the catalog's table definitions already: read them again, or its
  // scans of a converted table take the old types (DuckDB's INTERNAL error, instance invalidated).
  await db.run('CALL pg_clear_cache()');
}
