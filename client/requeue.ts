// `requeue`: quarantined landing files go back in line for the next pass, after their producer
// fixed them.
import { Command } from 'commander';
import { lakeFromEnv } from '../lake/catalog';
import { requeueQuarantined } from '../lake/ledger';
import { CliError } from './connection';

export function requeueCommand(): Command {
  return new Command('requeue')
    .description('put quarantined landing files back in line: the next pass takes them again (their quarantine rows stay)')
    .option('--source <table>', 'only this bronze table, e.g. bronze.celular_conectado')
    .option('--path <text>', 'only paths containing this text')
    .action(async (options) => {
      if (options.source !== undefined && !/^bronze\.[a-z][a-z0-9_]{0,62}$/.test(options.source)) {
        throw new CliError(`--source: "${options.source}" is not a bronze table such as bronze.celular_conectado`, 2);
      }
      const paths = await requeueQuarantined(lakeFromEnv(), { table: options.source, pathContains: options.path });
      console.log(paths.length ? `${paths.length} quarantined files requeued:\n${paths.join('\n')}` : 'no quarantined files match');
    });
}
