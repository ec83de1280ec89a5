#!/usr/bin/env node
// netpulse command-line client.
import { Command, CommanderError } from 'commander';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { config } from '../config';
import { generatorCommands } from './generator';
import { pipelineCommands } from './pipeline';
import { readCommands } from './report';
import { statusCommand } from './status';
import { scheduleCommands } from './schedule';
import { resetCommand } from './reset';
import { maintenanceCommands } from './maintenance';
import { dashboardCommand } from './dashboard';
import { watchCommand } from './watch';
import { requeueCommand } from './requeue';
import { ownersCommand } from './owners';
import { throttleCommand } from './throttle';
import { silverCommand } from './silver';
import { CliError } from './connection';

export function buildProgram(): Command {
  const program = new Command('netpulse')
    .description('Temporal-orchestrated medallion lakehouse for network telemetry')
    .showHelpAfterError()
    .exitOverride();
  program.command('up').description('bring everything up: scripts/up.sh (Temporal, worker, generator, continuous pipeline)').action(() => {
    const { status } = spawnSync('bash', [path.join(config.projectRoot, 'scripts', 'up.sh')], { stdio: 'inherit' });
    process.exitCode = status ?? 1;
  });
  program.command('worker').description('run the worker (Ctrl-C stops it gracefully)').action(async () => {
    await (await import('../worker')).runWorker();
  });
  for (const command of [generatorCommands(), ...pipelineCommands(), statusCommand(), scheduleCommands(), maintenanceCommands(), ...readCommands(), dashboardCommand(), watchCommand(), requeueCommand(), ownersCommand(), silverCommand(), throttleCommand(), resetCommand()]) program.addCommand(command);
  // addCommand does not copy the parent's settings: errors must still come back as exit codes.
  const inherit = (command: Command) => command.commands.forEach((c) => inherit(c.exitOverride().showHelpAfterError()));
  inherit(program);
  return program;
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return Number(process.exitCode ?? 0); // a command may set it (up: the script's own status)
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof CliError) {
      console.error(`error: ${error.message}`);
      return error.exitCode;
    }
    // Temporal wraps the reason (workflow → activity → application failure): print the chain.
    const messages: string[] = [];
    for (let e: unknown = error; e instanceof Error; e = e.cause) messages.push(e.message);
    console.error(`error: ${messages.join(': ')}`);
    if (process.env.NETPULSE_DEBUG) console.error(error);
    return 1;
  }
}

if (require.main === module) {
  // process.exit drops what a pipe has not taken yet (a slow `| jq` got a cut JSON): exit once
  // both streams have flushed. Exiting explicitly still matters: clients keep handles open.
  runCli(process.argv.slice(2)).then((code) =>
    process.stdout.write('', () => process.stderr.write('', () => process.exit(code))));
}
