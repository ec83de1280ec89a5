// DuckDB access shared by every activity. One instance per database path per process:
// DuckDB lets a single process own a database file, so the worker keeps it open.
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

const instances = new Map<string, Promise<DuckDBInstance>>();

/** DuckDB's memory limit per process; past it DuckDB spills to disk where it can, else fails. */
export function duckdbMemoryLimit(): string {
  return process.env.NETPULSE_DUCKDB_MEMORY ?? '256MB';
}

/**
 * DuckDB's out-of-memory error, saying what to change (the original is its cause); any other
 * error as it is. It stays retryable: other activities of the process share the limit.
 */
export function explainOutOfMemory(error: unknown): unknown {
  const message = (error as { message?: unknown } | undefined)?.message;
  if (typeof message !== 'string' || !/Out of Memory Error/.test(message)) return error;
  return new Error(`${message.split('\n')[0]}. DuckDB may use ${duckdbMemoryLimit()} in this process (NETPULSE_DUCKDB_MEMORY): `
    + 'give the layer fewer rows per batch (maxRowsPerBatch, 250000 by default) or raise the limit', { cause: error });
}

export function openInstance(dbPath = ':memory:'): Promise<DuckDBInstance> {
  let instance = instances.get(dbPath);
  if (!instance) {
    instance = DuckDBInstance.create(dbPath, {
      // Bounded memory: DuckDB spills to disk past the limit instead of growing the worker.
      // The process uses ~350 MB more than this (bench/profile.ts: 2M rows through bronze and
      // silver peaked at 606 MB RSS with 256MB, 811 MB with 512MB, at the same speed).
      memory_limit: duckdbMemoryLimit(),
      preserve_insertion_order: 'false',
      // The default (16MB) checkpointed after nearly every silver batch, ~1 s each; in-place updates
      // wait in memory until a checkpoint, so too large a threshold can run out of memory (1GB did
      // on 10M rows, when device state was still MERGEd in place). Measured with bench/profile.ts.
      checkpoint_threshold: process.env.NETPULSE_DUCKDB_CHECKPOINT_THRESHOLD ?? '64MB',
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
  for (const instance of all) (await instance).closeSync();
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
