// The bench's landing for one size, through a plain `netpulse run` (the CLI's one availableNow pass
// over bronze, silver and gold) as a user runs it: one worker, a fresh lake, no warm-up. What the
// CLI's pass table shows per layer, to set beside the bench's figures (bench/run.ts).
//
//   node dist/bench/plain-run.js --size medium [--shuffle-hours 20] [--devices 0] [--bench-extras]
//   node dist/bench/plain-run.js --landing <dir>     # a landing of your own (read, not changed)
//   … --silver-shards N                             # the CLI's --silver-shards (default: the worker's, else 1)
//
// --bench-extras: the landing also holds what the bench's silver + gold pass reads besides the
// size's files (its warm-up files and its one-source files), so silver reads the same rows.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closeLakes, withLake } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { closeAllInstances } from '../lake/duckdb';
import { startDevCatalog } from '../scripts/dev-catalog';
import { startDevServer } from '../scripts/dev-server';
import { config } from '../config';
import type { PipelinePass } from '../workflows/pipeline';
import type { PassSummary } from '../rules/pass';
import { silverBatchTenths, SIZES, tenthsCell, startWorker, stopWorker, writeSingleSourceLanding, writeSizeLanding, writeWarmupLanding } from './harness';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const log = (message: string) => console.error(`[plain-run ${new Date().toISOString().slice(11, 19)}] ${message}`);
const seconds = (s: Pick<PassSummary, 'startedAt' | 'finishedAt'>) => (Date.parse(s.finishedAt) - Date.parse(s.startedAt)) / 1000;

async function main(): Promise<void> {
  const given = arg('landing', '');
  const size = given ? 'landing' : arg('size', 'medium');
  const spec = given ? { files: 0, rows: 0 } : SIZES[size];
  if (!spec) throw new Error(`--size: unknown size "${size}" (${Object.keys(SIZES).join(', ')})`);
  const shape = { shuffleHours: Number(arg('shuffle-hours', '0')), devices: Number(arg('devices', '0')) };
  const extras = process.argv.includes('--bench-extras');
  const server = await startDevServer();
  const catalog = await startDevCatalog();
  const dir = mkdtempSync(path.join(os.tmpdir(), `netpulse-plain-${size}-`));
  const landing = given ? path.resolve(given) : path.join(dir, 'landing');
  const lake = { catalog: catalog.connection, catalogSchema: `plain_${size}_${Date.now().toString(36)}`, dataPath: path.join(dir, 'lake') };
  try {
    log(`${size}: writing ${spec.files} files × ${spec.rows} rows${extras ? ' and the bench\'s warm-up and one-source files' : ''}`);
    let rows = given ? 0 : (await writeSizeLanding(landing, spec, shape)).length * spec.rows;
    if (extras && !given) rows += (await writeWarmupLanding(landing)) + (await writeSingleSourceLanding(landing, spec, shape)).length * spec.rows;
    const worker = await startWorker(server.address, lake, landing);
    await new Promise((r) => setTimeout(r, 1500)); // as the bench: worker start is not part of a pass
    log(`${size}: node dist/client/cli.js run --landing ${landing} --json (${rows} rows)`);
    const t = Date.now();
    const shards = process.argv.includes('--silver-shards') ? ['--silver-shards', arg('silver-shards', '')] : [];
    const cli = spawnSync(process.execPath, [path.join(config.projectRoot, 'dist', 'client', 'cli.js'), 'run', '--landing', landing, ...shards, '--json'], {
      env: { ...process.env, TEMPORAL_ADDRESS: server.address, NETPULSE_TASK_QUEUE: worker.taskQueue, NETPULSE_LANDING_ROOTS: given ? landing : dir, NETPULSE_LOG_LEVEL: 'WARN' },
      encoding: 'utf8', maxBuffer: 64 * 2 ** 20,
    });
    const wallSeconds = (Date.now() - t) / 1000;
    await stopWorker(worker);
    if (cli.status !== 0) throw new Error(`netpulse run failed (exit ${cli.status}): ${cli.stderr}`);
    const pass = JSON.parse(cli.stdout) as PipelinePass;
    const bronzeSeconds = (Math.max(...pass.bronze.map((b) => Date.parse(b.finishedAt))) - Math.min(...pass.bronze.map((b) => Date.parse(b.startedAt)))) / 1000;
    const tenths = await silverBatchTenths(lake);
    if (given) rows = pass.bronze.reduce((n, b) => n + b.rows, 0);
    // What silver holds at the end, to set beside bench/silver-limit.ts's tables.
    const [[events, quarantined, devices]] = await withLake(lake, async (db) => (await db.runAndReadAll(`
      SELECT (SELECT count(*) FROM silver.events), (SELECT count(*) FROM silver.quarantine), (SELECT count(*) FROM silver.device_state)`)).getRows());
    const tables = { events: Number(events), quarantined: Number(quarantined), devices: Number(devices) };
    const result = {
      size, ...spec, shape, extras, rows, cliWallSeconds: wallSeconds, passSeconds: seconds(pass),
      bronze: { seconds: bronzeSeconds, rows: pass.bronze.reduce((n, b) => n + b.rows, 0), batches: pass.bronze.reduce((n, b) => n + b.batches, 0) },
      silver: { shards: pass.silverShards?.length ?? 1, seconds: seconds(pass.silver!), events: pass.silver!.rows, quarantined: pass.silver!.quarantined, batches: pass.silver!.batches, details: pass.silver!.details },
      gold: { seconds: seconds(pass.gold!), batches: pass.gold!.batches },
      // The bench's measure: the pipeline's wall time from the end of bronze to the end of the pass (silver, gold, the pass's log row).
      silverGoldSeconds: (Date.parse(pass.finishedAt) - Math.max(...pass.bronze.map((b) => Date.parse(b.finishedAt)))) / 1000,
      silverTenths: tenths, silverTables: tables,
    };
    console.log(JSON.stringify(result, null, 2));
    log(`${size}: bronze ${bronzeSeconds.toFixed(1)} s, silver ${result.silver.seconds.toFixed(1)} s (${result.silver.batches} batches, `
      + `first / last tenth ${tenthsCell(tenths)} ms), gold ${result.gold.seconds.toFixed(1)} s; silver + gold ${result.silverGoldSeconds.toFixed(1)} s `
      + `= ${Math.round(rows / result.silverGoldSeconds).toLocaleString('en')} rows/s over ${rows.toLocaleString('en')} rows`);
  } finally {
    await dropLake(lake).catch(() => undefined);
    await closeLakes();
    await closeAllInstances();
    rmSync(dir, { recursive: true, force: true });
    await catalog.stop();
    server.process.kill('SIGTERM');
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
