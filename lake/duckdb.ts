// DuckDB access shared by every activity. One instance per database path per process:
// DuckDB lets a single process own a database file, so the worker keeps it open.
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { config } from '../config';

const instances = new Map<string, Promise<DuckDBInstance>>();

/** The project-local extension folder (scripts/setup.sh fills it from PyPI wheels), else DuckDB's default. */
export function extensionSettings(): Record<string, string> {
  return existsSync(config.extensionDir) ? { extension_directory: config.extensionDir } : {};
}

/** DuckDB's memory limit per process; past it DuckDB spills to disk where it can, else fails. */
export function duckdbMemoryLimit(): string {
  return process.env.NETPULSE_DUCKDB_MEMORY ?? '256MB';
}

/**
 * DuckDB's threads per instance (NETPULSE_DUCKDB_THREADS, a whole number ≥ 1), or undefined when
 * unset: DuckDB's default, one per core. For several workers on one host side by side (one core
 * each, with taskset) without each one's DuckDB scheduling a thread per core.
 */
export function duckdbThreads(): number | undefined {
  const raw = process.env.NETPULSE_DUCKDB_THREADS;
  if (raw === undefined) return undefined;
  const threads = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(threads) || threads < 1) {
    throw new Error(`NETPULSE_DUCKDB_THREADS: "${raw}" is not a whole number ≥ 1 (DuckDB's threads per process)`);
  }
  return threads;
}

/** The `threads` option of a DuckDB instance, when NETPULSE_DUCKDB_THREADS sets one. */
export function threadSettings(): Record<string, string> {
  const threads = duckdbThreads();
  return threads === undefined ? {} : { threads: String(threads) };
}

/** A statement needed more memory than NETPULSE_DUCKDB_MEMORY allows; the message says what to change. */
export class OutOfMemoryError extends Error {}

export const isOutOfMemory = (error: unknown) => /Out of Memory Error/.test(String((error as { message?: unknown } | undefined)?.message));

/** What a writer changes when a batch runs out of memory. */
export const BATCH_REMEDY = 'give the layer fewer rows per batch (maxRowsPerBatch, 250000 by default)';

/**
 * DuckDB's out-of-memory error, saying what to change (`remedy`, or raise the limit; the original
 * is its cause); any other error as it is. A batch's stays retryable: other activities of the
 * process share the limit.
 */
export function explainOutOfMemory(error: unknown, remedy = BATCH_REMEDY): unknown {
  if (!isOutOfMemory(error)) return error;
  return new OutOfMemoryError(`${(error as Error).message.split('\n')[0]}. DuckDB may use ${duckdbMemoryLimit()} in this process `
    + `(NETPULSE_DUCKDB_MEMORY): ${remedy} or raise the limit`, { cause: error });
}

/** Each open instance's spill folder. */
const spillFolders = new Map<DuckDBInstance, string>();
let instancesCreated = 0;
const removeSpillFolders = () => spillFolders.forEach((dir) => rmSync(dir, { recursive: true, force: true }));

/**
 * A DuckDB instance that spills past its memory limit into a folder of its own,
 * netpulse-duckdb-<pid>-<n> in the system temp folder (else an in-memory database spills into .tmp
 * in the working directory). Two instances must not share one: their spill files have the same
 * names (two spilling at once crashed the process) and the first to close deletes the folder under
 * the other. DuckDB makes the folder on the first spill and deletes it when the instance closes;
 * closeInstance, and the process's exit, delete what is left (a process that exits without closing
 * its instances, as the CLI does).
 */
export async function createInstance(dbPath: string, options: Record<string, string> = {}): Promise<DuckDBInstance> {
  const spill = path.join(os.tmpdir(), `netpulse-duckdb-${process.pid}-${++instancesCreated}`);
  const instance = await DuckDBInstance.create(dbPath, { ...options, temp_directory: spill });
  if (spillFolders.size === 0) process.on('exit', removeSpillFolders);
  spillFolders.set(instance, spill);
  return instance;
}

/** Closes an instance made by createInstance and deletes its spill folder. */
export function closeInstance(instance: DuckDBInstance): void {
  try {
    instance.closeSync();
  } finally {
    const spill = spillFolders.get(instance);
    if (spill) rmSync(spill, { recursive: true, force: true });
    spillFolders.delete(instance);
    if (spillFolders.size === 0) process.off('exit', removeSpillFolders);
  }
}

export function openInstance(dbPath = ':memory:'): Promise<DuckDBInstance> {
  let instance = instances.get(dbPath);
  if (!instance) {
    instance = createInstance(dbPath, {
      // Bounded memory: DuckDB spills to disk past the limit instead of growing the worker.
      // The process uses ~350 MB more than this (bench/profile.ts: 2M rows through bronze and
      // silver peaked at 606 MB RSS with 256MB, 811 MB with 512MB, at the same speed).
      memory_limit: duckdbMemoryLimit(),
      ...threadSettings(),
      preserve_insertion_order: 'false',
      // The default (16MB) checkpointed after nearly every silver batch, ~1 s each; in-place updates
      // wait in memory until a checkpoint, so too large a threshold can run out of memory (1GB did
      // on 10M rows, when device state was still MERGEd in place). Measured with bench/profile.ts.
      checkpoint_threshold: process.env.NETPULSE_DUCKDB_CHECKPOINT_THRESHOLD ?? '64MB',
      // httpfs for landing files on object storage
      ...extensionSettings(),
    });
    instances.set(dbPath, instance);
    instance.catch(() => instances.delete(dbPath));
  }
  return instance;
}

/** Runs `work` on a fresh connection and always closes it. */
export async function withConnection<T>(dbPath: string, work: (c: DuckDBConnection) => Promise<T>): Promise<T> {
  const connection = await (await openInstance(dbPath)).connect();
  try {
    return await work(connection);
  } finally {
    connection.closeSync();
  }
}

/** Runs `work` in one transaction: committed when it returns, rolled back when it throws. */
export async function inTransaction<T>(db: DuckDBConnection, work: () => Promise<T>): Promise<T> {
  await db.run('BEGIN TRANSACTION');
  try {
    const result = await work();
    await db.run('COMMIT');
    return result;
  } catch (error) {
    await db.run('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

/** Closes every instance this process opened (worker shutdown, test teardown). */
export async function closeAllInstances(): Promise<void> {
  const all = [...instances.values()];
  instances.clear();
  for (const instance of all) closeInstance(await instance);
}

export function sqlString(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export function sqlIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** `schema.table` with each part quoted. */
export function qualified(table: string): string {
  return table.split('.').map(sqlIdentifier).join('.');
}

/**
 * A file path for DuckDB's file readers (read_parquet, parquet_schema, …), taken literally: they
 * expand globs, so `a*.parquet` would also read `a1.parquet`. Each glob character becomes a
 * one-character class (`*` → `[*]`), which matches only itself.
 */
export function sqlFilePath(path: string): string {
  return sqlString(path.replace(/[*?[]/g, (c) => `[${c}]`));
}
