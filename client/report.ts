// CLI commands that read the lake through the worker: `report` (the business answers) and
// `query` (any single SELECT).
import { Command } from 'commander';
import { WorkflowFailedError } from '@temporalio/client';
import { config } from '../config';
import type { GoldReport, QueryResult } from '../activities/read';
import { goldReport, lakeQuery } from '../workflows/read';
import { CliError, connectClient } from './connection';
import { table } from './format';

export const QUESTIONS: Record<string, string> = {
  connections_now: 'Devices connected and disconnected now',
  events_per_minute: 'Connection events per minute (last 15 minutes)',
  devices_last_10_min: 'Distinct devices connected in the last 10 minutes',
  bandwidth_now: 'Bandwidth in use now (Mbps)',
  high_speed_share: 'Share of connected devices on high-speed plans',
  bandwidth_by_device: 'Bandwidth by device type (Mbps)',
  server_load: 'Server load and upgrade flags',
  heavy_clients: 'Heavy clients (throttle candidates)',
};

/** Runs a short read workflow and turns its failure into a CLI error with the cause's message. */
export async function readThroughWorker<T>(workflow: (input: never) => Promise<unknown>, input: object): Promise<T> {
  const client = await connectClient();
  try {
    return (await client.workflow.execute(workflow as (i: object) => Promise<T>, {
      taskQueue: config.taskQueue, workflowId: `read-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`, args: [input],
      workflowExecutionTimeout: '5 minutes',
    })) as T;
  } catch (error) {
    if (error instanceof WorkflowFailedError) {
      let cause: Error = error;
      while (cause.cause instanceof Error) cause = cause.cause; // workflow → activity → the application's reason
      throw new CliError(cause.message, 2);
    }
    throw error;
  }
}

export function parseAsOf(value: string | undefined): { asOfVersion?: number; asOfTime?: string } {
  if (value === undefined) return {};
  if (/^\d+$/.test(value)) return { asOfVersion: Number(value) };
  if (!Number.isNaN(Date.parse(value))) return { asOfTime: new Date(value).toISOString() };
  throw new CliError(`--as-of: "${value}" is neither a gold version (a number) nor a time (ISO 8601)`, 2);
}

export function formatReport(report: GoldReport): string {
  if (report.version === undefined) return 'gold is empty: run a pass first (netpulse run, or bash scripts/up.sh)';
  const sections = Object.entries(QUESTIONS).map(([name, title]) => `${title}\n${table(report.tables[name] ?? [])}`);
  return [`gold version ${report.version}, committed ${report.committedAt} (as of ${report.asOf})`, ...sections].join('\n\n');
}

function csv(result: QueryResult): string {
  const cell = (v: unknown) => (v === null || v === undefined ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  return [result.columns.join(','), ...result.rows.map((r) => result.columns.map((c) => cell(r[c])).join(','))].join('\n');
}

export function readCommands(): Command[] {
  const report = new Command('report')
    .description('the answers to the business questions, from gold')
    .option('--json', 'machine-readable output')
    .option('--as-of <version|time>', 'answer from an earlier gold commit (version number or ISO time)')
    .action(async (options) => {
      const asOf = parseAsOf(options.asOf);
      const result = await readThroughWorker<GoldReport>(goldReport, asOf);
      console.log(options.json ? JSON.stringify(result, null, 2) : formatReport(result));
    });

  const query = new Command('query')
    .description('run one read-only SELECT on the lake (through the worker)')
    .argument('<sql>', 'a single SELECT statement')
    .option('--format <format>', 'table, csv or json', 'table')
    .option('--max-rows <n>', 'at most this many rows', '10000')
    .action(async (sql: string, options) => {
      if (!['table', 'csv', 'json'].includes(options.format)) throw new CliError(`--format: "${options.format}" is not table, csv or json`, 2);
      const maxRows = Number(options.maxRows);
      if (!Number.isInteger(maxRows) || maxRows < 1) throw new CliError('--max-rows: must be a positive whole number', 2);
      const result = await readThroughWorker<QueryResult>(lakeQuery, { sql, maxRows });
      if (options.format === 'json') console.log(JSON.stringify(result.rows, null, 2));
      else if (options.format === 'csv') console.log(csv(result));
      else console.log(`${table(result.rows)}\n(${result.rows.length} rows${result.truncated ? ', truncated' : ''}, ${result.elapsedMs} ms in DuckDB)`);
    });
  return [report, query];
}
