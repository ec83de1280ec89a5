// The pipeline as operators drive it: continuous mode with pause/resume/trigger/interval,
// schedules managed by the CLI, the event log. Real dev server, real DuckDB.
import { mkdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { bronzeWorkflowId, DEFAULT_SOURCES, type Source } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import {
  medallionPipeline, pauseSignal, pipelineStatusQuery, resumeSignal, setIntervalUpdate, triggerPassSignal,
} from '../workflows/pipeline';
import { watchLanding } from '../client/watch';
import { cli, cliLake, closeTestResources, sqlRows, tempDir, terminateAll, testClient, testLake, uniqueId, withWorker } from './helpers';

afterAll(closeTestResources);

async function eventually<T>(read: () => Promise<T>, ok: (value: T) => boolean, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('continuous mode takes a file dropped after start within a few passes; pause, resume, trigger and interval work', async () => {
  const dir = tempDir('continuous');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const tag = `c${Math.random().toString(36).slice(2, 6)}`;
  const sources: Source[] = [{ name: `${tag}_celular_conectado`, label: 'Celular Conectado', path: 'Celular/Conectado' }];
  const prefix = `${tag}-`;
  const workflowId = uniqueId('pipeline-continuous');
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue, workflowId, args: [{ sources, landingPath: landing, workflowIdPrefix: prefix, continuous: true, intervalSeconds: 0.5 }],
      });
      const status = () => handle.query(pipelineStatusQuery);
      const first = await eventually(status, (s) => s.totals.passes >= 1, 'a first pass');
      expect(first.totals.bronzeFiles).toBe(0);

      // A file lands after the start: it reaches bronze and silver within a bounded number of passes.
      const passesBefore = (await status()).totals.passes;
      await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 40, scenarios: [DEFAULT_SCENARIOS[1]] });
      const picked = await eventually(status, (s) => s.totals.silverEvents > 0, 'the new file in silver');
      expect(picked.totals).toMatchObject({ bronzeFiles: 1, bronzeRows: 40 });
      expect(picked.totals.silverEvents).toBeGreaterThan(0);
      expect(picked.totals.passes - passesBefore).toBeLessThanOrEqual(3);

      // Pause: no pass starts while paused, whatever the interval.
      await handle.signal(pauseSignal);
      const paused = await eventually(status, (s) => s.paused && !s.running, 'paused');
      await new Promise((r) => setTimeout(r, 2000));
      expect((await status()).totals.passes).toBe(paused.totals.passes);
      // Trigger runs one pass even when paused; resume runs again on the interval.
      await handle.signal(triggerPassSignal);
      await eventually(status, (s) => s.totals.passes === paused.totals.passes + 1 && !s.running, 'a triggered pass');
      await handle.signal(resumeSignal);
      await eventually(status, (s) => !s.paused && s.totals.passes >= paused.totals.passes + 3, 'passes after resume');

      expect(await handle.executeUpdate(setIntervalUpdate, { args: [3600] })).toBe(3600);
      const refused = await handle.executeUpdate(setIntervalUpdate, { args: [-5] }).catch((e: Error) => e);
      expect((refused as Error).cause).toBeDefined();
      expect(((refused as Error).cause as Error).message).toMatch(/interval must be a number of seconds from 0 to 86400/);
      const slow = await eventually(status, (s) => s.intervalSeconds === 3600 && !s.running && s.nextPassAt !== undefined, 'the long interval');
      expect(Date.parse(slow.nextPassAt!) - Date.now()).toBeGreaterThan(3500 * 1000);
      await handle.cancel();
    }, { deps: { lake, landingDir: landing } });

    const log = await sqlRows<{ kind: string; layer: string; n: string }>(
      `SELECT kind, layer, count(*) AS n FROM lake.event_log GROUP BY ALL ORDER BY ALL`, lake);
    expect(log.map((r) => `${r.kind}/${r.layer}`)).toEqual(['batch/bronze', 'batch/gold', 'batch/silver', 'pass/pipeline']);
    const [bronzeBatch] = await sqlRows(`SELECT rows_in, rows_out, rows_quarantined, workflow_id FROM lake.event_log WHERE layer = 'bronze'`, lake);
    expect(bronzeBatch).toEqual({ rows_in: '40', rows_out: '40', rows_quarantined: '0', workflow_id: bronzeWorkflowId(sources[0], prefix) });
  } finally {
    await terminateAll([workflowId, bronzeWorkflowId(sources[0], prefix), `${prefix}silver`, `${prefix}gold`]);
  }
});

test('schedules from the CLI: create, trigger, pause, unpause, describe, delete; bad specs are refused', async () => {
  const { taskQueue, env, deps } = await cliLake('schedule', 4, 10);
  const id = uniqueId('sched');
  const client = await testClient();
  try {
    await withWorker(async () => {
      expect(await cli(['schedule', 'create', id, '--every', 'often'], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/--every: "often"/) });
      expect(await cli(['schedule', 'create', id, '--cron', '* *'], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/needs 5 fields/) });
      expect(await cli(['schedule', 'create', id, '--every', '1h', '--paused', '--note', 'test'], env)).toMatchObject({ code: 0 });

      expect(await cli(['schedule', 'trigger', id], env)).toMatchObject({ code: 0 });
      const described = await eventually(() => client.schedule.getHandle(id).describe(), (d) => d.info.recentActions.length === 1, 'a scheduled run');
      const run = client.workflow.getHandle(described.info.recentActions[0].action.workflow.workflowId);
      const pass = await run.result();
      expect(pass!.bronze.reduce((n: number, b: { files: number }) => n + b.files, 0)).toBe(4);
      expect(pass!.silver).toMatchObject({ rows: 40 });

      expect((await client.schedule.getHandle(id).describe()).state.paused).toBe(true);
      expect(await cli(['schedule', 'unpause', id], env)).toMatchObject({ code: 0 });
      expect((await client.schedule.getHandle(id).describe()).state.paused).toBe(false);
      expect(await cli(['schedule', 'pause', id], env)).toMatchObject({ code: 0 });
      expect((await client.schedule.getHandle(id).describe()).state.paused).toBe(true);
      const describe = await cli(['schedule', 'describe', id], env);
      expect(JSON.parse(describe.stdout)).toMatchObject({ id, paused: true, overlap: 'SKIP', actions: 1 });
      expect((await cli(['schedule', 'list'], env)).stdout).toContain(id);
      expect(await cli(['schedule', 'backfill', id, '--start', '2026-01-02', '--end', '2026-01-01'], env)).toMatchObject({ code: 2 });

      expect(await cli(['schedule', 'delete', id], env)).toMatchObject({ code: 0 });
      expect(await cli(['schedule', 'describe', id], env)).toMatchObject({ code: 1, stderr: expect.stringMatching(`no schedule with id ${id}`) });
    }, { taskQueue, deps });
  } finally {
    await client.schedule.getHandle(id).delete().catch(() => undefined);
    await terminateAll([...DEFAULT_SOURCES.map((s) => bronzeWorkflowId(s)), 'silver', 'gold']);
  }
});

test('the landing watcher runs a pass as soon as files land, though the interval is an hour, with only the bronze sources of the folders where they landed', async () => {
  const dir = tempDir('watch');
  const landing = path.join(dir, 'landing');
  const lake = testLake(dir);
  const tag = `w${Math.random().toString(36).slice(2, 6)}`;
  const sources: Source[] = [
    { name: `${tag}_celular_conectado`, label: 'Celular Conectado', path: 'Celular/Conectado' },
    { name: `${tag}_computador_conectado`, label: 'Computador Conectado', path: 'Computador/Conectado' },
  ];
  const prefix = `${tag}-`;
  const workflowId = uniqueId('pipeline-watched');
  try {
    await withWorker(async ({ client, taskQueue }) => {
      const handle = await client.workflow.start(medallionPipeline, {
        taskQueue, workflowId, args: [{ sources, landingPath: landing, workflowIdPrefix: prefix, continuous: true, intervalSeconds: 3600 }],
      });
      const status = () => handle.query(pipelineStatusQuery);
      await eventually(status, (s) => s.totals.passes >= 1 && !s.running, 'the first pass');
      const watcher = await watchLanding(client, landing, workflowId);
      try {
        // Landed as the generator does: written elsewhere, then renamed into place.
        const [staged] = await writeSyntheticLanding({ root: path.join(dir, 'staged'), files: 1, rowsPerFile: 40, scenarios: [DEFAULT_SCENARIOS[1]] });
        mkdirSync(path.join(landing, 'Celular', 'Conectado'), { recursive: true });
        renameSync(staged, path.join(landing, 'Celular', 'Conectado', path.basename(staged)));
        const watched = await eventually(status, (s) => s.totals.silverEvents > 0 && !s.running, 'the watched file in silver');
        expect(watched.totals).toMatchObject({ bronzeFiles: 1, bronzeRows: 40 });
        expect(watched.lastPass!.bronze.map((b) => b.source)).toEqual([sources[0].name]);
        expect(watcher.triggers()).toBeGreaterThanOrEqual(1);
        expect(Date.parse(watched.nextPassAt!) - Date.now()).toBeGreaterThan(3000 * 1000); // not the interval's doing
      } finally {
        await watcher.close();
      }
      // A malformed trigger (folders not a list) still runs a pass, of every source.
      const before = (await status()).totals.passes;
      await handle.signal(triggerPassSignal, { folders: 'Celular/Conectado' } as never);
      const malformed = await eventually(status, (s) => s.totals.passes > before && !s.running, 'the malformed trigger\'s pass');
      expect(malformed.lastPass!.bronze.map((b) => b.source).sort()).toEqual(sources.map((s) => s.name).sort());
      await handle.cancel();
    }, { deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll([...sources.map((s) => bronzeWorkflowId(s, prefix)), `${prefix}silver`, `${prefix}gold`]);
  }
});
