// `status`: every checkpoint workflow, lag, the last commits, quarantine counts per layer and
// the latest event-log rows, in one screen.
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { bronzeWorkflowId, DEFAULT_SOURCES } from '../rules/bronze';
import { GOLD_WORKFLOW_ID, SILVER_WORKFLOW_ID } from '../rules/layers';
import { bronzeStatusQuery, type BronzeSourceStatus } from '../workflows/bronze';
import { goldStatusQuery, silverStatusQuery } from '../workflows/layers';
import type { Parked } from '../workflows/checkpoint-owner';
import { lakeFromEnv } from '../lake/catalog';
import { readLatestCommits, readOwners, readRows } from '../lake/reads';
import { connectClient } from './connection';
import { table } from './format';

async function queryOrNull<T>(client: Client, workflowId: string, query: { name: string }): Promise<T | null> {
  try {
    return (await client.workflow.getHandle(workflowId).query(query as never)) as T;
  } catch {
    return null;
  }
}

/** A parked batch in one cell: which, since when, why (retry with `netpulse owners retry-parked`). */
function parkedText(parked?: Parked): string {
  return parked ? `${parked.batchId ?? 'pass'} since ${parked.since}: ${parked.reason}` : '';
}

export const STATUS_SQL = {
  quarantine: `SELECT 'bronze' AS layer, count(*) AS quarantined, count(DISTINCT table_name) AS tables FROM bronze.quarantine
               UNION ALL SELECT 'silver', count(*), count(DISTINCT source_table) FROM silver.quarantine`,
  events: `SELECT logged_at::VARCHAR AS logged_at, kind, layer, source, batch_id, rows_in, rows_out, rows_quarantined, duration_ms
           FROM lake.event_log ORDER BY logged_at DESC LIMIT 8`,
};

export function statusCommand(): Command {
  return new Command('status')
    .description('checkpoints and lag per layer, last commits, quarantine counts, recent event log')
    .option('--json', 'JSON output')
    .action(async (options) => {
      const client = await connectClient();
      const bronze = await Promise.all(DEFAULT_SOURCES.map(async (source) => {
        const s = await queryOrNull<BronzeSourceStatus>(client, bronzeWorkflowId(source), bronzeStatusQuery);
        return s
          ? { workflow: bronzeWorkflowId(source), files: s.filesIngested, quarantined: s.filesQuarantined, rows: s.rowsIngested, version: s.version, schema: s.schemaVersion, lag_files: s.lagFiles ?? 0, passes: s.passes, parked: parkedText(s.parked) }
          : { workflow: bronzeWorkflowId(source), files: 'not started' };
      }));
      const silver = await queryOrNull<Record<string, unknown>>(client, SILVER_WORKFLOW_ID, silverStatusQuery);
      const gold = await queryOrNull<Record<string, unknown>>(client, GOLD_WORKFLOW_ID, goldStatusQuery);
      const lake: Record<string, Record<string, unknown>[]> = {};
      for (const [name, sql] of Object.entries(STATUS_SQL)) {
        // silver.quarantine does not exist before silver's first batch: an empty section, not an error
        lake[name] = await readRows(lakeFromEnv(), sql).catch(() => []);
      }
      lake.owners = await readOwners(lakeFromEnv()).catch(() => []);
      lake.commits = await readLatestCommits(lakeFromEnv()).catch(() => []);
      if (options.json) return console.log(JSON.stringify({ bronze, silver, gold, ...lake }, null, 2));
      const layerRows = [
        silver && { workflow: SILVER_WORKFLOW_ID, version: silver.eventsVersion, bronze_read_to: silver.bronzeSnapshot, rows_in: silver.rowsIn, events: silver.eventsOut, quarantined: silver.quarantined, duplicates: silver.duplicates, passes: silver.passes, parked: parkedText(silver.parked as Parked) },
        gold && { workflow: GOLD_WORKFLOW_ID, version: gold.goldSnapshot, silver_read_to: gold.silverSnapshot, refreshes: gold.refreshes, last_as_of: gold.lastAsOf, passes: gold.passes, parked: parkedText(gold.parked as Parked) },
      ].filter(Boolean) as Record<string, unknown>[];
      console.log([
        `Bronze checkpoints\n${table(bronze)}`,
        `Silver and gold checkpoints\n${layerRows.length ? layerRows.map((r) => table([r])).join('\n\n') : '(not started)'}`,
        `Last commit per owner\n${table(lake.owners)}`,
        `Latest snapshots\n${table(lake.commits)}`,
        `Quarantine\n${table(lake.quarantine)}`,
        `Event log (latest)\n${table(lake.events)}`,
      ].join('\n\n'));
    });
}
