// Bronze schemas: each file's own columns, the table's columns and their evolution, and the
// projection of a file onto the table that rescues what does not fit (like Auto Loader's
// rescued data column), never dropping a value.
import type { DuckDBConnection } from '@duckdb/node-api';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { addColumn, keepEvolvedTableOutOfCatalog, tableColumns } from '../lake/catalog';
import { retryConcurrentCommit } from '../lake/commit';
import { qualified, sqlFilePath, sqlIdentifier, sqlString } from '../lake/duckdb';
import type { LandingFileInfo } from '../rules/bronze';

/** Lineage columns on every bronze row (names as in the source system, plus batch and version). */
const LINEAGE_COLUMNS: [string, string][] = [
  ['rastreamento_source', 'VARCHAR'],
  ['source', 'VARCHAR'],
  ['data_arquivo_ingestao', 'TIMESTAMP'],
  ['status', 'BOOLEAN'],
  ['_rescued_data', 'JSON'],
  ['_batch_id', 'VARCHAR'],
];
const RESERVED = new Set(LINEAGE_COLUMNS.map(([name]) => name.toLowerCase()));

/** Type changes that lose nothing: the value is cast instead of rescued. */
const LOSSLESS_WIDENING: Record<string, string[]> = {
  BIGINT: ['TINYINT', 'SMALLINT', 'INTEGER', 'UTINYINT', 'USMALLINT', 'UINTEGER'],
  INTEGER: ['TINYINT', 'SMALLINT', 'UTINYINT', 'USMALLINT'],
  DOUBLE: ['FLOAT', 'TINYINT', 'SMALLINT', 'INTEGER'],
  TIMESTAMP: ['TIMESTAMP_MS', 'TIMESTAMP_S', 'DATE'],
};

export type Column = [name: string, type: string];
export interface ReadableFile extends LandingFileInfo { columns: Column[] }
export interface BadFile extends LandingFileInfo { error: string }

function describeError(error: unknown): string {
  return (error as Error).message?.split('\n')[0] ?? String(error);
}

export function missingOrEmpty(current: LandingFileInfo | undefined): string | undefined {
  if (!current) return 'vanished: the file was listed but no longer exists';
  if (current.size === 0) return 'empty file (0 bytes)';
  return undefined;
}

async function describe(db: DuckDBConnection, source: string): Promise<Column[]> {
  const rows = (await db.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRows();
  return rows.map((r) => [String(r[0]), String(r[1])] as Column);
}

/** The file's columns, or why it cannot be taken; throws when it cannot be read now (retried, then parked). */
async function describeFile(db: DuckDBConnection, file: LandingFileInfo, graceSeconds: number): Promise<Column[] | string> {
  try {
    return await describe(db, `read_parquet(${sqlFilePath(file.path)})`);
  } catch (error) {
    assertBadNotBusy(file, graceSeconds);
    return `unreadable parquet: ${describeError(error)}`;
  }
}

/**
 * Tells "this file is bad" (read fine, but not parquet: no magic, truncated, broken footer) from
 * "cannot read it now" (permissions, I/O errors, a producer still writing it in place): the
 * latter throws a retryable error, so the batch is retried with backoff and, if it persists,
 * parked — never quarantined for a passing fault. Quarantined files can be requeued.
 */
function assertBadNotBusy(file: LandingFileInfo, graceSeconds: number): void {
  let fd: number | undefined;
  try {
    fd = openSync(file.path, 'r');
    const { size, mtimeMs } = fstatSync(fd);
    const tail = Buffer.alloc(4);
    readSync(fd, tail, 0, 4, Math.max(0, size - 4));
    const changedRecently = Date.now() - mtimeMs < graceSeconds * 1000;
    if (tail.toString('latin1') !== 'PAR1' && changedRecently) {
      throw ApplicationFailure.retryable(
        `${file.path} changed ${((Date.now() - mtimeMs) / 1000).toFixed(1)} s ago and has no parquet footer yet: a producer may still be writing it (write to a temporary name and rename)`,
        'LandingFileNotReady');
    }
  } catch (error) {
    if (error instanceof ApplicationFailure) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // gone: quarantined as unreadable, requeue brings it back if it returns
    throw ApplicationFailure.retryable(`cannot read ${file.path} now (${code ?? describeError(error)}); retrying`, 'LandingFileUnreadable');
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Each file's own columns and types, never a neighbour's: one scan of the footers groups the
 * files by their parquet schema, then one DESCRIBE per group gives DuckDB's types. When a
 * footer is unreadable the scan fails as a whole, and each file is described on its own (the
 * same answer, file by file), so the bad one is named.
 */
export async function fileSchemas(db: DuckDBConnection, files: LandingFileInfo[], graceSeconds: number, onChecked: () => void): Promise<{ readable: ReadableFile[]; bad: BadFile[] }> {
  const readable: ReadableFile[] = [];
  const bad: BadFile[] = [];
  if (files.length === 0) return { readable, bad };
  let signatures: Map<string, string>;
  try {
    const rows = (await db.runAndReadAll(`
      SELECT file_name, list_sort(list(concat_ws(':', name, type, converted_type, logical_type, repetition_type, num_children, scale, precision)))::VARCHAR
      FROM parquet_schema([${files.map((f) => sqlFilePath(f.path)).join(', ')}]) GROUP BY file_name`)).getRows();
    signatures = new Map(rows.map((r) => [String(r[0]), String(r[1])]));
  } catch {
    for (const file of files) {
      const columns = await describeFile(db, file, graceSeconds);
      if (typeof columns === 'string') bad.push({ ...file, error: columns });
      else readable.push({ ...file, columns });
      onChecked();
    }
    return { readable, bad };
  }
  const columnsOfGroup = new Map<string, Column[] | string>();
  for (const file of files) {
    const signature = signatures.get(file.path) ?? `missing:${file.path}`;
    if (!columnsOfGroup.has(signature)) columnsOfGroup.set(signature, await describeFile(db, file, graceSeconds));
    const columns = columnsOfGroup.get(signature)!;
    if (typeof columns === 'string') bad.push({ ...file, error: columns });
    else readable.push({ ...file, columns });
    onChecked();
  }
  return { readable, bad };
}

export async function findUnscannable(db: DuckDBConnection, files: ReadableFile[], graceSeconds: number): Promise<BadFile[]> {
  const bad: BadFile[] = [];
  for (const file of files) {
    try {
      await db.run(`SELECT count(*) FROM (SELECT DISTINCT * FROM read_parquet(${sqlFilePath(file.path)}))`);
    } catch (error) {
      assertBadNotBusy(file, graceSeconds);
      bad.push({ path: file.path, size: file.size, mtimeMs: file.mtimeMs, error: `unreadable parquet data: ${describeError(error)}` });
    }
  }
  return bad;
}

/**
 * Creates a source's table from its first file, in a transaction of its own before the batch's:
 * DuckLake 1.4.4 can fail a commit that races another owner's CREATE TABLE, and a failed batch
 * transaction is costly to write again. An empty table left by a batch that then fails is harmless.
 */
export async function ensureTable(db: DuckDBConnection, table: string, files: ReadableFile[]): Promise<Map<string, string>> {
  const columns = await tableColumns(db, table);
  if (files.length === 0 || columns.size > 0) return columns;
  const first = files[0].columns.filter(([name]) => !RESERVED.has(name.toLowerCase()));
  await retryConcurrentCommit(() => db.run(`CREATE TABLE IF NOT EXISTS ${qualified(table)} (${
    [...first, ...LINEAGE_COLUMNS].map(([n, t]) => `${sqlIdentifier(n)} ${t}`).join(', ')})`));
  return tableColumns(db, table);
}

/**
 * Adds the columns new files bring to the table (whose `columns` the caller read) and records
 * them (the table's first columns at schema version 1); returns the new ones.
 */
export async function evolveSchema(db: DuckDBConnection, table: string, columns: Map<string, string>, files: ReadableFile[], batchId: string) {
  const [{ v }] = (await db.runAndReadAll(
    `SELECT coalesce(max(schema_version), 0) AS v FROM lake.schema_versions WHERE table_name = ${sqlString(table)}`,
  )).getRowObjectsJson() as { v: number }[];
  let schemaVersion = Number(v);
  const added: Column[] = schemaVersion === 0 ? [...columns].filter(([name]) => !RESERVED.has(name.toLowerCase())) : [];
  const known = new Set([...columns.keys()].map((c) => c.toLowerCase()));
  for (const file of files) {
    for (const [name, type] of file.columns) {
      if (known.has(name.toLowerCase())) continue;
      await addColumn(db, table, name, type);
      known.add(name.toLowerCase());
      added.push([name, type]);
    }
  }
  if (added.length === 0 && schemaVersion > 1) await keepEvolvedTableOutOfCatalog(db, table);
  if (added.length > 0) {
    schemaVersion++;
    await db.run(`INSERT INTO lake.schema_versions VALUES ${added
      .map(([n, t]) => `(${sqlString(table)}, ${schemaVersion}, ${sqlString(batchId)}, ${sqlString(n)}, ${sqlString(t)}, now())`)
      .join(', ')}`);
  }
  return { columns: added.length > 0 ? await tableColumns(db, table) : columns, added, schemaVersion };
}

/** The SELECT list that maps one group of same-schema files onto the table's data columns. */
export function projection(tableColumns: Map<string, string>, fileColumns: Column[], fileName: string): { select: string[]; rescued: string } {
  const fileTypes = new Map(fileColumns.map(([n, t]) => [n.toLowerCase(), { name: n, type: t }]));
  const select: string[] = [];
  const rescued: string[] = [];
  for (const [name, type] of tableColumns) {
    if (RESERVED.has(name.toLowerCase())) continue;
    const found = fileTypes.get(name.toLowerCase());
    const target = sqlIdentifier(name);
    if (!found) select.push(`NULL::${type} AS ${target}`);
    else if (found.type === type) select.push(`${sqlIdentifier(found.name)} AS ${target}`);
    else if (LOSSLESS_WIDENING[type]?.includes(found.type)) select.push(`CAST(${sqlIdentifier(found.name)} AS ${type}) AS ${target}`);
    else {
      // Like Auto Loader's rescued data column: the value is kept, as JSON, never dropped.
      select.push(`NULL::${type} AS ${target}`);
      rescued.push(`${sqlString(found.name)}, ${sqlIdentifier(found.name)}`);
    }
  }
  for (const [lower, { name }] of fileTypes) {
    if (RESERVED.has(lower)) rescued.push(`${sqlString(name)}, ${sqlIdentifier(name)}`);
  }
  const rescuedSql = rescued.length ? `json_object(${rescued.join(', ')}, '_file_path', ${fileName})` : 'NULL::JSON';
  return { select, rescued: rescuedSql };
}
