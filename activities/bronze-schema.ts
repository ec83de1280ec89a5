// Bronze schemas: each file's own columns, the table's columns and their evolution, and the
// projection of a file onto the table that rescues what does not fit (like Auto Loader's
// rescued data column), never dropping a value.
import type { DuckDBConnection } from '@duckdb/node-api';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { addColumn, tableColumns } from '../lake/tables';
import { retryConcurrentCommit } from '../lake/commit';
import { qualified, sqlFilePath, sqlIdentifier, sqlString } from '../lake/duckdb';
import { isLineageColumn, LINEAGE_COLUMNS, type LandingFileInfo, type SchemaHints } from '../rules/bronze';

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

/** Why a listed file cannot be taken as it is now (gone, empty, a symbolic link), or undefined. */
export function notALandingFile(current: (LandingFileInfo & { symlink?: boolean }) | undefined): string | undefined {
  if (!current) return 'vanished: the file was listed but no longer exists';
  if (current.symlink) return 'a symbolic link: never followed (it may lead out of the landing zone); land the file itself';
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
    throw ApplicationFailure.retryable(`cannot read ${file.path} now (${code ?? describeError(error)})`, 'LandingFileUnreadable');
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

/**
 * The columns of a schema sample's files. They are not the batch's: one that cannot be read now
 * leaves the sample out (the batch's own files still decide), never fails the batch.
 */
export async function sampleSchemas(db: DuckDBConnection, files: LandingFileInfo[]): Promise<ReadableFile[]> {
  return (await fileSchemas(db, files, 0, () => undefined).catch(() => ({ readable: [] }))).readable;
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
 * The table's columns for these files, in the order the files first have them: a declared type
 * (schema hint) where there is one, else the type most of the files agree on. A tie goes to
 * VARCHAR when it is one of the tied types (text holds any value without loss), else to the type
 * of the earliest file. One odd file never decides a type its neighbours disagree with.
 */
export function inferColumns(files: ReadableFile[], hints: SchemaHints): Column[] {
  const declared = new Map(Object.entries(hints).map(([name, type]) => [name.toLowerCase(), type]));
  const seen = new Map<string, { name: string; votes: Map<string, number> }>();
  for (const file of files) {
    for (const [name, type] of file.columns) {
      if (isLineageColumn(name)) continue;
      const column = seen.get(name.toLowerCase()) ?? seen.set(name.toLowerCase(), { name, votes: new Map() }).get(name.toLowerCase())!;
      column.votes.set(type, (column.votes.get(type) ?? 0) + 1);
    }
  }
  return [...seen.entries()].map(([lower, { name, votes }]) => {
    const most = Math.max(...votes.values());
    const tied = [...votes.keys()].filter((type) => votes.get(type) === most); // in order of first appearance
    return [name, declared.get(lower) ?? (tied.includes('VARCHAR') ? 'VARCHAR' : tied[0])];
  });
}

/**
 * Creates a source's table before the batch's transaction, which maps the files onto its columns:
 * they are inferred from a sample of the source's files (`sample`, the batch's first) and its
 * declared types. An empty table left by a batch that then fails is harmless.
 */
export async function ensureTable(
  db: DuckDBConnection, table: string, files: ReadableFile[], hints: SchemaHints, sample: () => Promise<ReadableFile[]>,
): Promise<Map<string, string>> {
  const columns = await tableColumns(db, table);
  if (files.length === 0 || columns.size > 0) return columns;
  const inferred = inferColumns([...files, ...(await sample())], hints);
  await retryConcurrentCommit(() => db.run(`CREATE TABLE IF NOT EXISTS ${qualified(table)} (${
    [...inferred, ...LINEAGE_COLUMNS].map(([n, t]) => `${sqlIdentifier(n)} ${t}`).join(', ')})`));
  return tableColumns(db, table);
}

/**
 * Adds the columns new files bring to the table (whose `columns` the caller read), typed as
 * inferColumns says over this batch's files, and lineage columns the table lacks (made by an
 * earlier version), and records them (the table's first columns at schema version 1); returns
 * the new ones.
 */
export async function evolveSchema(
  db: DuckDBConnection, table: string, columns: Map<string, string>, files: ReadableFile[], hints: SchemaHints, batchId: string,
) {
  const [{ v }] = (await db.runAndReadAll(
    `SELECT coalesce(max(schema_version), 0) AS v FROM lake.schema_versions WHERE table_name = ${sqlString(table)}`,
  )).getRowObjectsJson() as { v: number }[];
  let schemaVersion = Number(v);
  const initial: Column[] = schemaVersion === 0 ? [...columns].filter(([name]) => !isLineageColumn(name)) : [];
  const known = new Set([...columns.keys()].map((c) => c.toLowerCase()));
  // Lineage columns added since the table was made (_row_index), then the files' new columns.
  const added = [...LINEAGE_COLUMNS, ...inferColumns(files, hints)].filter(([name]) => !known.has(name.toLowerCase())) as Column[];
  for (const [name, type] of added) await addColumn(db, table, name, type);
  const recorded = [...initial, ...added];
  if (recorded.length > 0) {
    schemaVersion++;
    await db.run(`INSERT INTO lake.schema_versions VALUES ${recorded
      .map(([n, t]) => `(${sqlString(table)}, ${schemaVersion}, ${sqlString(batchId)}, ${sqlString(n)}, ${sqlString(t)}, now())`)
      .join(', ')}`);
  }
  return { columns: added.length > 0 ? await tableColumns(db, table) : columns, added: recorded, schemaVersion };
}

/** A scalar type name as DuckDB's DESCRIBE writes it (nested types are never cast value by value). */
const SCALAR_TYPE = /^[A-Z][A-Z0-9_ ]*(\(\d+(,\s*\d+)?\))?$/;

/**
 * The SELECT list that maps one group of same-schema files onto the table's data columns. A column
 * whose file type differs from the table's is cast value by value where the value survives the
 * round trip (the text '100' into BIGINT, the number 100 into VARCHAR); a value that does not fit
 * (the text 'rápido' into BIGINT, the number 100.5 into BIGINT) is NULL in the column and kept in
 * _rescued_data under the column's name, like Auto Loader's rescued data column: never dropped,
 * and the row's other values, and other rows, are typed as usual. A file's columns named like a
 * lineage column are always rescued.
 */
export function projection(tableColumns: Map<string, string>, fileColumns: Column[], fileName: string): { select: string[]; rescued: string } {
  const fileTypes = new Map(fileColumns.map(([n, t]) => [n.toLowerCase(), { name: n, type: t }]));
  const select: string[] = [];
  const misfits: { test: string; json: string }[] = [];
  for (const [name, type] of tableColumns) {
    if (isLineageColumn(name)) continue;
    const found = fileTypes.get(name.toLowerCase());
    const target = sqlIdentifier(name);
    if (!found) {
      select.push(`NULL::${type} AS ${target}`);
      continue;
    }
    const value = sqlIdentifier(found.name);
    if (found.type === type) select.push(`${value} AS ${target}`);
    else if (LOSSLESS_WIDENING[type]?.includes(found.type)) select.push(`CAST(${value} AS ${type}) AS ${target}`);
    else {
      const cast = `TRY_CAST(${value} AS ${type})`;
      const fits = SCALAR_TYPE.test(found.type) && SCALAR_TYPE.test(type) ? `coalesce(TRY_CAST(${cast} AS ${found.type}) = ${value}, false)` : 'false';
      select.push(`CASE WHEN ${fits} THEN ${cast} END AS ${target}`);
      misfits.push({ test: `(${value} IS NOT NULL AND NOT ${fits})`, json: `json_object(${sqlString(name)}, ${value})` });
    }
  }
  const lineageNamed = [...fileTypes.values()].filter(({ name }) => isLineageColumn(name))
    .map(({ name }) => `json_object(${sqlString(name)}, ${sqlIdentifier(name)})`);
  if (misfits.length === 0 && lineageNamed.length === 0) return { select, rescued: 'NULL::JSON' };
  const parts = [...lineageNamed, ...misfits.map((m) => `CASE WHEN ${m.test} THEN ${m.json} ELSE '{}'::JSON END`), `json_object('_file_path', ${fileName})`];
  const anyRescued = lineageNamed.length > 0 ? 'true' : misfits.map((m) => m.test).join(' OR ');
  return { select, rescued: `CASE WHEN ${anyRescued} THEN json_merge_patch(${parts.join(', ')}) END` };
}
