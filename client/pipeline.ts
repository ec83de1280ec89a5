// CLI commands of the pipeline: one availableNow pass, and the continuous pipeline's controls.
import { Command } from 'commander';
import { statSync } from 'node:fs';
import { WorkflowIdConflictPolicy, type Client, type Connection, type WorkflowClient } from '@temporalio/client';
import { config } from '../config';
import { lakeFromEnv } from '../lake/catalog';
import { landingPathProblem } from '../lake/landing';
import { readSilverShardCount } from '../lake/reads';
import { isObjectUrl, resolveLocation } from '../lake/object-store';
import { bronzeWorkflowId, DEFAULT_SOURCES } from '../rules/bronze';
import type { PassSummary } from '../rules/pass';
import { DEFAULT_SILVER_SHARDS } from '../rules/shards';
import { pipelineInputSchema, type PipelineInput } from '../rules/pipeline';
import { describeIssues } from '../rules/validate';
import {
  medallionPipeline, pauseSignal, pipelineStatusQuery, resumeSignal, setIntervalUpdate, stuckOwners, triggerPassSignal,
} from '../workflows/pipeline';
import { CliError, connectClient, resultThroughRestarts } from './connection';
import { table } from './format';
import { ownerIds, queryOwner, retryingCell } from './owner-state';

export const CONTINUOUS_PIPELINE_ID = 'pipeline-continuous';

async function pipelineHandle() {
  const client = await connectClient();
  const handle = client.workflow.getHandle(CONTINUOUS_PIPELINE_ID);
  await handle.describe().catch((error: Error) => {
    throw new CliError(`no continuous pipeline (${error.message}); start it with: netpulse continuous start`);
  });
  return handle;
}

export function pipelineInput(options: { maxFiles?: string; landing?: string; interval?: string; silverShards?: string }, continuous: boolean): PipelineInput {
  const input: PipelineInput = { continuous, landingPath: resolveLocation(options.landing ?? config.landingDir) };
  let shards: number | undefined;
  try {
    shards = options.silverShards !== undefined ? Number(options.silverShards) : config.silverShards;
  } catch (error) {
    throw new CliError((error as Error).message, 2); // NETPULSE_SILVER_SHARDS is not a shard count
  }
  if (shards !== undefined) input.silver = { shards };
  if (options.maxFiles !== undefined) input.options = { maxFilesPerBatch: Number(options.maxFiles) };
  if (options.interval !== undefined) input.intervalSeconds = Number(options.interval);
  const parsed = pipelineInputSchema.safeParse(input);
  if (!parsed.success) throw new CliError(`Invalid pipeline input: ${describeIssues(parsed.error)}`, 2);
  // A landing zone given by hand must be there: a missing folder would list as empty and pass with zeros.
  if (options.landing !== undefined && !isObjectUrl(input.landingPath!) && !statSync(input.landingPath!, { throwIfNoEntry: false })?.isDirectory()) {
    throw new CliError(`--landing: ${input.landingPath} is not a folder`, 2);
  }
  const outside = landingPathProblem(input.landingPath!, config.landingRoots);
  if (outside) throw new CliError(`--landing: ${outside}`, 2);
  return input;
}

function passTable(pass: { bronze: PassSummary[]; silver?: PassSummary; silverShards?: PassSummary[]; gold?: PassSummary }): string {
  const layers = [...pass.bronze, ...(pass.silverShards ?? (pass.silver ? [pass.silver] : [])), ...(pass.gold ? [pass.gold] : [])];
  return table(layers.map((s) => ({
    layer: s.layer, source: s.source, batches: s.batches, files: s.layer === 'bronze' ? s.files : '', rows: s.rows, quarantined: s.quarantined,
    versions: s.batches ? `${s.fromVersion + 1}..${s.toVersion}` : '-',
    seconds: ((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1),
  })));
}

/** Each default owner's activity it is retrying now, as lines for a terminal (none when all go well). */
async function retryingLines(workflows: WorkflowClient): Promise<string[]> {
  const states = await Promise.all(ownerIds(DEFAULT_SOURCES, '', await readSilverShardCount(lakeFromEnv())).map(async ({ workflowId }) => ({ workflowId, q: await queryOwner(workflows, workflowId) })));
  return states.flatMap(({ workflowId, q }) => ('state' in q && q.state.retrying ? [`RETRYING ${workflowId}: ${retryingCell(q.state.retrying)}`] : []));
}

/** How long a progress line waits for Temporal before saying it does not answer. */
const PROGRESS_DEADLINE_MS = 3000;

/**
 * Progress of a running pass on stderr: bronze files taken so far and still waiting, and any owner
 * retrying a failing activity. The server's health is asked first, with a deadline: while Temporal
 * is away its client retries a call for minutes, and `run` printed nothing at all.
 */
function progressReporter(client: Client, started: number): () => Promise<void> {
  let busy = false;
  return async () => {
    if (busy) return; // the previous line is still waiting: one at a time, in order
    busy = true;
    const seconds = () => ((Date.now() - started) / 1000).toFixed(0);
    try {
      const connection = client.connection as Connection; // connectClient's
      await connection.withDeadline(Date.now() + PROGRESS_DEADLINE_MS, () => connection.healthService.check({}));
    } catch (error) {
      console.error(`  … ${seconds()} s: Temporal is unreachable at ${config.temporalAddress} (${(error as Error).message.split('\n')[0]}); `
        + 'waiting for it to come back (the pass goes on once it is back)');
      busy = false;
      return;
    }
    try {
      const states = await Promise.all(DEFAULT_SOURCES.map((source) => queryOwner(client.workflow, bronzeWorkflowId(source))));
      const answered = states.flatMap((q) => ('state' in q ? [q.state] : []));
      const waiting = answered.reduce((n, s) => n + (s.lagFiles ?? 0), 0);
      const running = answered.filter((s) => s.passRunning).length;
      console.error([`  … ${seconds()} s: ${running} bronze sources ingesting, ${waiting} files waiting after their last batch`,
        ...(await retryingLines(client.workflow)).map((line) => `    ${line}`)].join('\n'));
    } finally {
      busy = false;
    }
  };
}

export function pipelineCommands(): Command[] {
  const run = new Command('run')
    .description('one availableNow pass through bronze, silver and gold: everything landed so far, then stop')
    .option('--max-files <n>', 'max files per batch')
    .option('--landing <dir>', 'landing zone root (used when the source workflows start; running ones keep theirs)')
    .option('--silver-shards <n>', `silver shards a new lake gets (default NETPULSE_SILVER_SHARDS, else ${DEFAULT_SILVER_SHARDS}); a lake with another count refuses: see netpulse silver reshard`)
    .option('--json', 'print the summary as JSON')
    .action(async (options) => {
      const input = pipelineInput(options, false);
      const client = await connectClient();
      const started = Date.now();
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue: config.taskQueue, workflowId: `pipeline-run-${new Date().toISOString().replace(/[:.]/g, '-')}`,
        args: [input], searchAttributes: { NetpulseLayer: ['pipeline'] }, staticSummary: 'one availableNow pass (CLI run)',
      });
      if (!options.json) console.error(`pass running as workflow ${handle.workflowId} …`);
      const report = progressReporter(client, started);
      const progress = options.json ? undefined : setInterval(() => void report(), 2000);
      const pass = (await resultThroughRestarts(() => handle.result()).finally(() => clearInterval(progress)))!;
      if (options.json) console.log(JSON.stringify(pass, null, 2));
      else console.log(`${passTable(pass)}\n\npass finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      const stuck = Object.entries(stuckOwners(pass));
      if (stuck.length > 0) {
        throw new CliError(`${stuck.length} owner(s) did not do their part:\n${stuck.map(([owner, why]) => `  ${owner}: ${why}`).join('\n')}\n`
          + 'fix the cause, then: netpulse owners retry-parked');
      }
    });

  const continuous = new Command('continuous')
    .alias('pipeline')
    .description(`the continuous pipeline (workflow ${CONTINUOUS_PIPELINE_ID}): a pass every interval`);
  continuous
    .command('start')
    .description('start it (keeps a running one)')
    .option('--interval <seconds>', 'seconds between passes', '10')
    .option('--max-files <n>', 'max files per batch')
    .option('--landing <dir>', 'landing zone root')
    .option('--silver-shards <n>', `silver shards a new lake gets (default NETPULSE_SILVER_SHARDS, else ${DEFAULT_SILVER_SHARDS}); a lake with another count refuses: see netpulse silver reshard`)
    .action(async (options) => {
      const input = pipelineInput(options, true);
      const client = await connectClient();
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue: config.taskQueue, workflowId: CONTINUOUS_PIPELINE_ID, args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
        searchAttributes: { NetpulseLayer: ['pipeline'] }, memo: { description: 'continuous medallion pipeline' },
        staticSummary: `continuous pipeline, a pass every ${input.intervalSeconds} s`,
      });
      console.log(`pipeline ${handle.workflowId} running; Web UI: ${config.uiUrl}/namespaces/${config.namespace}/workflows/${handle.workflowId}`);
    });
  continuous
    .command('status')
    .description('paused or not, passes, rows through each layer, last pass duration, files waiting')
    .option('--brief', 'one line')
    .option('--json', 'JSON output')
    .action(async (options) => {
      const handle = await pipelineHandle();
      const status = await handle.query(pipelineStatusQuery);
      const retrying = await retryingLines(handle.client);
      if (options.json) return console.log(JSON.stringify({ ...status, retrying }, null, 2));
      const t = status.totals;
      const lag = Object.values(status.bronzeLagFiles).reduce((a, b) => a + b, 0);
      const state = status.paused ? 'paused' : status.running ? 'running a pass' : 'waiting';
      const line = `[pipeline] ${state}; ${t.passes} passes, ${t.bronzeFiles} files / ${t.bronzeRows} rows into bronze, `
        + `${t.silverEvents} silver events, ${t.bronzeQuarantined + t.silverQuarantined} quarantined, ${t.goldRefreshes} gold refreshes; `
        + `last pass ${status.lastPassSeconds?.toFixed(2) ?? '-'} s; ${lag} files waiting`
        + (status.running && retrying.length > 0 ? ' after the last pass (the running one is retrying)' : '')
        + Object.entries(status.stuck ?? {}).map(([owner, why]) => `\n  STUCK ${owner}: ${why}`).join('')
        + retrying.map((line) => `\n  ${line}`).join('');
      console.log(options.brief ? line : `${line}\ninterval ${status.intervalSeconds} s, next pass ${status.nextPassAt ?? (status.paused ? 'when resumed' : '-')}`);
    });
  const control = (name: string, description: string, act: (h: Awaited<ReturnType<typeof pipelineHandle>>) => Promise<unknown>, done: string) =>
    continuous.command(name).description(description).action(async () => {
      await act(await pipelineHandle());
      console.log(done);
    });
  control('pause', 'pause after the current pass', (h) => h.signal(pauseSignal), 'pipeline paused');
  control('resume', 'resume (runs a pass now)', (h) => h.signal(resumeSignal), 'pipeline resumed');
  control('trigger', 'run a pass now', (h) => h.signal(triggerPassSignal), 'pass triggered');
  control('stop', 'cancel the continuous pipeline', (h) => h.cancel(), `pipeline ${CONTINUOUS_PIPELINE_ID} cancelled`);
  continuous
    .command('interval')
    .description('change the interval between passes')
    .argument('<seconds>', 'seconds, 0 to 86400')
    .action(async (seconds: string) => {
      const value = Number(seconds);
      if (!Number.isFinite(value) || value < 0 || value > 86_400) throw new CliError(`interval: "${seconds}" is not a number of seconds from 0 to 86400`, 2);
      const applied = await (await pipelineHandle()).executeUpdate(setIntervalUpdate, { args: [value] });
      console.log(`interval set to ${applied} s`);
    });

  return [run, continuous];
}
