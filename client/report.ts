// CLI commands that read the lake directly, attached read-only: `report` (the business
// answers) and `query` (any single SELECT, sandboxed).
import { Command } from 'commander';
import { config } from '../config';
import { CatalogUnreachableError, LakeNotCreatedError, lakeFromEnv, redactCatalog } from '../lake/catalog';
import { OutOfMemoryError } from '../lake/duckdb';
import { NotFoundError, readGoldReport, ReadError, sandboxedQuery, type GoldReport, type QueryResult } from '../lake/reads';
import { CliError } from './connection';
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
  capacity_forecast: 'Capacity forecast: days until each server is full, at its trend',
};

/** Runs a read on the lake, attached read-only by this process; a read the user got wrong exits 2, one with nothing to answer from 1. */
export async function readLake<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof ReadError) throw new CliError(error.message, 2);
    if (error instanceof NotFoundError) throw new CliError(error.message, 1);
    if (error instanceof LakeNotCreatedError) throw new CliError(error.message);
    if (error instanceof CatalogUnreachableError) throw new CliError(`${error.message}; is it up? bash scripts/catalog.sh start`);
    if (error instanceof OutOfMemoryError) throw new CliError(error.message);
    throw new CliError(`cannot read the lake (catalog ${redactCatalog(config.readerCatalog)}, schema ${config.catalogSchema}): ${redactCatalog((error as Error).message.split('\n')[0])}`);
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

/**
 * Only whitespace, semicolons and comments: DuckDB finds no statement there and says just "Error in
 * native callback". Comments are cut first (each scan ends at its own end, so this stays linear).
 */
function noStatement(sql: string): boolean {
  return /^[\s;]*$/.test(sql.replace(/--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/g, ''));
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
      const result = await readLake(() => readGoldReport(lakeFromEnv(), asOf));
      console.log(options.json ? JSON.stringify(result, null, 2) : formatReport(result));
    });

  const query = new Command('query')
    .description('run one read-only SELECT on the lake (sandboxed: read-only, no files outside the lake, time limit, row cap)')
    .argument('<sql>', 'a single SELECT statement')
    .option('--format <format>', 'table, csv or json', 'table')
    .option('--max-rows <n>', 'at most this many rows', '10000')
    .option('--timeout <seconds>', 'interrupt the query after this long', '30')
    .action(async (sql: string, options) => {
      if (noStatement(sql)) throw new CliError('empty query: give one SELECT statement', 2);
      if (!['table', 'csv', 'json'].includes(options.format)) throw new CliError(`--format: "${options.format}" is not table, csv or json`, 2);
      const maxRows = Number(options.maxRows);
      if (!Number.isInteger(maxRows) || maxRows < 1) throw new CliError('--max-rows: must be a positive whole number', 2);
      const timeoutMs = Number(options.timeout) * 1000;
      if (!(timeoutMs > 0)) throw new CliError('--timeout: must be a positive number of seconds', 2);
      const result = await readLake(() => sandboxedQuery(lakeFromEnv(), sql, maxRows, timeoutMs));
      if (options.format === 'json') console.log(JSON.stringify(result.rows, null, 2));
      else if (options.format === 'csv') console.log(csv(result));
      else console.log(`${table(result.rows)}\n(${result.rows.length} rows${result.truncated ? ', truncated' : ''}, ${result.elapsedMs} ms in DuckDB)`);
      // On stderr, so that csv and json on stdout stay machine-readable.
      if (result.truncated) console.error(`result truncated to its first ${maxRows} rows (--max-rows ${maxRows}): pass a larger --max-rows for more`);
    });
  return [report, query];
}
