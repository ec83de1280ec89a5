// Deleting a lake (tests) and emptying one in place (the CLI's reset): what no pass ever does.
import { rmSync } from 'node:fs';
import { closeLakes, createBookkeeping, LAKE, loadExtensions, withLake, type LakeConfig } from './catalog';
import { closeInstance, createInstance, extensionSettings, sqlIdentifier, sqlString } from './duckdb';
import { deleteObjectsUnder, isObjectUrl, isRemotePath } from './object-store';
import { forgetTables } from './tables';

/**
 * Deletes a lake: its metadata schema in the catalog and its data files (reset, tests). The
 * catalog database and other lakes in it stay.
 */
export async function dropLake(lake: LakeConfig): Promise<void> {
  forgetTables(lake);
  await closeLakes();
  const instance = await createInstance(':memory:', { autoinstall_known_extensions: 'false', ...extensionSettings() });
  const db = await instance.connect();
  try {
    await loadExtensions(db);
    await db.run(`ATTACH ${sqlString(lake.catalog)} AS catalog_db (TYPE postgres)`);
    await db.run(`CALL postgres_execute('catalog_db', ${sqlString(`DROP SCHEMA IF EXISTS "${lake.catalogSchema.replace(/"/g, '""')}" CASCADE`)})`);
  } finally {
    db.closeSync();
    closeInstance(instance);
  }
  if (isObjectUrl(lake.dataPath)) await deleteObjectsUnder(lake.dataPath);
  else if (!isRemotePath(lake.dataPath)) rmSync(lake.dataPath, { recursive: true, force: true });
}

/**
 * Empties a lake in place (the CLI's reset): every table dropped, the bookkeeping tables made
 * anew, old snapshots expired and their files deleted. The DuckLake itself stays, so workers
 * attached to it go on without a restart.
 */
export async function emptyLake(lake: LakeConfig): Promise<{ tables: number }> {
  forgetTables(lake);
  return withLake(lake, async (db) => {
    const tables = (await db.runAndReadAll(`SELECT table_schema, table_name FROM information_schema.tables
      WHERE table_catalog = current_database() AND table_type = 'BASE TABLE'`)).getRows();
    for (const [schema, name] of tables) await db.run(`DROP TABLE IF EXISTS ${sqlIdentifier(String(schema))}.${sqlIdentifier(String(name))}`);
    await createBookkeeping(db, lake);
    await db.run(`CALL ducklake_expire_snapshots(${sqlString(LAKE)}, older_than => now())`);
    await db.run(`CALL ducklake_cleanup_old_files(${sqlString(LAKE)}, cleanup_all => true)`);
    return { tables: tables.length };
  });
}
