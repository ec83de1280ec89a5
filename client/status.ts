// `status`: every checkpoint workflow, lag, the last commits, quarantine counts per layer and
// the latest event-log rows, in one screen. The checkpoints come from Temporal, the rest from
// the lake: with one of them unreachable the other is still shown, the unreachable one is
// named with its address, and the command exits 1.
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { bronzeWorkflowId, DEFAULT_SOURCES } from '../rules/bronze';
import { GOLD_WORKFLOW_ID } from '../rules/layers';
import type { BronzeSourceStatus } from '../workflows/bronze';
import { CatalogUnreachableError, LakeNotCreatedError, lakeFromEnv, type LakeConfig } from '../lake/catalog';
import { readLatestCommits, readOwners, readQuarantineCounts, readRows, readSilverShardCount } from '../lake/reads';
import { CliError, connectClient } from './connection';
import { table } from './format';
import { lagCell, parkedCell, queryOwner, retryingCell, silverOwnerIds, type OwnerState } from './owner-state';

export const STATUS_EVENTS_SQL = `SELECT logged_at::VARCHAR AS logged_at, kind, layer, source, batch_id, rows_in, rows_out, rows_quarantined, duration_ms
  FROM lake.event_log ORDER BY logged_at DESC LIMIT 8`;

/** Every checkpoint workflow at once: with no worker, each query waits for the server to give up. */
async function readCheckpoints(client: Client, shards: number) {
  const bronzeRows = Promise.all(DEFAULT_SOURCES.map(async (source) => {
    const workflow = bronzeWorkflowId(source);
    const q = await queryOwner<BronzeSourceStatus>(client.workflow, workflow);
    if (!('state' in q)) return { workflow, files: 'missing' in q ? 'not started' : q.failed };
    const s = q.state;
    return {
      workflow, files: s.filesIngested, quarantined: s.filesQuarantined, rows: s.rowsIngested, version: s.version, schema: s.schemaVersion,
      lag_files: lagCell(s), passes: s.passes, retrying: retryingCell(s.retrying), parked: parkedCell(s.parked),
    };
  }));
  const layer = async (workflow: string, row: (s: Record<string, unknown>) => Record<string, unknown>) => {
    const q = await queryOwner<OwnerState & Record<string, unknown>>(client.workflow, workflow);
    return 'state' in q ? { workflow, ...row(q.state), retrying: retryingCell(q.state.retrying), parked: parkedCell(q.state.parked) }
      : 'failed' in q ? { workflow, state: q.failed } : undefined;
  };
  const silver = Promise.all(silverOwnerIds(shards).map((id) => layer(id, (s) => ({
    version: s.eventsVersion, bronze_read_to: s.bronzeSnapshot, rows_in: s.rowsIn, events: s.eventsOut, quarantined: s.quarantined, duplicates: s.duplicates, passes: s.passes,
  }))));
  const gold = layer(GOLD_WORKFLOW_ID, (s) => ({ version: s.goldSnapshot, silver_read_to: s.silverSnapshot, refreshes: s.refreshes, last_as_of: s.lastAsOf, passes: s.passes }));
  return { bronze: await bronzeRows, silver: (await silver).filter((r) => r !== undefined), gold: await gold };
}

async function readLakeSections(lake: LakeConfig) {
  return {
    owners: await readOwners(lake),
    commits: await readLatestCommits(lake),
    quarantine: await readQuarantineCounts(lake),
    events: await readRows(lake, STATUS_EVENTS_SQL),
  };
}

export function statusCommand(): Command {
  return new Command('status')
    .description('checkpoints and lag per layer, last commits, quarantine counts, recent event log')
    .option('--json', 'JSON output')
    .action(async (options) => {
      // connectClient fails only with a CliError saying Temporal cannot be reached, and where.
      const temporal = await connectClient().then((client) => ({ client }), (error: unknown) => {
        if (error instanceof CliError) return { unreachable: error.message };
        throw error;
      });
      const checkpoints = 'client' in temporal ? await readCheckpoints(temporal.client, await readSilverShardCount(lakeFromEnv())) : undefined;
      const lake = await readLakeSections(lakeFromEnv()).catch((error: unknown) => {
        if (error instanceof CatalogUnreachableError) return { unreachable: error.message };
        if (error instanceof LakeNotCreatedError) return { notCreated: error.message };
        throw error;
      });
      const temporalProblem = 'unreachable' in temporal ? temporal.unreachable : undefined;
      const lakeProblem = 'unreachable' in lake ? lake.unreachable : 'notCreated' in lake ? lake.notCreated : undefined;
      if (temporalProblem || 'unreachable' in lake) process.exitCode = 1;

      if (options.json) {
        console.log(JSON.stringify({ ...checkpoints, ...(temporalProblem && { temporal: temporalProblem }), ...('owners' in lake ? lake : { lake: lakeProblem }) }, null, 2));
        return;
      }
      const fromTemporal = checkpoints
        ? [`Bronze checkpoints\n${table(checkpoints.bronze)}`,
          `Silver checkpoints (one owner per shard)\n${checkpoints.silver.length ? table(checkpoints.silver) : '(not started)'}`,
          `Gold checkpoint\n${checkpoints.gold ? table([checkpoints.gold]) : '(not started)'}`]
        : [`Checkpoints\n${temporalProblem}: checkpoint workflows not queried`];
      const fromLake = 'owners' in lake
        ? [`Last commit per owner\n${table(lake.owners)}`, `Latest snapshots\n${table(lake.commits)}`,
          `Quarantine\n${table(lake.quarantine)}`, `Event log (latest)\n${table(lake.events)}`]
        : [`Lake\n${lakeProblem}: commits, quarantine and event log not read`];
      console.log([...fromTemporal, ...fromLake].join('\n\n'));
      for (const problem of [temporalProblem, 'unreachable' in lake && lake.unreachable]) if (problem) console.error(`error: ${problem}`);
    });
}
