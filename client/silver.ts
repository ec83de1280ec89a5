// `silver`: silver's shards. `silver shards` says how many the lake has and where each owner
// stands; `silver reshard --shards N` drains silver and gold, moves silver's state into N shards
// in one lake transaction (a worker does it, as the writer role) and resumes.
import { Command } from 'commander';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { config } from '../config';
import { lakeFromEnv } from '../lake/catalog';
import { readSilverShardCount } from '../lake/reads';
import type { ReshardReport } from '../lake/silver-layout';
import { GOLD_WORKFLOW_ID } from '../rules/layers';
import { MAX_SILVER_SHARDS, shardCountSchema } from '../rules/shards';
import { runPassUpdate } from '../workflows/requests';
import { pauseSignal, pipelineStatusQuery, resumeSignal, setSilverShardsUpdate } from '../workflows/pipeline';
import { reshardSilverWorkflow } from '../workflows/reshard';
import { CliError, connectClient } from './connection';
import { table } from './format';
import { parkedCell, queryOwner, silverOwnerIds, type OwnerState } from './owner-state';
import { CONTINUOUS_PIPELINE_ID } from './pipeline';

const say = (line: string) => console.error(`[reshard] ${line}`);

/** Pauses the continuous pipeline, if one runs, and waits for its pass to end: true when this paused it. */
async function pauseContinuous(client: Client): Promise<boolean> {
  const handle = client.workflow.getHandle(CONTINUOUS_PIPELINE_ID);
  const status = await handle.query(pipelineStatusQuery).catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError || /not found|already completed/i.test(String((error as Error).message))) return undefined;
    throw error;
  });
  if (!status || status.paused) return false;
  await handle.signal(pauseSignal);
  say('continuous pipeline paused; waiting for its pass to end');
  for (;;) {
    if (!(await handle.query(pipelineStatusQuery)).running) return true;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** One pass of a running owner (with its own options); a parked owner stops the reshard. */
async function drain(client: Client, workflowId: string): Promise<void> {
  const q = await queryOwner<OwnerState>(client.workflow, workflowId);
  if ('missing' in q) return; // not running: its checkpoint is the lake's, checked by the reshard itself
  if ('failed' in q) throw new CliError(`${workflowId}: ${q.failed}`);
  if (q.state.parked) throw new CliError(`${workflowId} is parked (${parkedCell(q.state.parked)}): fix the cause and run netpulse owners retry-parked, then reshard`);
  const summary = await client.workflow.getHandle(workflowId).executeUpdate(runPassUpdate);
  if (summary.parked) throw new CliError(`${workflowId} parked while draining (${parkedCell(summary.parked)}): fix the cause and run netpulse owners retry-parked, then reshard`);
  say(`${workflowId}: drained (${summary.batches} batch${summary.batches === 1 ? '' : 'es'}, ${summary.rows} rows)`);
}

async function reshard(shards: number): Promise<void> {
  const client = await connectClient();
  const lake = lakeFromEnv();
  const from = await readSilverShardCount(lake);
  if (from === shards) {
    console.log(`silver already has ${shards} shard${shards === 1 ? '' : 's'}: nothing to do`);
    return;
  }
  const paused = await pauseContinuous(client);
  try {
    // Silver catches up with bronze, then gold with silver: the new shards start where every old one stood.
    const owners = silverOwnerIds(from);
    for (const id of owners) await drain(client, id);
    await drain(client, GOLD_WORKFLOW_ID);
    for (const id of owners) {
      await client.workflow.getHandle(id).terminate(`silver resharded to ${shards}: the next pass starts the new shards' owners`).catch((error: unknown) => {
        if (!(error instanceof WorkflowNotFoundError)) throw error;
      });
    }
    say(`moving silver from ${from} to ${shards} shards (one lake transaction) …`);
    const report: ReshardReport = await client.workflow.execute(reshardSilverWorkflow, {
      taskQueue: config.taskQueue, workflowId: `silver-reshard-${new Date().toISOString().replace(/[:.]/g, '-')}`, args: [{ shards }],
    }).catch((error: unknown) => {
      let cause = error as Error;
      while (cause.cause instanceof Error) cause = cause.cause;
      throw new CliError(`reshard refused or failed, nothing changed: ${cause.message}`);
    });
    // A continuous pipeline asks for the lake's new count from now on.
    await client.workflow.getHandle(CONTINUOUS_PIPELINE_ID).executeUpdate(setSilverShardsUpdate, { args: [shards] }).catch((error: unknown) => {
      if (!(error instanceof WorkflowNotFoundError) && !/not found|already completed/i.test(String((error as Error).message))) throw error;
    });
    console.log(table([{ from: report.from, to: report.to, events: report.rows.events, device_state: report.rows.deviceState, quarantine: report.rows.quarantine, snapshot: report.snapshot }]));
    console.log(`silver has ${shards} shards from snapshot ${report.snapshot}; their owners start with the next pass (owners: ${silverOwnerIds(shards).join(', ')})`);
  } finally {
    if (paused) {
      await client.workflow.getHandle(CONTINUOUS_PIPELINE_ID).signal(resumeSignal);
      say('continuous pipeline resumed');
    }
  }
}

export function silverCommand(): Command {
  const silver = new Command('silver').description('silver\'s shards: how many, where each stands, and changing their number');
  silver
    .command('shards', { isDefault: true })
    .description('the lake\'s silver shard count and each shard owner\'s checkpoint')
    .option('--json', 'JSON output')
    .action(async (options) => {
      const shards = await readSilverShardCount(lakeFromEnv());
      const client = await connectClient();
      const rows = await Promise.all(silverOwnerIds(shards).map(async (workflow) => {
        const q = await queryOwner<OwnerState & { bronzeSnapshot?: number; eventsOut?: number; eventsVersion?: number }>(client.workflow, workflow);
        if (!('state' in q)) return { workflow, state: 'missing' in q ? 'not started' : q.failed };
        const s = q.state;
        return { workflow, bronze_read_to: s.bronzeSnapshot, events: s.eventsOut, version: s.eventsVersion, pass_running: s.passRunning, parked: parkedCell(s.parked) };
      }));
      console.log(options.json ? JSON.stringify({ shards, owners: rows }, null, 2) : `silver has ${shards} shard${shards === 1 ? '' : 's'}\n${table(rows)}`);
    });
  silver
    .command('reshard')
    .description('drain silver and gold, move silver\'s state into N shards in one transaction, and resume (a worker must be running)')
    .requiredOption('--shards <n>', `the new number of shards, 1 to ${MAX_SILVER_SHARDS}`)
    .action(async (options) => {
      const shards = shardCountSchema.safeParse(/^\d+$/.test(options.shards) ? Number(options.shards) : Number.NaN);
      if (!shards.success) throw new CliError(`--shards: "${options.shards}" is not a whole number from 1 to ${MAX_SILVER_SHARDS}`, 2);
      await reshard(shards.data);
    });
  return silver;
}
