// `owners`: the checkpoint-owning workflows (bronze sources, silver, gold): list them with their
// parked batches, retry a parked batch, or stop owners so they start again with new options.
import { Command } from 'commander';
import type { Client } from '@temporalio/client';
import { config } from '../config';
import { retryParkedSignal } from '../workflows/checkpoint-owner';
import { CliError, connectClient } from './connection';
import { table } from './format';
import { parkedCell, queryOwner, retryingCell, type OwnerState } from './owner-state';

const OWNERS_QUERY = `ExecutionStatus = "Running" AND NetpulseLayer IN ("bronze", "silver", "gold")`;

async function runningOwners(client: Client, only: string[]): Promise<string[]> {
  const ids: string[] = [];
  for await (const execution of client.workflow.list({ query: OWNERS_QUERY })) ids.push(execution.workflowId);
  const unknown = only.filter((id) => !ids.includes(id));
  if (unknown.length > 0) throw new CliError(`no running owner workflow ${unknown.join(', ')} (running: ${ids.sort().join(', ') || 'none'})`, 2);
  return (only.length > 0 ? only : ids).sort();
}

async function ownerState(client: Client, workflowId: string): Promise<OwnerState | undefined> {
  const q = await queryOwner(client.workflow, workflowId);
  return 'state' in q ? q.state : undefined;
}

export function ownersCommand(): Command {
  const owners = new Command('owners').description('checkpoint owner workflows: list, retry parked batches, stop');
  owners
    .command('list', { isDefault: true })
    .description('each owner: pass running, an activity it is retrying (attempt, since when, last error), last pass, parked batch and why')
    .option('--json', 'JSON output')
    .action(async (options) => {
      const client = await connectClient();
      const rows = await Promise.all((await runningOwners(client, [])).map(async (workflowId) => {
        const q = await queryOwner(client.workflow, workflowId);
        if (!('state' in q)) return { workflow: workflowId, pass_running: '?', retrying: '', last_pass: '-', parked: 'failed' in q ? q.failed : '' };
        const s = q.state;
        return options.json
          ? { workflow: workflowId, pass_running: s.passRunning, retrying: s.retrying ?? null, last_pass: s.lastPass?.finishedAt ?? null, parked: s.parked ?? null }
          : { workflow: workflowId, pass_running: s.passRunning, retrying: retryingCell(s.retrying), last_pass: s.lastPass?.finishedAt ?? '-', parked: parkedCell(s.parked) };
      }));
      console.log(options.json ? JSON.stringify(rows, null, 2) : table(rows));
    });
  owners
    .command('retry-parked')
    .description('retry the parked batch of the given owners (all parked owners if none given)')
    .argument('[workflowIds...]', 'owner workflow ids, e.g. bronze-celular-conectado')
    .action(async (ids: string[]) => {
      const client = await connectClient();
      let retried = 0;
      for (const workflowId of await runningOwners(client, ids)) {
        const state = await ownerState(client, workflowId);
        if (!state?.parked) {
          if (ids.length > 0) console.log(`${workflowId}: nothing parked`);
          continue;
        }
        await client.workflow.getHandle(workflowId).signal(retryParkedSignal);
        console.log(`${workflowId}: retrying ${state.parked.batchId ?? 'its pass'} (parked since ${state.parked.since}: ${state.parked.reason})`);
        retried++;
      }
      console.log(`${retried} parked batch${retried === 1 ? '' : 'es'} retried; follow with: netpulse owners list`);
    });
  owners
    .command('stop')
    .description('terminate owners between passes; the next pass starts them again with its options, from the lake\'s checkpoint')
    .argument('<workflowIds...>', 'owner workflow ids, or "all"')
    .action(async (ids: string[]) => {
      const client = await connectClient();
      const targets = await runningOwners(client, ids.includes('all') ? [] : ids);
      for (const workflowId of targets) {
        const state = await ownerState(client, workflowId);
        if (state?.passRunning) throw new CliError(`${workflowId} is running a pass; stop it once the pass is over (netpulse owners list)`);
        await client.workflow.getHandle(workflowId).terminate('netpulse owners stop: restarts with the next pass\'s options');
        console.log(`${workflowId} stopped (Web UI: ${config.uiUrl}/namespaces/${config.namespace}/workflows/${workflowId})`);
      }
    });
  return owners;
}
