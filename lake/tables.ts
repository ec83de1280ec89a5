// Lake tables seen from a worker: their columns, whether they exist (remembered per process, so
// steady-state batches skip the lookup), adding a column.
import type { DuckDBConnection } from '@duckdb/node-api';
import { lakeId, lakeOf, onLakeFailure, type LakeConfig } from './catalog';
import { qualified, sqlIdentifier } from './duckdb';

/**
 * A lake table's columns and types in order (empty when the table does not exist: ask before a
 * transaction when it may not, since a failed statement can abort the transaction).
 */
export async function tableColumns(db: DuckDBConnection, table: string): Promise<Map<string, string>> {
  // DESCRIBE binds the one table (about 4 ms, 1 ms inside a transaction); information_schema
  // lists the whole lake's catalog (13 ms). Both give the same type names.
  try {
    const rows = (await db.runAndReadAll(`DESCRIBE ${qualified(table)}`)).getRows();
    return new Map(rows.map((r) => [String(r[0]), String(r[1])]));
  } catch (error) {
    if (/does not exist/.test((error as Error).message)) return new Map();
    throw error;
  }
}

/**
 * Which of `tables` (schema.name) do not exist yet. Creating tables only when missing keeps
 * DDL out of the steady state: each statement outside a batch is a catalog transaction.
 */
export async function missingTables(db: DuckDBConnection, tables: string[]): Promise<string[]> {
  const id = lakeId(lakeOf(db));
  const known = knownTables.get(id) ?? knownTables.set(id, new Set()).get(id)!;
  if (tables.every((t) => known.has(t))) return [];
  const existing = new Set((await db.runAndReadAll(`SELECT table_schema || '.' || table_name FROM information_schema.tables
    WHERE table_catalog = current_database()`)).getRows().map((r) => String(r[0])));
  for (const t of tables) if (existing.has(t)) known.add(t);
  return tables.filter((t) => !existing.has(t));
}

/**
 * Tables this process has seen in each lake, so steady-state batches skip the catalog lookup
 * (each DuckLake statement costs about ten catalog queries). A statement that finds a table gone
 * (the lake was reset) forgets them all, and the activity's retry looks again.
 */
const knownTables = new Map<string, Set<string>>();

onLakeFailure((lake, error) => {
  if (/does not exist/i.test(String((error as Error)?.message))) knownTables.delete(lakeId(lake));
});

/** Forgets the tables this process has seen in `lake` (it is being emptied or dropped). */
export function forgetTables(lake: LakeConfig): void {
  knownTables.delete(lakeId(lake));
}

/** Adds a column to `table` (in the caller's transaction, if any). */
export async function addColumn(db: DuckDBConnection, table: string, name: string, type: string): Promise<void> {
  await db.run(`ALTER TABLE ${qualified(table)} ADD COLUMN ${sqlIdentifier(name)} ${type}`);
}
