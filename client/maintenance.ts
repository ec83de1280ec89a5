// `maintenance run` (now) and `maintenance schedule` (a Temporal Schedule): compaction,
// snapshot expiry, file cleanup, landing retention.
import { Command } from 'commander';
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy } from '@temporalio/client';
import { config } from '../config';
import { maintenanceInputSchema, MAINTENANCE_SCHEDULE_ID, type MaintenanceInput, type MaintenanceReport, type TableCompaction } from '../rules/maintenance';
import { describeIssues } from '../rules/validate';
import { maintenanceWorkflow } from '../workflows/maintenance';
import { CliError, connectClient } from './connection';
import { size, table } from './format';

function maintenanceInput(options: Record<string, string | undefined>): MaintenanceInput {
  const input: Record<string, unknown> = {};
  if (options.landing !== undefined) input.landing = options.landing;
  if (options.landingRetentionHours !== undefined) input.landingRetentionHours = Number(options.landingRetentionHours);
  if (options.snapshotRetentionHours !== undefined) input.snapshotRetentionHours = Number(options.snapshotRetentionHours);
  if (options.orphanGraceHours !== undefined) input.orphanGraceHours = Number(options.orphanGraceHours);
  const parsed = maintenanceInputSchema.safeParse(input);
  if (!parsed.success) throw new CliError(`Invalid maintenance input: ${describeIssues(parsed.error)}`, 2);
  return input as MaintenanceInput;
}

const withOptions = (command: Command) => command
  .option('--snapshot-retention-hours <h>', 'keep snapshots this long for time travel (24)')
  .option('--landing <mode>', 'landing files after the retention: keep, archive or delete (keep)')
  .option('--landing-retention-hours <h>', 'how long after ingestion (24)')
  .option('--orphan-grace-hours <h>', 'delete files no snapshot references once older than this (24)');

/** What happened to each table, the flush (data moving out of the catalog) apart from the merge. */
export function formatMaintenance(report: MaintenanceReport): string {
  const lakeRow = (when: string, f: MaintenanceReport['before']) => ({ when, live_files: f.liveFiles, live: size(f.liveBytes), all_files: f.allFiles, all: size(f.allBytes), snapshots: f.snapshots });
  const files = (n: number) => `${n} file${n === 1 ? '' : 's'}`;
  const sum = (pick: (t: TableCompaction) => number) => report.tables.reduce((n, t) => n + pick(t), 0);
  // Tables where something happened, or whose files stayed apart (and why): the rest in one line.
  const shown = report.tables.filter((t) => t.flushed.rows > 0 || t.merged.files > 0 || t.files.after > 1);
  const grew = report.tables.filter((t) => t.merged.intoBytes > t.merged.bytes);
  return [
    table([lakeRow('before', report.before), lakeRow('after', report.after)]),
    shown.length === 0 ? 'no table had rows to flush or files to merge' : table(shown.map((t) => ({
      table: t.table, files: `${t.files.before} → ${t.files.after}`, bytes: `${size(t.bytes.before)} → ${size(t.bytes.after)}`,
      flushed_from_catalog: t.flushed.rows ? `${t.flushed.rows} rows into ${files(t.flushed.files)}, ${size(t.flushed.bytes)}` : '',
      merged: t.merged.files ? `${files(t.merged.files)}, ${size(t.merged.bytes)} → ${files(t.merged.intoFiles)}, ${size(t.merged.intoBytes)}` : '',
      with_deletes: t.filesWithDeletes || '',
    }))),
    `flushed ${sum((t) => t.flushed.rows)} rows out of the catalog into ${files(sum((t) => t.flushed.files))} (${size(sum((t) => t.flushed.bytes))}): data moved to Parquet, not growth`,
    `merged ${files(sum((t) => t.merged.files))} (${size(sum((t) => t.merged.bytes))}) into ${files(sum((t) => t.merged.intoFiles))} (${size(sum((t) => t.merged.intoBytes))}); files with deleted rows are never merged`,
    ...(grew.length ? [`merges that wrote more than they replaced: ${grew.map((t) => `${t.table} ${size(t.merged.bytes)} → ${size(t.merged.intoBytes)}`).join(', ')}`] : []),
    `${report.tables.length - shown.length} other tables: nothing to flush or merge`,
    `snapshots expired: ${report.snapshotsExpired} (kept from snapshot ${report.floorSnapshot}, which a downstream checkpoint still reads)`,
    ...(report.orphansDeleted !== undefined ? [`orphaned files deleted: ${report.orphansDeleted}`] : []),
    `landing files: ${report.landingFiles.archived} archived, ${report.landingFiles.deleted} deleted`,
    `took ${(report.elapsedMs / 1000).toFixed(1)} s`,
  ].join('\n');
}

export function maintenanceCommands(): Command {
  const maintenance = new Command('maintenance').description('lake maintenance: merge small files, expire snapshots, delete unreferenced files, landing retention');

  withOptions(maintenance.command('run').description('run maintenance now and print files and bytes before and after'))
    .option('--json', 'JSON output')
    .action(async (options) => {
      const input = maintenanceInput(options);
      const client = await connectClient();
      const report = await client.workflow.execute(maintenanceWorkflow, {
        taskQueue: config.taskQueue, workflowId: `maintenance-${new Date().toISOString().replace(/[:.]/g, '-')}`, args: [input],
        searchAttributes: { NetpulseLayer: ['maintenance'] }, staticSummary: 'lake maintenance (CLI)',
      });
      console.log(options.json ? JSON.stringify(report, null, 2) : formatMaintenance(report));
    });

  withOptions(maintenance.command('schedule').description(`create the Temporal Schedule ${MAINTENANCE_SCHEDULE_ID} (keeps an existing one)`))
    .option('--every <duration>', 'interval, e.g. 30m, 1h', '1h')
    .action(async (options) => {
      if (!/^\d+(m|h|d)$/.test(options.every)) throw new CliError(`--every: "${options.every}" is not a duration such as 30m, 1h, 1d`, 2);
      const input = maintenanceInput(options);
      const client = await connectClient();
      try {
        await client.schedule.create({
          scheduleId: MAINTENANCE_SCHEDULE_ID,
          spec: { intervals: [{ every: options.every }] },
          action: {
            type: 'startWorkflow', workflowType: maintenanceWorkflow, taskQueue: config.taskQueue, args: [input],
            workflowId: 'maintenance', searchAttributes: { NetpulseLayer: ['maintenance'] }, staticSummary: 'scheduled lake maintenance',
          },
          policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
        });
        console.log(`schedule ${MAINTENANCE_SCHEDULE_ID} created: maintenance every ${options.every}`);
      } catch (error) {
        if (!(error instanceof ScheduleAlreadyRunning)) throw error;
        console.log(`schedule ${MAINTENANCE_SCHEDULE_ID} exists (netpulse schedule describe ${MAINTENANCE_SCHEDULE_ID})`);
      }
    });
  return maintenance;
}
