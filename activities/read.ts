// Reads for the CLI, the report and the dashboard. They go through the worker because DuckDB
// lets one process hold the lake file; only single SELECT statements are accepted.
import { ApplicationFailure } from '@temporalio/common';
import { StatementType, type DuckDBConnection } from '@duckdb/node-api';
import { forgetLake, withLake } from '../lake/catalog';
import { tableAsOfSql } from '../lake/changes';
import { sqlString } from '../lake/duckdb';
import { writeEventLog } from '../lake/commit';
import type { PassSummary } from '../rules/pass';
import { Context } from '@temporalio/activity';
import { GOLD_TABLES } from '../rules/gold';
import type { LakeDeps } from './bronze';

export interface QueryResult {
  columns: string[];
  rows: Record<string, unknown>[];
  truncated: boolean;
  elapsedMs: number;
}

export interface GoldReport {
  /** The gold commit the answers come from; undefined when gold has never been refreshed. */
  version?: number;
  committedAt?: string;
  asOf?: string;
  tables: Record<string, Record<string, unknown>[]>;
}

/** The tables that answer a question (server_load_history is server_load's input). */
export const REPORTED_TABLES = GOLD_TABLES.filter((t) => t !== 'server_load_history');

function invalid(type: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message, nonRetryable: true });
}

async function selectOnly(db: DuckDBConnection, sql: string, maxRows: number): Promise<QueryResult> {
  const started = Date.now();
  let statements;
  try {
    statements = await db.extractStatements(sql);
  } catch (error) {
    throw invalid('InvalidQuery', (error as Error).message);
  }
  if (statements.count !== 1) throw invalid('InvalidQuery', `expected one SQL statement, got ${statements.count}`);
  let prepared;
  try {
    prepared = await statements.prepare(0);
  } catch (error) {
    throw invalid('InvalidQuery', (error as Error).message);
  }
  if (prepared.statementType !== StatementType.SELECT) {
    throw invalid('ReadOnly', 'only SELECT statements are allowed: the lake is read-only from the CLI');
  }
  const reader = await prepared.runAndReadUntil(maxRows + 1);
  const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
  return {
    columns: reader.columnNames(), rows: rows.slice(0, maxRows), truncated: rows.length > maxRows, elapsedMs: Date.now() - started,
  };
}

export function readActivities(deps: LakeDeps) {
  async function queryLake({ sql, maxRows = 10_000 }: { sql: string; maxRows?: number }): Promise<QueryResult> {
    return withLake(deps.lakeFile, (db) => selectOnly(db, sql, maxRows));
  }

  /** Every gold table, now or as of an earlier gold commit (by version or by time). */
  async function readGoldReport({ asOfVersion, asOfTime }: { asOfVersion?: number; asOfTime?: string }): Promise<GoldReport> {
    const anchor = `gold.${GOLD_TABLES[0]}`;
    return withLake(deps.lakeFile, async (db) => {
      const condition = asOfVersion !== undefined ? `version = ${Math.trunc(asOfVersion)}`
        : asOfTime !== undefined ? `committed_at <= ${sqlString(asOfTime)}::TIMESTAMPTZ::TIMESTAMP` : 'true';
      const [commit] = (await db.runAndReadAll(`
        SELECT version, batch_id, committed_at::VARCHAR AS committed_at, details->>'asOf' AS as_of FROM lake.commit_log
        WHERE table_name = ${sqlString(anchor)} AND ${condition} ORDER BY version DESC LIMIT 1`)).getRowObjectsJson() as
        { version: string; batch_id: string; committed_at: string; as_of: string }[];
      if (!commit) {
        if (asOfVersion !== undefined || asOfTime !== undefined) {
          throw invalid('InvalidAsOf', `no gold commit at ${asOfVersion !== undefined ? `version ${asOfVersion}` : asOfTime}`);
        }
        return { tables: {} };
      }
      const latest = asOfVersion === undefined && asOfTime === undefined;
      const tables: GoldReport['tables'] = {};
      for (const name of REPORTED_TABLES) {
        const table = `gold.${name}`;
        // Gold tables commit together: the anchor's batch gives each table's version.
        const [{ version }] = (await db.runAndReadAll(`SELECT version FROM lake.commit_log
          WHERE table_name = ${sqlString(table)} AND batch_id = ${sqlString(commit.batch_id)}`)).getRowObjectsJson() as { version: string }[];
        const source = latest ? table : `(${tableAsOfSql(table, Number(version))})`;
        // Per-minute counts grow forever: the report carries the last quarter hour.
        const recent = name === 'events_per_minute'
          ? `WHERE minute >= (SELECT max(minute) - INTERVAL 14 MINUTE FROM ${source})` : '';
        tables[name] = (await db.runAndReadAll(`SELECT * FROM ${source} ${recent} ORDER BY ALL`)).getRowObjectsJson() as Record<string, unknown>[];
      }
      return { version: Number(commit.version), committedAt: commit.committed_at, asOf: commit.as_of, tables };
    });
  }

  /** One event-log row per pipeline pass, with its per-layer summaries. */
  async function logPipelinePass(pass: { pass: number; startedAt: string; finishedAt: string; bronze: PassSummary[]; silver?: PassSummary; gold?: PassSummary }): Promise<void> {
    const { workflowExecution } = Context.current().info;
    const bronzeRows = pass.bronze.reduce((n, b) => n + b.rows, 0);
    await withLake(deps.lakeFile, (db) => writeEventLog(db, {
      kind: 'pass', layer: 'pipeline', source: workflowExecution?.workflowId ?? 'pipeline', batchId: `pass-${pass.pass}`,
      rowsIn: bronzeRows, rowsOut: pass.silver?.rows, quarantined: pass.bronze.reduce((n, b) => n + b.quarantined, 0) + (pass.silver?.quarantined ?? 0),
      durationMs: Date.parse(pass.finishedAt) - Date.parse(pass.startedAt),
      workflowId: workflowExecution?.workflowId, runId: workflowExecution?.runId, details: pass,
    }));
  }

  /** Drops every table of the lake (reset); the catalog is recreated on the next write. */
  async function resetLake(): Promise<{ dropped: string[] }> {
    return withLake(deps.lakeFile, async (db) => {
      const schemas = ['gold', 'silver', 'bronze', 'lake'];
      for (const schema of schemas) await db.run(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      forgetLake(deps.lakeFile);
      return { dropped: schemas };
    });
  }

  return { queryLake, readGoldReport, logPipelinePass, resetLake };
}
