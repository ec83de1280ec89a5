// CLI commands of the device simulator.
import { Command } from 'commander';
import { WorkflowIdConflictPolicy, WorkflowNotFoundError } from '@temporalio/client';
import { z } from 'zod';
import { config } from '../config';
import { landingPathProblem } from '../lake/landing';
import { resolveLocation } from '../lake/object-store';
import { generatorInputSchema, scenarioSchema, type GeneratorInput } from '../rules/generator';
import { describeIssues } from '../rules/validate';
import { generatorProgressQuery, generatorWorkflow } from '../workflows/generator';
import { CliError, connectClient } from './connection';

export const DEFAULT_GENERATOR_ID = 'generator';

/** "Celular/Conectado=80,Computador/Desconectado=70" → scenarios. */
export function parseScenarioList(text: string): GeneratorInput['scenarios'] {
  return text.split(',').map((part) => {
    const match = /^\s*([^/=\s]+)\/([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    if (!match) throw new CliError(`--scenarios: "${part}" is not Device/Status=count`, 2);
    return { device: match[1], status: match[2], count: Number(match[3]) } as z.infer<typeof scenarioSchema>;
  });
}

export function buildGeneratorInput(options: Record<string, string | undefined>): GeneratorInput {
  const input: Record<string, unknown> = {};
  if (options.scenarios) input.scenarios = parseScenarioList(options.scenarios);
  if (options.interval !== undefined) input.intervalSeconds = Number(options.interval);
  if (options.ticks !== undefined) input.ticks = Number(options.ticks);
  if (options.seed !== undefined) input.seed = Number(options.seed);
  if (options.startTime !== undefined) input.startTime = options.startTime;
  if (options.mode !== undefined) input.mode = options.mode;
  if (options.clients !== undefined || options.servers !== undefined) {
    input.population = {
      ...(options.clients !== undefined && { clients: Number(options.clients) }),
      ...(options.servers !== undefined && { servers: Number(options.servers) }),
    };
  }
  const landingPath = resolveLocation(options.landing ?? config.landingDir);
  input.landingPath = landingPath;
  const outside = landingPathProblem(landingPath, config.landingRoots);
  if (outside) throw new CliError(`--landing: ${outside}`, 2);
  const parsed = generatorInputSchema.safeParse(input);
  if (!parsed.success) throw new CliError(`Invalid generator input: ${describeIssues(parsed.error)}`, 2);
  return input as GeneratorInput;
}

export function generatorCommands(): Command {
  const generator = new Command('generator').alias('generate').description('the device simulator writing parquet files to the landing zone');

  generator
    .command('start')
    .description('start the generator workflow (keeps the running one if the id exists)')
    .option('--id <workflowId>', 'workflow id', DEFAULT_GENERATOR_ID)
    .option('--scenarios <list>', 'Device/Status=count,... (default: the four source-system scenarios)')
    .option('--mode <mode>', 'random (a new person per event, as the source system) or population (stable clients and servers)')
    .option('--clients <n>', 'population mode: number of clients (500)')
    .option('--servers <n>', 'population mode: number of servers (12)')
    .option('--interval <seconds>', 'seconds between ticks', '10')
    .option('--ticks <n>', 'stop after n ticks (default: run until stopped)')
    .option('--seed <n>', 'seed for reproducible rows')
    .option('--start-time <iso>', 'simulated clock start')
    .option('--landing <dir>', 'landing zone root (default: data/landing)')
    .option('--wait', 'wait for the workflow to finish and print its result')
    .action(async (options) => {
      const input = buildGeneratorInput(options);
      const client = await connectClient();
      const handle = await client.workflow.start(generatorWorkflow, {
        taskQueue: config.taskQueue,
        workflowId: options.id,
        args: [input],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
      });
      console.log(`generator workflow ${handle.workflowId} running (run ${handle.firstExecutionRunId}); Web UI: ${config.uiUrl}/namespaces/${config.namespace}/workflows/${handle.workflowId}`);
      if (options.wait) console.log(JSON.stringify(await handle.result(), null, 2));
    });

  generator
    .command('status')
    .description('ticks, files and rows written so far')
    .option('--id <workflowId>', 'workflow id', DEFAULT_GENERATOR_ID)
    .option('--brief', 'one line')
    .action(async (options) => {
      const client = await connectClient();
      try {
        const handle = client.workflow.getHandle(options.id);
        const progress = await handle.query(generatorProgressQuery);
        // The workflow's own flag stays true when it is cancelled or terminated mid-tick: Temporal knows.
        const { status } = await handle.describe();
        const state = status.name === 'RUNNING' ? 'running' : status.name.toLowerCase().replace(/_/g, ' ');
        Object.assign(progress, { running: status.name === 'RUNNING', status: state });
        if (options.brief) {
          console.log(`[generator] ${state}: ${progress.ticksDone} ticks, ${progress.filesWritten} files, ${progress.rowsWritten} rows (last tick ${progress.lastTickAt ?? '-'})`);
        } else console.log(JSON.stringify(progress, null, 2));
      } catch (error) {
        if (error instanceof WorkflowNotFoundError) throw new CliError(`no generator workflow with id ${options.id}`);
        throw error;
      }
    });

  generator
    .command('stop')
    .description('cancel the generator workflow')
    .option('--id <workflowId>', 'workflow id', DEFAULT_GENERATOR_ID)
    .action(async (options) => {
      const client = await connectClient();
      const handle = client.workflow.getHandle(options.id);
      await handle.cancel();
      // Wait until it has stopped (it finishes the tick it is writing), so status says so at once.
      await Promise.race([handle.result().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 30_000))]);
      console.log(`generator ${options.id} cancelled`);
    });

  return generator;
}
