// `reset`: start over. Stops netpulse's workflows, drops the lake's tables (through the worker)
// and, unless --keep-landing, deletes the landing zone. Asks first.
import { Command } from 'commander';
import { rm } from 'node:fs/promises';
import readline from 'node:readline/promises';
import { config } from '../config';
import { lakeFromEnv } from '../lake/catalog';
import { emptyLake } from '../lake/admin';
import { deleteObjectsUnder, isObjectUrl } from '../lake/object-store';
import { CliError, connectClient } from './connection';

async function confirmed(yes: boolean): Promise<boolean> {
  if (yes) return true;
  if (!process.stdin.isTTY) throw new CliError('reset deletes data: confirm with --yes when not at a terminal', 2);
  const prompt = readline.createInterface({ input: process.stdin, output: process.stdout });
  const answer = await prompt.question(`This empties the lake (catalog schema ${config.catalogSchema}, files in ${config.dataPath}) and stops netpulse's workflows. Type "reset" to go on: `);
  prompt.close();
  return answer.trim() === 'reset';
}

export function resetCommand(): Command {
  return new Command('reset')
    .description('stop netpulse workflows, drop the lake tables, delete the landing zone (asks first)')
    .option('--yes', 'do not ask')
    .option('--keep-landing', 'keep the landing files (they will be ingested again)')
    .action(async (options) => {
      if (!(await confirmed(Boolean(options.yes)))) {
        console.log('reset cancelled');
        return;
      }
      const client = await connectClient();
      const running = client.workflow.list({ query: `ExecutionStatus = "Running" AND TaskQueue = "${config.taskQueue}"` });
      let stopped = 0;
      for await (const execution of running) {
        await client.workflow.getHandle(execution.workflowId).terminate('netpulse reset').catch(() => undefined);
        stopped++;
      }
      const { tables } = await emptyLake(lakeFromEnv());
      if (!options.keepLanding) {
        if (isObjectUrl(config.landingDir)) await deleteObjectsUnder(config.landingDir);
        else await rm(config.landingDir, { recursive: true, force: true });
      }
      console.log(`reset: ${stopped} workflows terminated, lake ${config.catalogSchema} emptied (${tables} tables dropped)${options.keepLanding ? '' : `, ${config.landingDir} deleted`}`);
    });
}
