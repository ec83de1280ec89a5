// Where bronze time goes: runs plan + ingest for one source outside Temporal (in
// @temporalio/testing's MockActivityEnvironment) and times every DuckDB statement.
//
//   node dist/bench/profile.js [--files 500] [--rows 500] [--sources 1] [--concurrency <sources>] [--silver-batches 0]
//                              [--shuffle-hours 0] [--devices 0] [--ledger-rows 0] [--gold] [--micro 0] [--keep]
//                              [--max-rows 250000] [--silver-max-rows 250000]
//
// --max-rows / --silver-max-rows: the bronze / silver batch's row budget.
// --ledger-rows N: the ledger already holds N ingested files of each of the four sources (as after landing
// retention archived them), so the first plan shows what listing + the ledger anti-join cost then.
// --gold: after silver, one gold refresh over all of it, with its statements' times.
// --micro N: afterwards, N continuous-style rounds of one 250-row file through bronze, silver and
// gold (what one pass of the continuous pipeline does), timed after three warm-up rounds;
// --maintain-every K runs the maintenance activity every K rounds.
import { MockActivityEnvironment } from '@temporalio/testing';
import { DuckDBConnection } from '@duckdb/node-api';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bronzeActivities } from '../activities/bronze';
import { silverActivities } from '../activities/silver';
import { silverOptionsSchema, type SilverInput } from '../rules/silver';
import { goldActivities } from '../activities/gold';
import { maintenanceActivities } from '../activities/maintenance';
import type { MaintenanceReport } from '../rules/maintenance';
import { goldOptionsSchema } from '../rules/gold';
import type { LakeConfig } from '../lake/catalog';
import { closeLakes, withLake } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { sqlString } from '../lake/duckdb';
import { closeAllInstances } from '../lake/duckdb';
import { startDevCatalog } from '../scripts/dev-catalog';
import { DEFAULT_SOURCES, ingestOptionsSchema, type PlanResult } from '../rules/bronze';
import { writeSyntheticLanding } from './landing-maker';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name}: expected a whole number ≥ 0, got "${process.argv[i + 1]}"`);
  return value;
};

const timings = new Map<string, { calls: number; ms: number }>();
/** Times every statement: runAndReadAll and friends go through run. */
function timeStatements() {
  const original = DuckDBConnection.prototype.run as (...a: unknown[]) => Promise<unknown>;
  (DuckDBConnection.prototype as unknown as Record<string, unknown>).run = async function (this: unknown, sql: string, ...rest: unknown[]) {
    const key = sql.replace(/\s+/g, ' ').trim().slice(0, 70);
    const t = performance.now();
    try {
      return await original.call(this, sql, ...rest);
    } finally {
      const entry = timings.get(key) ?? { calls: 0, ms: 0 };
      entry.calls++;
      entry.ms += performance.now() - t;
      timings.set(key, entry);
    }
  };
}

function printTimings() {
  for (const [sql, t] of [...timings].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
    console.log(`${t.ms.toFixed(0).padStart(7)} ms ${String(t.calls).padStart(5)}×  ${sql}`);
  }
  timings.clear();
}

async function main() {
  const files = arg('files', 500);
  const rows = arg('rows', 500);
  const sourceCount = arg('sources', 1);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'netpulse-profile-'));
  const landing = path.join(dir, 'landing');
  const sources = DEFAULT_SOURCES.slice(0, sourceCount);
  await writeSyntheticLanding({ root: landing, files: files * sourceCount, rowsPerFile: rows, shuffleHours: arg('shuffle-hours', 0), devices: arg('devices', 0), scenarios: sources.map((s) => {
    const [device, status] = s.path.split('/');
    return { device, status } as never;
  }) });
  await closeAllInstances();
  timeStatements();
  const devCatalog = process.env.NETPULSE_CATALOG ? undefined : await startDevCatalog();
  const lake = { catalog: process.env.NETPULSE_CATALOG ?? devCatalog!.connection, catalogSchema: `profile_${process.pid}`, dataPath: path.join(dir, 'lake') };
  const activities = bronzeActivities({ lake, landingDir: landing, landingRoots: [landing] });
  const env = new MockActivityEnvironment();
  const options = ingestOptionsSchema.parse({ maxFilesPerBatch: 100_000, maxRowsPerBatch: arg('max-rows', 250_000), maxBytesPerBatch: 2 ** 40 });
  await env.run(activities.readBronzeCheckpoint, sources[0]); // opens the lake, as a worker has
  const ledgerRows = arg('ledger-rows', 0);
  if (ledgerRows > 0) {
    // As continuous operation leaves it: small commits of files named in landing order (older
    // first), later flushed out of the catalog and merged by maintenance.
    const perCommit = ledgerRows > 100_000 ? 10_000 : 1000;
    await withLake(lake, async (db) => {
      for (let from = 0; from < ledgerRows; from += perCommit) {
        await db.run(`INSERT INTO lake.file_ledger SELECT 'bronze.' || s.name, ${sqlString(landing)} || '/' || s.path || '/archived_' || lpad(i::VARCHAR, 9, '0') || '.parquet', 1000, i, 'ingested', 'old', now()
          FROM range(${from}, ${Math.min(ledgerRows, from + perCommit)}) r(i), (VALUES ${DEFAULT_SOURCES.map((src) => `(${sqlString(src.name)}, ${sqlString(src.path)})`).join(', ')}) s(name, path)`);
      }
      await db.run(`CALL ducklake_flush_inlined_data('netpulse', schema_name => 'lake', table_name => 'file_ledger')`);
      await db.run(`CALL ducklake_merge_adjacent_files('netpulse', 'file_ledger', schema => 'lake')`);
      const [[dataFiles]] = (await db.runAndReadAll(`SELECT count(*) FROM ducklake_list_files('netpulse', 'file_ledger', schema => 'lake')`)).getRows();
      console.log(`ledger: ${ledgerRows} files of each of ${DEFAULT_SOURCES.length} sources, in ${dataFiles} data files after maintenance`);
    });
    timings.clear();
    const t = performance.now();
    const plan: PlanResult = await env.run(activities.planBronzeBatch, {
      source: sources[0], maxFiles: options.maxFilesPerBatch, maxBytes: options.maxBytesPerBatch, maxRows: options.maxRowsPerBatch, emptyFileGraceSeconds: 30,
    });
    console.log(`plan with ${ledgerRows} ingested files in the ledger and ${plan.waiting} new: ${(performance.now() - t).toFixed(0)} ms`);
    printTimings();
  }
  timings.clear();
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  const concurrency = arg('concurrency', sources.length);
  const queue = [...sources];
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let source = queue.shift(); source; source = queue.shift()) {
    // availableNow: bounded batches until the source is drained
    for (let seq = 0; ; seq++) {
      let t = performance.now();
      const plan: PlanResult = await env.run(activities.planBronzeBatch, {
        source, maxFiles: options.maxFilesPerBatch, maxBytes: options.maxBytesPerBatch, maxRows: options.maxRowsPerBatch, emptyFileGraceSeconds: 30,
      });
      phases[`${source.name} plan`] = (phases[`${source.name} plan`] ?? 0) + performance.now() - t;
      if (plan.files.length === 0) break;
      t = performance.now();
      await env.run(activities.ingestBronzeBatch, { source, batchId: `${source.name}:${seq}`, batchSeq: seq, files: plan.files });
      phases[`${source.name} ingest`] = (phases[`${source.name} ingest`] ?? 0) + performance.now() - t;
    }
    }
  }));
  const total = performance.now() - t0;
  console.log(`${sourceCount} source(s) × ${files} files × ${rows} rows: ${total.toFixed(0)} ms`);
  for (const [k, v] of Object.entries(phases)) console.log(`  ${k}: ${v.toFixed(0)} ms`);
  printTimings();

  // Silver over what bronze wrote, in the workflow's bounded batches.
  const silverBatches = arg('silver-batches', 0);
  if (silverBatches > 0) {
    const silver = silverActivities({ lake, landingDir: landing });
    let mark = 0;
    const seen = new Map<string, number>();
    const silverStarted = performance.now();
    for (let seq = 0; seq < silverBatches; seq++) {
      const input: SilverInput | undefined = await env.run(silver.planSilverBatch, { bronzeSnapshot: mark, maxRows: arg('silver-max-rows', 250_000) });
      if (!input) break;
      const t = performance.now();
      await env.run(silver.runSilverBatch, { batchId: `silver:${seq}`, batchSeq: seq, input, options: silverOptionsSchema.parse({}) });
      const slowest = [...timings].filter(([sql]) => !seen.has(sql) || timings.get(sql)!.ms > seen.get(sql)!).map(([sql, v]) => [sql, v.ms - (seen.get(sql) ?? 0)] as const)
        .sort((a, b) => b[1] - a[1]).slice(0, 3).map(([sql, ms]) => `${ms.toFixed(0)} ms ${sql.slice(0, 40)}`);
      for (const [sql, v] of timings) seen.set(sql, v.ms);
      console.log(`silver batch ${seq}: ${(performance.now() - t).toFixed(0)} ms, ${input.rows} bronze rows; ${slowest.join(' | ')}`);
      mark = input.toSnapshot;
    }
    console.log(`silver: ${(performance.now() - silverStarted).toFixed(0)} ms`);
    printTimings();
  }
  if (process.argv.includes('--gold')) await goldRefresh({ lake, landing, env });
  const micro = arg('micro', 0);
  if (micro > 0) await microRounds(micro, { lake, landing, env, activities, source: sources[0] });
  await closeLakes();
  await closeAllInstances();
  if (!process.argv.includes('--keep')) await dropLake(lake);
  await devCatalog?.stop();
  if (process.argv.includes('--keep')) console.log(`kept ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}

/** One gold refresh over everything silver holds (what a one-shot pass's gold does). */
async function goldRefresh(ctx: { lake: LakeConfig; landing: string; env: MockActivityEnvironment }) {
  const gold = goldActivities({ lake: ctx.lake, landingDir: ctx.landing });
  timings.clear();
  const t = performance.now();
  const { silverSnapshot }: { silverSnapshot: number } = await ctx.env.run(gold.planGoldBatch);
  await ctx.env.run(gold.refreshGold, { batchId: 'gold:0', batchSeq: 0, silverFromSnapshot: 0, silverToSnapshot: silverSnapshot, asOf: new Date().toISOString(), options: goldOptionsSchema.parse({ refreshIntervalSeconds: 0 }) });
  const sizes = await withLake(ctx.lake, async (db) => (await db.runAndReadAll(
    `SELECT table_name, estimated_size FROM duckdb_tables() WHERE database_name = 'netpulse' AND schema_name IN ('gold', 'silver') ORDER BY 1`)).getRows());
  console.log(`gold refresh over all of silver: ${(performance.now() - t).toFixed(0)} ms; rows: ${sizes.map(([n, r]) => `${n} ${r}`).join(', ')}`);
  printTimings();
}

/** Rounds of one small file through every layer, as the continuous pipeline runs them. */
async function microRounds(rounds: number, ctx: { lake: LakeConfig; landing: string; env: MockActivityEnvironment; activities: ReturnType<typeof bronzeActivities>; source: (typeof DEFAULT_SOURCES)[number] }) {
  const { lake, landing, env, activities, source } = ctx;
  const silver = silverActivities({ lake, landingDir: landing });
  const gold = goldActivities({ lake, landingDir: landing });
  const [device, status] = source.path.split('/');
  const phases: Record<string, number> = {};
  const perRound: Record<string, number[]> = {};
  const time = async <T>(phase: string, round: number, work: () => Promise<T>): Promise<T> => {
    const t = performance.now();
    try {
      return await work();
    } finally {
      if (round >= 3) phases[phase] = (phases[phase] ?? 0) + performance.now() - t;
      if (round >= 3) (perRound[phase] ??= []).push(performance.now() - t);
    }
  };
  let goldFrom = 0;
  const silverCheckpoint: { nextBatchSeq: number; bronzeSnapshot: number } = await env.run(silver.readSilverCheckpoint);
  let silverMark = silverCheckpoint.bronzeSnapshot;
  let seq = silverCheckpoint.nextBatchSeq;
  const bronzeCheckpoint: { nextBatchSeq: number } = await env.run(activities.readBronzeCheckpoint, source);
  const maintainEvery = arg('maintain-every', 0);
  const maintenance = maintenanceActivities({ lake, landingDir: landing });
  for (let round = 0; round < rounds + 3; round++) {
    if (round === 3) timings.clear();
    if (maintainEvery > 0 && round > 3 && (round - 3) % maintainEvery === 0) {
      const t = performance.now();
      const report: MaintenanceReport = await env.run(maintenance.maintainLake, {});
      console.log(`maintenance after round ${round}: ${(performance.now() - t).toFixed(0)} ms, live files ${report.before.liveFiles} -> ${report.after.liveFiles}`);
    }
    await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 250, seed: 1000 + round, prefix: `micro${round}`, scenarios: [{ device, status } as never] });
    await time('bronze', round, async () => {
      const plan: PlanResult = await env.run(activities.planBronzeBatch, { source, maxFiles: 1000, maxBytes: 2 ** 40, maxRows: 250_000, emptyFileGraceSeconds: 0 });
      await env.run(activities.ingestBronzeBatch, { source, batchId: `${source.name}:micro${round}`, batchSeq: bronzeCheckpoint.nextBatchSeq + round, files: plan.files });
    });
    await time('silver', round, async () => {
      const input: SilverInput | undefined = await env.run(silver.planSilverBatch, { bronzeSnapshot: silverMark, maxRows: 250_000 });
      if (!input) return;
      await env.run(silver.runSilverBatch, { batchId: `silver:${seq}`, batchSeq: seq, input, options: silverOptionsSchema.parse({}) });
      seq++;
      silverMark = input.toSnapshot;
    });
    await time('gold', round, async () => {
      const { silverSnapshot }: { silverSnapshot: number } = await env.run(gold.planGoldBatch);
      await env.run(gold.refreshGold, { batchId: `gold:${round}`, batchSeq: round, silverFromSnapshot: goldFrom, silverToSnapshot: silverSnapshot, asOf: new Date().toISOString(), options: goldOptionsSchema.parse({ refreshIntervalSeconds: 0 }) });
      goldFrom = silverSnapshot;
    });
  }
  console.log(`micro: ${rounds} rounds of one 250-row file through bronze, silver, gold; mean per round: ${Object.entries(phases).map(([k, v]) => `${k} ${(v / rounds).toFixed(0)} ms`).join(', ')}`);
  const mean = (v: number[]) => (v.reduce((a, b) => a + b, 0) / Math.max(1, v.length)).toFixed(0);
  const tenth = Math.max(1, Math.floor(rounds / 10));
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]?.toFixed(0);
  console.log(`median per round (the machine's noise moves means): ${Object.entries(perRound).map(([k, v]) => `${k} ${median(v)} ms`).join(', ')}`);
  console.log(`first / last tenth of rounds: ${Object.entries(perRound).map(([k, v]) => `${k} ${mean(v.slice(0, tenth))} / ${mean(v.slice(-tenth))} ms`).join(', ')}`);
  for (const [sql, t] of [...timings].sort((a, b) => b[1].ms - a[1].ms).slice(0, 45)) {
    console.log(`${(t.ms / rounds).toFixed(1).padStart(7)} ms/round ${(t.calls / rounds).toFixed(1).padStart(5)}×  ${sql}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
