// `requeue`: quarantined data goes back in line once its cause is fixed. Bronze: landing files
// (their producer fixed them); silver: rows (a rule or a bronze table's type was fixed), read
// again through silver's rules by the silver owner's next batch.
import { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { lakeFromEnv } from '../lake/catalog';
import { requeueQuarantined } from '../lake/ledger';
import { readSilverShardCount } from '../lake/reads';
import { requeueFilterSchema } from '../rules/silver';
import { describeIssues } from '../rules/validate';
import { requeueQuarantineUpdate } from '../workflows/layers';
import { silverSummary } from '../workflows/pipeline';
import { silverOwnerIds } from './owner-state';
import { CliError, connectClient } from './connection';

const BRONZE_TABLE = /^bronze\.[a-z][a-z0-9_]{0,62}$/;

/** Sends the requeue to each silver owner (every shard: a row is requeued by the shard that quarantined it). */
async function requeueSilver(options: { rule?: string; source?: string; path?: string; owner?: string }): Promise<void> {
  const filter = requeueFilterSchema.safeParse({ rule: options.rule, sourceTable: options.source, pathContains: options.path });
  if (!filter.success) throw new CliError(`requeue --silver: ${describeIssues(filter.error)}`, 2);
  const client = await connectClient();
  const owners = options.owner ? [options.owner] : silverOwnerIds(await readSilverShardCount(lakeFromEnv()));
  const summaries = await Promise.all(owners.map((owner) => client.workflow.getHandle(owner).executeUpdate(requeueQuarantineUpdate, { args: [filter.data] }).catch((error: unknown) => {
    if (error instanceof WorkflowNotFoundError) {
      throw new CliError(`the silver owner workflow ${owner} is not running: run a pass first (netpulse run), then requeue`);
    }
    throw error;
  })));
  for (const [i, summary] of summaries.entries()) {
    if (summary.parked) throw new CliError(`${owners[i]} is parked (${summary.parked.batchId ?? 'its pass'}: ${summary.parked.reason}); fix the cause, then: netpulse owners retry-parked`);
    if (summary.refused) throw new CliError(summary.refused);
  }
  const summary = silverSummary(summaries);
  const requeued = summary.details?.requeued ?? 0;
  console.log(requeued === 0
    ? 'no quarantined rows match'
    : `${requeued} quarantined rows read again by silver (${summary.batches} batch${summary.batches === 1 ? '' : 'es'}): `
      + `${summary.rows} events, ${summary.quarantined} quarantined again, ${summary.details?.duplicates ?? 0} duplicates (silver.dq_counts has them by rule)`);
}

export function requeueCommand(): Command {
  return new Command('requeue')
    .description('put quarantined landing files (bronze) or rows (--silver) back in line: the next pass takes them again')
    .option('--silver', 'requeue silver.quarantine rows instead of landing files: read again through silver\'s rules, now')
    .option('--source <table>', 'only this bronze table, e.g. bronze.celular_conectado')
    .option('--path <text>', 'only (rows of) landing files whose path contains this text')
    .option('--rule <name>', 'silver: only rows quarantined by this rule, e.g. speed_allowed')
    .option('--owner <workflowId>', 'silver: only this silver owner workflow (default: every shard\'s)')
    .action(async (options) => {
      if (options.source !== undefined && !BRONZE_TABLE.test(options.source)) {
        throw new CliError(`--source: "${options.source}" is not a bronze table such as bronze.celular_conectado`, 2);
      }
      if (options.silver) return requeueSilver(options);
      if (options.rule !== undefined) throw new CliError('--rule: only with --silver (landing files are quarantined whole, not by rule)', 2);
      const paths = await requeueQuarantined(lakeFromEnv(), { table: options.source, pathContains: options.path });
      console.log(paths.length ? `${paths.length} quarantined files requeued:\n${paths.join('\n')}` : 'no quarantined files match');
    });
}
