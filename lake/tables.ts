// Lake tables seen from a worker: their columns, whether they exist (remembered per process, so
// steady-state batches skip the lookup), adding a column, and keeping a table's commits out of the
// catalog's inlining (the DuckLake 1.4.4 workarounds, docs/lake.md).
import type { DuckDBConnection } from '@duckdb/node-api';
import { LAKE, lakeId, lakeOf, onLakeFailure, type LakeConfig } from './catalog';
import { qualified, sqlIdentifier, sqlString } from './duckdb';

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
/** Per lake: evolved tables this process has kept out of the catalog (keepEvolvedTableOutOfCatalog). */
const evolvedKeptOut = new Map<string, Set<string>>();

onLakeFailure((lake, error) => {
  if (/does not exist/i.test(String((error as Error)?.message))) knownTables.delete(lakeId(lake));
  evolvedKeptOut.delete(lakeId(lake));
});

/** Forgets the tables this process has seen in `lake` (it is being emptied or dropped). */
export function forgetTables(lake: LakeConfig): void {
  knownTables.delete(lakeId(lake));
  evolvedKeptOut.delete(lakeId(lake));
}

/**
 * Tables whose rows are updated or deleted (device state, gold, fences) keep every commit in
 * Parquet files, never inlined in the catalog: DuckLake 1.4.4's flush of inlined rows drops the
 * ones deleted before it, and with them time travel to the snapshots that still had them.
 */
export async function keepOutOfCatalog(db: DuckDBConnection, table: string): Promise<void> {
  const [schema, name] = table.split('.');
  await db.run(`CALL ${LAKE}.set_option('data_inlining_row_limit', 0, schema => ${sqlString(schema)}, table_name => ${sqlString(name)})`);
}

/**
 * Adds a column to `table`, whose rows are from then on never inlined in the catalog (set before
 * the ALTER, in the caller's transaction). DuckLake 1.4.4 misreads rows inlined after a column
 * was added: once any later schema change happens anywhere in the lake, every process but the
 * writer reads that column as NULL, and a flush of inlined data by such a process (maintenance)
 * writes the NULLs to Parquet for good. Parquet files carry field ids and read right.
 */
export async function addColumn(db: DuckDBConnection, table: string, name: string, type: string): Promise<void> {
  await keepOutOfCatalog(db, table);
  await db.run(`ALTER TABLE ${qualified(table)} ADD COLUMN ${sqlIdentifier(name)} ${type}`);
}

/**
 * For tables that gained columns before addColumn existed: the same setting, once per process
 * and lake (a connection lives for one activity). Forgotten when a statement on the lake fails,
 * since the batch's transaction that set it may have rolled back.
 */
export async function keepEvolvedTableOutOfCatalog(db: DuckDBConnection, table: string): Promise<void> {
  const key = lakeId(lakeOf(db));
  const done = evolvedKeptOut.get(key) ?? new Set<string>();
  evolvedKeptOut.set(key, done);
  if (done.has(table)) return;
  await keepOutOfCatalog(db, table);
  done.add(table);
}
