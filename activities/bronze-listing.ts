// Bronze listing and planning: which landing files of a source wait, oldest first, within a
// batch's bounds (files, bytes, rows from the Parquet footers).
import type { DuckDBConnection } from '@duckdb/node-api';
import { lstatSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sqlFilePath, sqlString } from '../lake/duckdb';
import { isTempLandingName } from '../lake/landing';
import { isObjectUrl, joinUrl, listObjects } from '../lake/object-store';
import { bronzeTable, type LandingFileInfo, type PlanRequest, type Source } from '../rules/bronze';

export function sourceDir(source: Source, landingRoot: string): string {
  if (path.isAbsolute(source.path) || isObjectUrl(source.path)) return source.path;
  return isObjectUrl(landingRoot) ? joinUrl(landingRoot, source.path) : path.join(landingRoot, source.path);
}

/** A path as listed: a symbolic link is never followed (it may lead out of the landing zone), only named. */
export interface ListedFile extends LandingFileInfo {
  symlink?: boolean;
}

/**
 * Size and mtime of each path, of a symbolic link itself (undefined when it is gone). Synchronous
 * stat costs a tenth of the promise API per file; chunks yield so heartbeats keep going on a huge folder.
 */
export async function statAll(paths: string[]): Promise<(ListedFile | undefined)[]> {
  if (paths.some(isObjectUrl)) return statObjects(paths);
  const infos: (ListedFile | undefined)[] = [];
  for (let i = 0; i < paths.length; i += 2000) {
    if (i > 0) await new Promise((resolve) => setImmediate(resolve));
    for (const file of paths.slice(i, i + 2000)) {
      const s = lstatSync(file, { throwIfNoEntry: false });
      infos.push(s && { path: file, size: s.size, mtimeMs: Math.floor(s.mtimeMs), ...(s.isSymbolicLink() && { symlink: true }) });
    }
  }
  return infos;
}

/**
 * The same for objects, from one listing per prefix (a HEAD per object would cost a request each).
 * A listing is consistent on S3 (strong read-after-write), so a new or rewritten object shows.
 */
async function statObjects(paths: string[]): Promise<(ListedFile | undefined)[]> {
  const listed = new Map<string, ListedFile>();
  for (const prefix of new Set(paths.map((p) => p.slice(0, p.lastIndexOf('/'))))) {
    for (const o of await listObjects(prefix)) listed.set(o.path, o);
  }
  return paths.map((p) => listed.get(p));
}

/** Files of a new source's schema sample, besides its first batch's: the table is inferred from up to this many. */
const SAMPLE_FILES = 100;

/** The source folder's oldest files (by modification time, then path) besides `batch`, up to the sample's size. */
export async function sampleFiles(dir: string, batch: LandingFileInfo[]): Promise<LandingFileInfo[]> {
  const taken = new Set(batch.map((f) => f.path));
  return (await listFiles(dir)).filter((f) => !taken.has(f.path) && f.size > 0 && !f.symlink)
    .sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1))
    .slice(0, Math.max(0, SAMPLE_FILES - batch.length));
}

/** A source folder's files, symbolic links included (taken to be quarantined, never followed). */
export async function listFiles(dir: string): Promise<ListedFile[]> {
  // Objects: directory-listing mode, as Auto Loader's; an object appears whole, never half-written.
  if (isObjectUrl(dir)) return (await listObjects(dir)).filter((o) => !isTempLandingName(o.path.slice(o.path.lastIndexOf('/') + 1)));
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const names = entries
    .filter((e) => (e.isFile() || e.isSymbolicLink()) && !isTempLandingName(e.name))
    .map((e) => path.join(e.parentPath ?? (e as unknown as { path: string }).path, e.name));
  const infos = await statAll(names);
  return infos.filter((i): i is ListedFile => i !== undefined);
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

async function appendListing(db: DuckDBConnection, files: ListedFile[]): Promise<void> {
  await db.run('CREATE OR REPLACE TEMP TABLE listing (path VARCHAR, size_bytes BIGINT, mtime_ms BIGINT, symlink BOOLEAN)');
  const appender = await db.createAppender('listing');
  for (const f of files) {
    appender.appendVarchar(f.path);
    appender.appendBigInt(BigInt(f.size));
    appender.appendBigInt(BigInt(f.mtimeMs));
    appender.appendBoolean(Boolean(f.symlink));
    appender.endRow();
  }
  appender.closeSync();
}

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

/**
 * Cuts the planned files where their rows (from the parquet footers) pass `maxRows`, keeping
 * at least one, so a batch — and the silver batch that reads its version — stays bounded.
 * Footers are read in doubling chunks, so a backlog of big files costs a few footers per batch,
 * not every planned file's. Unreadable footers are left for the ingest activity to quarantine.
 */
export async function withinRowBudget(db: DuckDBConnection, files: ListedFile[], maxRows: number): Promise<LandingFileInfo[]> {
  let total = 0;
  const kept: LandingFileInfo[] = [];
  for (let start = 0, size = 256; start < files.length; start += size, size *= 2) {
    const chunk = files.slice(start, start + size);
    const readable = chunk.filter((f) => f.size > 0 && !f.symlink);
    const counts = await footerRowCounts(db, readable);
    for (const file of chunk) {
      total += counts.get(file.path) ?? 0;
      if (kept.length > 0 && total > maxRows) return kept;
      kept.push(file);
    }
  }
  return kept;
}

/**
 * The listed files not yet in the source's ledger and landed by the cutoff (availableNow), oldest
 * first, as many as fit in the batch's file and byte bounds; and how many wait in all.
 */
export async function waitingFiles(
  db: DuckDBConnection, request: PlanRequest, listed: ListedFile[], cutoff: number, listedAtMs: number,
): Promise<{ files: ListedFile[]; waiting: number }> {
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
    SELECT path, size_bytes, mtime_ms, symlink, waiting FROM ordered
    WHERE n <= ${request.maxFiles} AND (bytes_so_far <= ${request.maxBytes} OR n = 1)
    ORDER BY n`)).getRowObjectsJson() as { path: string; size_bytes: string; mtime_ms: string; symlink: boolean; waiting: string }[];
  await db.run('DROP TABLE listing');
  const files = rows.map((r) => ({ path: r.path, size: Number(r.size_bytes), mtimeMs: Number(r.mtime_ms), ...(r.symlink && { symlink: true }) }));
  return { files, waiting: Number(rows[0]?.waiting ?? 0) };
}
