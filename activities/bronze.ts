// Bronze I/O: list a source folder, plan the next bounded batch, ingest a batch exactly once.
import type { DuckDBConnection } from '@duckdb/node-api';
import { closeSync, fstatSync, openSync, readSync, statSync } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { addColumn, keepEvolvedTableOutOfCatalog, tableColumns, withLake, type LakeConfig } from '../lake/catalog';
import { commitBatch, fenceDetails, findCommitted, readFence, retryConcurrentCommit, snapshotOfFence, type BatchIdentity, type CommitInfo } from '../lake/commit';
import { qualified, sqlFilePath, sqlIdentifier, sqlString } from '../lake/duckdb';
import { assertLandingPath, isTempLandingName } from '../lake/landing';
import { config } from '../config';
import { batchLog, heartbeatEvery, isRetry } from './context';
import {
  bronzeTable, type BronzeCheckpoint, type IngestRequest, type IngestResult, type LandingFileInfo,
  type PlanRequest, type PlanResult, type Source,
} from '../rules/bronze';

export interface LakeDeps {
  lake: LakeConfig;
  landingDir: string;
  /** Folders landing zones may lie under; default config.landingRoots and landingDir. */
  landingRoots?: string[];
}

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

type Column = [name: string, type: string];
interface ReadableFile extends LandingFileInfo { columns: Column[] }
interface BadFile extends LandingFileInfo { error: string }

export function sourceDir(source: Source, landingRoot: string): string {
  return path.isAbsolute(source.path) ? source.path : path.join(landingRoot, source.path);
}

/**
 * Size and mtime of each path (undefined when it is gone). Synchronous stat costs a tenth of
 * the promise API per file; chunks yield so heartbeats keep going on a huge folder.
 */
async function statAll(paths: string[]): Promise<(LandingFileInfo | undefined)[]> {
  const infos: (LandingFileInfo | undefined)[] = [];
  for (let i = 0; i < paths.length; i += 2000) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const file of paths.slice(i, i + 2000)) {
      const s = statSync(file, { throwIfNoEntry: false });
      infos.push(s && { path: file, size: s.size, mtimeMs: Math.floor(s.mtimeMs) });
    }
  }
  return infos;
}

async function listFiles(dir: string): Promise<LandingFileInfo[]> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const names = entries
    .filter((e) => e.isFile() && !isTempLandingName(e.name))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  const infos = await statAll(names);
  return infos.filter((i): i is LandingFileInfo => i !== undefined);
}

/**
 * The listed paths' range as constants, so the ledger scan skips data files and row groups (by
 * their path statistics) that cannot hold any of them: landing names sort by time, so old
 * entries fall outside it (bench/profile.ts --ledger-rows).
 */
async function ledgerPathRange(db: DuckDBConnection): Promise<string> {
  const [[low, high]] = (await db.runAndReadAll('SELECT min(path), max(path) FROM listing')).getRows();
  return low === null ? 'false' : `f.path BETWEEN ${sqlString(String(low))} AND ${sqlString(String(high))}`;
}

async function appendListing(db: DuckDBConnection, files: LandingFileInfo[]): Promise<void> {
  await db.run('CREATE OR REPLACE TEMP TABLE listing (path VARCHAR, size_bytes BIGINT, mtime_ms BIGINT)');
  const appender = await db.createAppender('listing');
  for (const f of files) {
    appender.appendVarchar(f.path);
    appender.appendBigInt(BigInt(f.size));
    appender.appendBigInt(BigInt(f.mtimeMs));
    appender.endRow();
  }
  appender.closeSync();
}

/**
 * Cuts the planned files where their rows (from the parquet footers) pass `maxRows`, keeping
 * at least one, so a batch — and the silver batch that reads its version — stays bounded.
 * Footers are read in doubling chunks, so a backlog of big files costs a few footers per batch,
 * not every planned file's. Unreadable footers are left for the ingest activity to quarantine.
 */
/**
 * Rows per file from the Parquet footers, in one scan; if one footer is unreadable the scan fails
 * as a whole, and the files are read one by one: an unreadable file counts 0 rows (ingest
 * quarantines it) and the others keep their counts, so the batch bound holds.
 */
async function footerRowCounts(db: DuckDBConnection, files: LandingFileInfo[]): Promise<Map<string, number>> {
  const scan = async (list: LandingFileInfo[]) => new Map((await db.runAndReadAll(
    `SELECT file_name, num_rows FROM parquet_file_metadata([${list.map((f) => sqlFilePath(f.path)).join(', ')}])`)).getRows()
    .map((r) => [String(r[0]), Number(r[1])] as const));
  if (files.length === 0) return new Map();
  try {
    return await scan(files);
  } catch {
    const counts = new Map<string, number>();
    for (const file of files) {
      const one = await scan([file]).catch(() => new Map<string, number>());
      counts.set(file.path, one.get(file.path) ?? 0);
    }
    return counts;
  }
}

async function withinRowBudget(db: DuckDBConnection, files: LandingFileInfo[], maxRows: number): Promise<LandingFileInfo[]> {
  let total = 0;
  const kept: LandingFileInfo[] = [];
  for (let start = 0, size = 256; start < files.length; start += size, size *= 2) {
    const chunk = files.slice(start, start + size);
    const readable = chunk.filter((f) => f.size > 0);
    const counts = await footerRowCounts(db, readable);
    for (const file of chunk) {
      total += counts.get(file.path) ?? 0;
      if (kept.length > 0 && total > maxRows) return kept;
      kept.push(file);
    }
  }
  return kept;
}

function describeError(error: unknown): string {
  return (error as Error).message?.split('\n')[0] ?? String(error);
}

export function bronzeActivities(deps: LakeDeps) {
  /** The next batch of a source: files not in the ledger, oldest first, within the batch bounds. */
  async function planBronzeBatch(request: PlanRequest): Promise<PlanResult> {
    const started = performance.now();
    const listedAtMs = Date.now();
    const root = request.landingPath ?? deps.landingDir;
    const dir = sourceDir(request.source, root);
    assertLandingPath(dir, deps.landingRoots ?? [...config.landingRoots, deps.landingDir]);
    // A source folder may not exist yet (nothing landed there); a missing landing zone is said, not listed as empty.
    if (!statSync(root, { throwIfNoEntry: false })?.isDirectory()) {
      return { files: [], waiting: 0, listedAtMs, elapsedMs: 0, landingMissing: `the landing folder ${root} does not exist (or is not a folder)` };
    }
    const listed = await listFiles(dir);
    const cutoff = request.cutoffMs ?? listedAtMs;
    return withLake(deps.lake, async (db) => {
      await appendListing(db, listed);
      const rows = (await db.runAndReadAll(`
        WITH waiting AS (
          SELECT l.* FROM listing l
          ANTI JOIN (SELECT path FROM lake.file_ledger f WHERE f.table_name = ${sqlString(bronzeTable(request.source))} AND ${await ledgerPathRange(db)}) f
            ON f.path = l.path
          WHERE l.mtime_ms <= ${cutoff}
            -- a zero-byte file may be a producer still writing: taken (and quarantined) once it stays empty
            AND NOT (l.size_bytes = 0 AND l.mtime_ms > ${listedAtMs - request.emptyFileGraceSeconds * 1000})
        ), ordered AS (
          SELECT *, count(*) OVER () AS waiting,
                 row_number() OVER (ORDER BY mtime_ms, path) AS n,
                 sum(size_bytes) OVER (ORDER BY mtime_ms, path ROWS UNBOUNDED PRECEDING) AS bytes_so_far
          FROM waiting
        )
        SELECT path, size_bytes, mtime_ms, waiting FROM ordered
        WHERE n <= ${request.maxFiles} AND (bytes_so_far <= ${request.maxBytes} OR n = 1)
        ORDER BY n`)).getRowObjectsJson() as { path: string; size_bytes: string; mtime_ms: string; waiting: string }[];
      await db.run('DROP TABLE listing');
      const files = rows.map((r) => ({ path: r.path, size: Number(r.size_bytes), mtimeMs: Number(r.mtime_ms) }));
      const batch = await withinRowBudget(db, files, request.maxRows);
      return { files: batch, waiting: Number(rows[0]?.waiting ?? 0), listedAtMs, elapsedMs: Math.round(performance.now() - started) };
    });
  }

  /**
   * Ingests one batch: plans it (unless the workflow sent the files, as histories from before
   * in-batch planning do), then rows + lineage + ledger + commit in one transaction. A retry of a
   * committed batch returns the fence's result without planning.
   */
  async function ingestBronzeBatch(request: IngestRequest): Promise<IngestResult> {
    const started = performance.now();
    const table = bronzeTable(request.source);
    let commit = isRetry() ? await withLake(deps.lake, (db) => findCommitted(db, ownerIdentity(request))) : undefined;
    if (!commit) {
      const plan = request.plan && (await planBronzeBatch(request.plan));
      const files = request.files ?? plan?.files ?? [];
      if (files.length === 0) {
        return emptyResult(request, plan, Math.round(performance.now() - started));
      }
      const planned = plan && { cutoffMs: request.plan?.cutoffMs ?? plan.listedAtMs, waitingAfter: plan.waiting - files.length };
      commit = await ingestOnce({ ...request, files }, planned);
    }
    const next = request.next && (await planBronzeBatch(request.next));
    return { ...describeCommit(table, commit), ...(next && { next }), elapsedMs: Math.round(performance.now() - started) };
  }

  /** The batch's commit: written now, or found when an earlier attempt already committed it. */
  async function ingestOnce(request: IngestRequest & { files: LandingFileInfo[] }, planned?: PlannedBatch): Promise<CommitInfo> {
    return withLake(deps.lake, async (db) => {
      let phase = 'checking files';
      let checked = 0;
      const stopHeartbeat = heartbeatEvery(2000, () => ({ phase, filesChecked: checked, filesTotal: request.files.length }));
      try {
        const bad: BadFile[] = [];
        const present: LandingFileInfo[] = [];
        const current = await statAll(request.files.map((f) => f.path));
        request.files.forEach((file, i) => {
          const problem = missingOrEmpty(current[i]);
          if (problem) bad.push({ ...file, error: problem });
          else present.push(file);
        });
        const graceSeconds = request.plan?.emptyFileGraceSeconds ?? request.next?.emptyFileGraceSeconds ?? 30;
        const schemas = await fileSchemas(db, present, graceSeconds, () => checked++);
        bad.push(...schemas.bad);
        const readable = schemas.readable;
        checked = request.files.length;
        phase = 'writing';
        const columns = await ensureTable(db, bronzeTable(request.source), readable);
        try {
          return await writeBatch(db, request, columns, readable, bad, planned);
        } catch (error) {
          // A file whose footer reads but whose data does not: find it, quarantine it, write the rest.
          phase = 'scanning files after a failed write';
          const unreadable = await findUnscannable(db, readable, graceSeconds);
          if (unreadable.length === 0) throw error;
          const names = new Set(unreadable.map((f) => f.path));
          phase = 'writing';
          return await writeBatch(db, request, columns, readable.filter((f) => !names.has(f.path)), [...bad, ...unreadable], planned);
        }
      } finally {
        stopHeartbeat();
      }
    });
  }

  /** Rebuilds a checkpoint from the lake (fence, ledger, table), for a workflow that starts without one. */
  async function readBronzeCheckpoint(source: Source): Promise<BronzeCheckpoint> {
    const table = bronzeTable(source);
    return withLake(deps.lake, async (db) => {
      const fence = await readFence(db, table);
      const last = fenceDetails<{ schemaVersion?: number }>(fence);
      const [row] = (await db.runAndReadAll(`
        SELECT count(*) FILTER (WHERE outcome = 'ingested') AS ingested, count(*) FILTER (WHERE outcome = 'quarantined') AS quarantined
        FROM lake.file_ledger WHERE table_name = ${sqlString(table)}`)).getRowObjectsJson() as Record<string, string>[];
      const exists = (await tableColumns(db, table)).size > 0;
      const rows = exists ? Number((await db.runAndReadAll(`SELECT count(*) FROM ${qualified(table)}`)).getRows()[0][0]) : 0;
      const version = await snapshotOfFence(db, fence);
      return {
        nextBatchSeq: (fence?.batchSeq ?? -1) + 1, version, rowsIngested: rows,
        filesIngested: Number(row.ingested), filesQuarantined: Number(row.quarantined),
        schemaVersion: last?.schemaVersion ?? 0, passes: 0,
      };
    });
  }

  return { planBronzeBatch, ingestBronzeBatch, readBronzeCheckpoint };
}

function missingOrEmpty(current: LandingFileInfo | undefined): string | undefined {
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
async function fileSchemas(db: DuckDBConnection, files: LandingFileInfo[], graceSeconds: number, onChecked: () => void): Promise<{ readable: ReadableFile[]; bad: BadFile[] }> {
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

async function findUnscannable(db: DuckDBConnection, files: ReadableFile[], graceSeconds: number): Promise<BadFile[]> {
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
async function ensureTable(db: DuckDBConnection, table: string, files: ReadableFile[]): Promise<Map<string, string>> {
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
async function evolveSchema(db: DuckDBConnection, table: string, columns: Map<string, string>, files: ReadableFile[], batchId: string) {
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
function projection(tableColumns: Map<string, string>, fileColumns: Column[], fileName: string): { select: string[]; rescued: string } {
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

function ownerIdentity(request: IngestRequest): BatchIdentity {
  const table = bronzeTable(request.source);
  return { owner: table, batchId: request.batchId, batchSeq: request.batchSeq, operation: 'STREAMING UPDATE', log: batchLog('bronze', table) };
}

/** The plan's facts kept with the commit, so a retry that finds it committed answers as the first attempt would. */
interface PlannedBatch {
  cutoffMs: number;
  waitingAfter: number;
}

/** Nothing was waiting: no commit, and the batch number stays free. */
function emptyResult(request: IngestRequest, plan: PlanResult | undefined, elapsedMs: number): IngestResult {
  return {
    batchId: request.batchId, version: 0, rows: 0, filesIngested: 0, filesQuarantined: 0, schemaVersion: 0, newColumns: [],
    alreadyCommitted: false, committedAt: '', elapsedMs, cutoffMs: request.plan?.cutoffMs ?? plan?.listedAtMs, waitingAfter: 0,
    landingMissing: plan?.landingMissing,
  };
}

async function writeBatch(
  db: DuckDBConnection, request: IngestRequest, columns: Map<string, string>, readable: ReadableFile[], bad: BadFile[], planned?: PlannedBatch,
): Promise<CommitInfo> {
  const table = bronzeTable(request.source);
  return commitBatch(db, ownerIdentity(request), async () => {
    let rows = 0;
    let evolution = { added: [] as Column[], schemaVersion: 0, columns: new Map<string, string>() };
    if (readable.length > 0) {
      evolution = await evolveSchema(db, table, columns, readable, request.batchId);
      const groups = new Map<string, ReadableFile[]>();
      for (const file of readable) {
        const key = JSON.stringify(file.columns);
        groups.set(key, [...(groups.get(key) ?? []), file]);
      }
      for (const files of groups.values()) {
        // Same-schema files: no union_by_name; lineage looked up by file_index in the file list
        // (cheaper per row than filename = true and a join on the path).
        const fileName = `[${files.map((f) => sqlString(f.path)).join(', ')}][file_index::BIGINT + 1]`;
        const { select, rescued } = projection(evolution.columns, files[0].columns, fileName);
        const result = await db.run(`
          INSERT INTO ${qualified(table)} BY NAME
          SELECT ${select.join(', ')},
                 ${fileName} AS rastreamento_source,
                 ${sqlString(request.source.label)} AS source,
                 make_timestamp([${files.map((f) => f.mtimeMs).join(', ')}][file_index::BIGINT + 1] * 1000) AS data_arquivo_ingestao,
                 true AS status,
                 ${rescued} AS _rescued_data,
                 ${sqlString(request.batchId)} AS _batch_id
          FROM read_parquet([${files.map((f) => sqlFilePath(f.path)).join(', ')}])`);
        rows += result.rowsChanged;
      }
    }
    const ledger = [
      ...readable.map((f) => ({ ...f, outcome: 'ingested' })),
      ...bad.map((f) => ({ ...f, outcome: 'quarantined' })),
    ];
    if (ledger.length > 0) {
      await db.run(`INSERT INTO lake.file_ledger VALUES ${ledger
        .map((f) => `(${sqlString(table)}, ${sqlString(f.path)}, ${f.size}, ${f.mtimeMs}, ${sqlString(f.outcome)}, ${sqlString(request.batchId)}, now())`)
        .join(', ')}`);
    }
    if (bad.length > 0) {
      await db.run(`INSERT INTO bronze.quarantine VALUES ${bad
        .map((f) => `(${sqlString(table)}, ${sqlString(f.path)}, ${sqlString(f.error)}, ${sqlString(request.batchId)}, now())`)
        .join(', ')}`);
    }
    return {
      tables: { [table]: { rowsInserted: rows } },
      event: { rowsIn: rows, rowsOut: rows, quarantined: bad.length },
      details: {
        filesIngested: readable.length, filesQuarantined: bad.length,
        schemaVersion: evolution.schemaVersion, newColumns: evolution.added.map(([n]) => n), ...planned,
      },
    };
  });
}

function describeCommit(table: string, commit: CommitInfo): Omit<IngestResult, 'elapsedMs'> {
  const d = commit.details as { filesIngested: number; filesQuarantined: number; schemaVersion: number; newColumns: string[] } & Partial<PlannedBatch>;
  return {
    batchId: commit.batchId, version: commit.snapshot, rows: commit.tables[table]?.rowsInserted ?? 0,
    filesIngested: d.filesIngested, filesQuarantined: d.filesQuarantined, schemaVersion: d.schemaVersion,
    newColumns: d.newColumns, alreadyCommitted: commit.alreadyCommitted, committedAt: commit.committedAt,
    cutoffMs: d.cutoffMs, waitingAfter: d.waitingAfter,
  };
}
