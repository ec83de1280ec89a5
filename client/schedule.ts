// Temporal Schedules of pipeline passes, managed from the CLI.
import { Command } from 'commander';
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleSpec } from '@temporalio/client';
import { config } from '../config';
import { LakeNotCreatedError, lakeFromEnv } from '../lake/catalog';
import { readRows } from '../lake/reads';
import { medallionPipeline } from '../workflows/pipeline';
import { CliError, connectClient } from './connection';
import { table } from './format';
import { pipelineInput } from './pipeline';
import { readLake } from './report';

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A pass plans, commits and logs every layer: passes scheduled closer than this only pile up as skips. */
export const MIN_PASS_INTERVAL_MS = 5000;
/** How many recent passes the interval is measured against. */
const RECENT_PASSES = 20;

function durationMs(every: string): number {
  const match = DURATION.exec(every);
  if (!match || Number(match[1]) === 0) throw new CliError(`--every: "${every}" is not a positive duration such as 30s, 5m, 1h`, 2);
  return Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** p95 of the recent passes' durations from the lake's event log; undefined before the first pass. */
async function measuredPassMs(): Promise<number | undefined> {
  const [row] = await readLake(() => readRows(lakeFromEnv(), `
    SELECT quantile_cont(duration_ms, 0.95) AS p95_ms FROM (
      SELECT duration_ms FROM lake.event_log WHERE kind = 'pass' AND duration_ms IS NOT NULL ORDER BY logged_at DESC LIMIT ${RECENT_PASSES})`)
    .catch((error: unknown) => {
      if (error instanceof LakeNotCreatedError) return []; // no lake yet, so no pass to measure
      throw error;
    }));
  return row === undefined || row.p95_ms === null ? undefined : Number(row.p95_ms);
}

/** Refuses an interval shorter than the floor, or than the lake's passes take (p95 of the recent ones). */
async function checkInterval(every: string): Promise<void> {
  const ms = durationMs(every);
  const atLeast = (minMs: number) => `give at least --every ${Math.ceil(minMs / 1000)}s`;
  if (ms < MIN_PASS_INTERVAL_MS) {
    throw new CliError(`--every ${every}: scheduled passes need at least ${MIN_PASS_INTERVAL_MS / 1000}s between them (each plans, commits and logs every layer); ${atLeast(MIN_PASS_INTERVAL_MS)}`, 2);
  }
  const p95 = await measuredPassMs();
  if (p95 !== undefined && ms < p95) {
    throw new CliError(`--every ${every}: a pass on this lake takes ${(p95 / 1000).toFixed(1)} s (p95 of the last ${RECENT_PASSES} passes in lake.event_log), and a pass due while one runs is skipped; ${atLeast(p95)}`, 2);
  }
}

function spec(options: { every?: string; cron?: string }): ScheduleSpec {
  if (!!options.every === !!options.cron) throw new CliError('give exactly one of --every <duration> (e.g. 30s, 5m) or --cron "<expr>"', 2);
  if (options.every) {
    durationMs(options.every);
    return { intervals: [{ every: options.every as `${number}s` }] };
  }
  if (options.cron!.trim().split(/\s+/).length !== 5) throw new CliError(`--cron: "${options.cron}" needs 5 fields (minute hour day month weekday)`, 2);
  return { cronExpressions: [options.cron!] };
}

function parseTime(value: string, flag: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new CliError(`${flag}: "${value}" is not a time (ISO 8601)`, 2);
  return date;
}

async function handle(id: string) {
  const client = await connectClient();
  const h = client.schedule.getHandle(id);
  await h.describe().catch((error) => {
    if (error instanceof ScheduleNotFoundError) throw new CliError(`no schedule with id ${id}`);
    throw error;
  });
  return h;
}

export function scheduleCommands(): Command {
  const schedule = new Command('schedule').description('Temporal Schedules of availableNow pipeline passes (overlap: skip)');

  schedule
    .command('create')
    .argument('<id>', 'schedule id')
    .option('--every <duration>', 'interval, e.g. 30s, 5m, 1h')
    .option('--cron <expr>', 'cron expression, 5 fields')
    .option('--paused', 'create it paused')
    .option('--note <text>', 'a note shown in the Web UI')
    .option('--max-files <n>', 'max files per batch')
    .action(async (id: string, options) => {
      const input = pipelineInput(options, false);
      const scheduleSpec = spec(options);
      if (options.every) await checkInterval(options.every);
      const client = await connectClient();
      await client.schedule.create({
        scheduleId: id,
        spec: scheduleSpec,
        action: {
          type: 'startWorkflow', workflowType: medallionPipeline, taskQueue: config.taskQueue, args: [input],
          workflowId: `scheduled-${id}`, searchAttributes: { NetpulseLayer: ['pipeline'] }, staticSummary: `scheduled pass (${id})`,
        },
        // A pass still running when the next is due: skip the new one, never two at once.
        policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute' },
        state: { paused: Boolean(options.paused), note: options.note },
      });
      console.log(`schedule ${id} created${options.paused ? ' (paused)' : ''}`);
    });

  schedule.command('list').option('--json', 'JSON output').action(async (options) => {
    const client = await connectClient();
    const rows: Record<string, unknown>[] = [];
    for await (const s of client.schedule.list()) {
      rows.push({
        id: s.scheduleId, paused: s.state.paused, spec: JSON.stringify(s.spec?.intervals ?? s.spec?.calendars ?? ''),
        next: s.info.nextActionTimes[0]?.toISOString() ?? '', recent: s.info.recentActions.length,
      });
    }
    console.log(options.json ? JSON.stringify(rows, null, 2) : table(rows));
  });

  schedule.command('describe').argument('<id>').action(async (id: string) => {
    const d = await (await handle(id)).describe();
    console.log(JSON.stringify({
      id: d.scheduleId, paused: d.state.paused, note: d.state.note, spec: d.spec, overlap: d.policies.overlap,
      actions: d.info.numActionsTaken, skipped: d.info.numActionsSkippedOverlap, running: d.info.runningActions.map((a) => a.workflow.workflowId),
      next: d.info.nextActionTimes.map((t) => t.toISOString()),
      recent: d.info.recentActions.map((a) => ({ scheduledAt: a.scheduledAt.toISOString(), workflowId: a.action.workflow.workflowId })),
    }, null, 2));
  });

  const simple = (name: string, description: string, act: (h: Awaited<ReturnType<typeof handle>>) => Promise<unknown>, done: string) =>
    schedule.command(name).description(description).argument('<id>').action(async (id: string) => {
      await act(await handle(id));
      console.log(`schedule ${id} ${done}`);
    });
  simple('pause', 'pause it', (h) => h.pause('paused from the netpulse CLI'), 'paused');
  simple('unpause', 'unpause it', (h) => h.unpause('unpaused from the netpulse CLI'), 'unpaused');
  simple('trigger', 'run a pass now (skipped if one is running)', (h) => h.trigger(ScheduleOverlapPolicy.SKIP), 'triggered');
  simple('delete', 'delete it', (h) => h.delete(), 'deleted');

  schedule
    .command('backfill')
    .description('run the passes the schedule would have run in a past range')
    .argument('<id>')
    .requiredOption('--start <time>', 'ISO time')
    .requiredOption('--end <time>', 'ISO time')
    .action(async (id: string, options) => {
      const start = parseTime(options.start, '--start');
      const end = parseTime(options.end, '--end');
      if (end <= start) throw new CliError('--end must be after --start', 2);
      await (await handle(id)).backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
      console.log(`schedule ${id}: backfill ${start.toISOString()} .. ${end.toISOString()} requested`);
    });

  return schedule;
}
