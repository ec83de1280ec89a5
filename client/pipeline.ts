// CLI commands of the pipeline: one availableNow pass, continuous mode, bronze checkpoints.
import { Command } from 'commander';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { config } from '../config';
import { bronzeWorkflowId, DEFAULT_SOURCES, type PassSummary } from '../rules/bronze';
import { pipelineInputSchema, type PipelineInput } from '../rules/pipeline';
import { describeIssues } from '../rules/validate';
import { bronzeStatusQuery } from '../workflows/bronze';
import { medallionPipeline, pipelineStatusQuery } from '../workflows/pipeline';
import { CliError, connectClient } from './connection';
import { table } from './format';

export const CONTINUOUS_PIPELINE_ID = 'pipeline-continuous';

function pipelineInput(options: { maxFiles?: string; landing?: string; interval?: string }, continuous: boolean): PipelineInput {
  const input: PipelineInput = { continuous, landingPath: options.landing ?? config.landingDir };
  if (options.maxFiles !== undefined) input.options = { maxFilesPerBatch: Number(options.maxFiles) };
  if (options.interval !== undefined) input.intervalSeconds = Number(options.interval);
  const parsed = pipelineInputSchema.safeParse(input);
  if (!parsed.success) throw new CliError(`Invalid pipeline input: ${describeIssues(parsed.error)}`, 2);
  return input;
}

function passTable(bronze: PassSummary[]): string {
  return table(bronze.map((s) => ({
    source: s.source, batches: s.batches, files: s.files, rows: s.rows, quarantined: s.quarantined,
    versions: s.batches ? `${s.fromVersion + 1}..${s.toVersion}` : '-',
    seconds: ((Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1),
  })));
}

export function pipelineCommands(): Command[] {
  const run = new Command('run')
    .description('one availableNow pass: ingest every landing file not yet ingested, then stop')
    .option('--max-files <n>', 'max files per batch')
    .option('--landing <dir>', 'landing zone root')
    .option('--json', 'print the summary as JSON')
    .action(async (options) => {
      const input = pipelineInput(options, false);
      const client = await connectClient();
      const started = Date.now();
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue: config.taskQueue, workflowId: `pipeline-run-${new Date().toISOString().replace(/[:.]/g, '-')}`,
        args: [input],
      });
      if (!options.json) console.error(`pass running as workflow ${handle.workflowId} …`);
      const pass = (await handle.result())!;
      if (options.json) console.log(JSON.stringify(pass, null, 2));
      else console.log(`${passTable(pass.bronze)}\n\npass finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });

  const pipeline = new Command('pipeline').description('the continuous pipeline (loops passes with an interval)');
  pipeline
    .command('start')
    .description(`start the continuous pipeline as workflow ${CONTINUOUS_PIPELINE_ID} (keeps a running one)`)
    .option('--interval <seconds>', 'seconds between passes', '10')
    .option('--max-files <n>', 'max files per batch')
    .option('--landing <dir>', 'landing zone root')
    .action(async (options) => {
      const input = pipelineInput(options, true);
      const client = await connectClient();
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue: config.taskQueue, workflowId: CONTINUOUS_PIPELINE_ID, args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      });
      console.log(`pipeline ${handle.workflowId} running; Web UI: ${config.uiUrl}/namespaces/${config.namespace}/workflows/${handle.workflowId}`);
    });
  pipeline
    .command('status')
    .option('--brief', 'one line')
    .action(async (options) => {
      const client = await connectClient();
      const status = await client.workflow.getHandle(CONTINUOUS_PIPELINE_ID).query(pipelineStatusQuery);
      if (!options.brief) return console.log(JSON.stringify(status, null, 2));
      const last = status.lastPass?.bronze ?? [];
      const sum = (k: 'files' | 'rows' | 'quarantined') => last.reduce((n, s) => n + s[k], 0);
      console.log(`[pipeline] ${status.passes} passes; last pass: ${sum('files')} files, ${sum('rows')} rows into bronze, ${sum('quarantined')} quarantined`);
    });
  pipeline.command('stop').action(async () => {
    await (await connectClient()).workflow.getHandle(CONTINUOUS_PIPELINE_ID).cancel();
    console.log(`pipeline ${CONTINUOUS_PIPELINE_ID} cancelled`);
  });

  const bronze = new Command('bronze').description('bronze checkpoints');
  bronze
    .command('status')
    .description('checkpoint of each source workflow: files, rows, version, schema version, lag')
    .option('--json', 'JSON output')
    .action(async (options) => {
      const client = await connectClient();
      const rows = await Promise.all(DEFAULT_SOURCES.map(async (source) => {
        const id = bronzeWorkflowId(source);
        try {
          const s = await client.workflow.getHandle(id).query(bronzeStatusQuery);
          return { workflow: id, files: s.filesIngested, quarantined: s.filesQuarantined, rows: s.rowsIngested, version: s.version, schema: s.schemaVersion, lag_files: s.lagFiles ?? '', passes: s.passes, running: s.passRunning ? 'yes' : 'no' };
        } catch {
          return { workflow: id, files: 'not started' };
        }
      }));
      console.log(options.json ? JSON.stringify(rows, null, 2) : table(rows));
    });

  return [run, pipeline, bronze];
}
