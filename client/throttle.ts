// `throttle`: heavy clients' throttles. List them from the audit, decide on one (approve, reject,
// lift: an update of its workflow that answers once the decision is in the audit), start the
// controller, and read or set its policy.
import { Command, Option } from 'commander';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import os from 'node:os';
import { config } from '../config';
import { lakeFromEnv } from '../lake/catalog';
import { readThrottleHistory, readThrottles } from '../lake/throttles';
import { OPERATOR_ACTIONS, parseClient, THROTTLE_CONTROLLER_ID, throttlePolicySchema, throttleWorkflowId, type OperatorAction, type ThrottlePolicyInput } from '../rules/throttle';
import { describeIssues } from '../rules/validate';
import { controllerStatusQuery, decideUpdate, setPolicyUpdate, throttleControllerWorkflow, type ControllerStatus, type ThrottleView } from '../workflows/throttle';
import { CliError, connectClient } from './connection';
import { table } from './format';
import { readLake } from './report';

const controllerId = () => THROTTLE_CONTROLLER_ID;

/** `<ip>/<device>` in its parts, or exit 2 saying what a client looks like. */
function clientOrExit(text: string): { ip: string; dispositivo: string } {
  try {
    return parseClient(text);
  } catch (error) {
    throw new CliError(`"${text}" is not a client: ${describeIssues(error as never)}`, 2);
  }
}

/** Sends an operator's decision to a client's throttle workflow; answers with the throttle after it. */
export async function decide(client: Client, clientKey: string, action: OperatorAction, actor: string, reason: string): Promise<ThrottleView> {
  const parsed = clientOrExit(clientKey);
  const workflowId = throttleWorkflowId(parsed.ip, parsed.dispositivo);
  try {
    return await client.workflow.getHandle(workflowId).executeUpdate(decideUpdate, { args: [{ action, actor, reason }] });
  } catch (error) {
    if (error instanceof WorkflowUpdateFailedError) throw new CliError(`${action} ${clientKey}: ${error.cause?.message ?? error.message}`, 2);
    if ((error as Error).name === 'WorkflowNotFoundError' || /not found|already completed/i.test((error as Error).message)) {
      throw new CliError(`${clientKey} has no throttle open (netpulse throttle list)`, 2);
    }
    throw error;
  }
}

const POLICY_FLAGS: { flag: string; key: keyof ThrottlePolicyInput; help: string }[] = [
  { flag: 'min-heavy-minutes', key: 'minHeavyMinutes', help: 'auto: heavy for at least this long' },
  { flag: 'min-server-utilisation', key: 'minServerUtilisationPct', help: 'auto: on a server at or above this %' },
  { flag: 'max-per-server', key: 'maxPerServer', help: 'auto: at most this many throttled per server' },
  { flag: 'propose-per-server', key: 'proposePerServer', help: 'at most N proposals waiting per server, its heaviest clients first' },
  { flag: 'withdraw-after-minutes', key: 'withdrawAfterMinutes', help: 'withdraw a proposal not heavy for this long' },
  { flag: 'lift-after-minutes', key: 'liftAfterMinutes', help: 'lift a throttle not heavy for this long' },
  { flag: 'expire-after-hours', key: 'expireAfterHours', help: 'lift every throttle this long after it was applied' },
  { flag: 'quiet-after-end-minutes', key: 'quietAfterEndMinutes', help: 'do not propose a client again for this long after its throttle ended' },
];

function policyChange(options: Record<string, string | undefined>): ThrottlePolicyInput {
  const change: Record<string, unknown> = {};
  if (options.auto !== undefined) change.auto = options.auto === 'on';
  for (const { flag, key } of POLICY_FLAGS) {
    const value = options[flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase())];
    if (value === undefined) continue;
    if (!/^\d+(\.\d+)?$/.test(value)) throw new CliError(`--${flag}: "${value}" is not a number`, 2);
    change[key] = Number(value);
  }
  const parsed = throttlePolicySchema.partial().safeParse(change);
  if (!parsed.success) throw new CliError(`policy: ${describeIssues(parsed.error)}`, 2);
  return parsed.data;
}

async function controller(client: Client): Promise<ControllerStatus> {
  try {
    return await client.workflow.getHandle(controllerId()).query(controllerStatusQuery);
  } catch {
    throw new CliError(`no throttle controller is running (${controllerId()}); start it with: netpulse throttle start`);
  }
}

export function throttleCommand(): Command {
  const throttle = new Command('throttle').description("heavy clients' throttles: list, approve, reject, lift; the controller and its policy");
  throttle
    .command('list', { isDefault: true })
    .description('each client with a throttle open (proposed, approved, applied, in force, failed); --all: also those that ended')
    .option('--all', 'also throttles lifted, withdrawn or rejected')
    .option('--client <client>', "one client's audit trail, e.g. 10.0.1.180/Computador")
    .option('--json', 'JSON output')
    .action(async (options) => {
      const lake = lakeFromEnv();
      if (options.client) clientOrExit(options.client);
      const rows: object[] = await readLake<object[]>(() => (options.client ? readThrottleHistory(lake, options.client) : readThrottles(lake, { which: options.all ? 'all' : 'open' })));
      console.log(options.json ? JSON.stringify(rows, null, 2) : table(rows as unknown as Record<string, unknown>[]));
    });
  for (const action of OPERATOR_ACTIONS) {
    throttle
      .command(action)
      .description({ approve: 'approve a proposed throttle: the adapter applies it', reject: 'reject a proposed throttle', lift: 'lift a throttle (approved, applied, in force or failed)' }[action])
      .argument('<client>', 'the client, <ip>/<device>, e.g. 10.0.1.180/Computador')
      .option('--actor <name>', 'who decides, for the audit', os.userInfo().username)
      .option('--reason <text>', 'why, for the audit', '')
      .action(async (clientKey: string, options) => {
        const view = await decide(await connectClient(), clientKey, action, options.actor, options.reason);
        const last = view.transitions.at(-1);
        console.log(`${clientKey}: ${view.state}${last ? ` (${last.transition} by ${last.actor} at ${last.at}: ${last.reason})` : ''}`);
      });
  }
  throttle
    .command('start')
    .description('start the throttle controller (reads gold every --observe-seconds and proposes throttles); nothing if it runs')
    .option('--observe-seconds <s>', 'how often it reads gold', '60')
    .action(async (options) => {
      const client = await connectClient();
      const observeSeconds = Number(options.observeSeconds);
      if (!Number.isFinite(observeSeconds) || observeSeconds < 1) throw new CliError(`--observe-seconds: "${options.observeSeconds}" is not a number ≥ 1`, 2);
      try {
        await client.workflow.start(throttleControllerWorkflow, {
          taskQueue: config.taskQueue, workflowId: controllerId(), args: [{ observeSeconds }],
          searchAttributes: { NetpulseLayer: ['actions'], NetpulseSource: ['throttle'] }, staticSummary: 'throttle controller: proposes throttles for heavy clients',
        });
        console.log(`throttle controller started: ${controllerId()} (reads gold every ${observeSeconds} s; policy: netpulse throttle policy)`);
      } catch (error) {
        if ((error as Error).name !== 'WorkflowExecutionAlreadyStartedError') throw error;
        console.log(`throttle controller already running: ${controllerId()}`);
      }
    });
  const policy = throttle
    .command('policy')
    .description('show the policy; with options, change it (the controller applies it from its next reading)')
    .addOption(new Option('--auto <on|off>', 'approve without an operator when the conditions hold').choices(['on', 'off']))
    .option('--json', 'JSON output');
  for (const { flag, help } of POLICY_FLAGS) policy.option(`--${flag} <n>`, help);
  policy.action(async (options) => {
    const client = await connectClient();
    const change = policyChange(options);
    let current = (await controller(client)).policy;
    if (Object.keys(change).length > 0) current = await client.workflow.getHandle(controllerId()).executeUpdate(setPolicyUpdate, { args: [change] });
    console.log(options.json ? JSON.stringify(current, null, 2) : table(Object.entries(current).map(([setting, value]) => ({ setting, value }))));
  });
  return throttle;
}
