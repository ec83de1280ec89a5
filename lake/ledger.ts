// The file ledger, seen from outside a batch: putting quarantined landing files back in line
// once their producer has fixed them (Auto Loader has no such door; a data platform needs one).
import { withLake, type LakeConfig } from './catalog';
import { eventLogInsert } from './commit';
import { inTransaction, sqlString } from './duckdb';

export interface RequeueFilter {
  /** Only this bronze table (e.g. bronze.celular_conectado). */
  table?: string;
  /** Only paths containing this text. */
  pathContains?: string;
}

/**
 * Removes quarantined files from the ledger, in one transaction with an event-log row naming
 * them, so the next pass takes them again. Their quarantine rows stay as history. Ingested files
 * are never touched: a file is in bronze at most once.
 */
export async function requeueQuarantined(lake: LakeConfig, filter: RequeueFilter = {}): Promise<string[]> {
  const where = [
    "outcome = 'quarantined'",
    ...(filter.table ? [`table_name = ${sqlString(filter.table)}`] : []),
    ...(filter.pathContains ? [`contains(path, ${sqlString(filter.pathContains)})`] : []),
  ].join(' AND ');
  return withLake(lake, (db) =>
    inTransaction(db, async () => {
      const paths = (await db.runAndReadAll(`SELECT DISTINCT path FROM lake.file_ledger WHERE ${where} ORDER BY 1`)).getRows().map((r) => String(r[0]));
      if (paths.length > 0) {
        await db.run(`DELETE FROM lake.file_ledger WHERE ${where}`);
        await db.run(eventLogInsert({ kind: 'requeue', layer: 'bronze', source: filter.table ?? 'all', durationMs: 0, rowsIn: paths.length, details: { paths } }));
      }
      return paths;
    }));
}
