// The CLI as a user runs it: a real process, real exit codes, against the real dev server, a
// worker, and the lake on the real PostgreSQL catalog (the CLI attaches it read-only itself).
import { rmSync } from 'node:fs';
import { withLake } from '../lake/catalog';
import { dropLake } from '../lake/admin';
import { DEFAULT_SOURCES, bronzeWorkflowId } from '../rules/bronze';
import { cli, cliIntoSlowReader, cliLake, closeTestResources, lakeEnv, tempDir, terminateAll, testLake, uniqueId, withWorker } from './helpers';

afterAll(closeTestResources);

/** A catalog nobody listens at, for the writer and the reader alike (readers log in as the reader role). */
const closedCatalog = (connection: string) => ({ NETPULSE_CATALOG: connection, NETPULSE_CATALOG_READER: connection });

test('bad CLI input: a clear message naming the field and exit code 2, before contacting anything', async () => {
  const env = { TEMPORAL_ADDRESS: '127.0.0.1:9' }; // nothing listens there: validation must come first
  const cases: [string[], RegExp, Record<string, string>?][] = [
    [['generator', 'start', '--ticks', '0'], /ticks: Too small/],
    [['generator', 'start', '--scenarios', 'Tablet/Conectado=3'], /scenarios\.0\.device/],
    [['generator', 'start', '--mode', 'chaos'], /mode: Invalid option/],
    [['run', '--max-files', '0'], /options\.maxFilesPerBatch/],
    [['run', '--silver-shards', '0'], /silver\.shards: Too small/],
    [['continuous', 'start', '--silver-shards', 'two'], /silver\.shards/],
    [['silver', 'reshard', '--shards', '65'], /--shards: "65" is not a whole number from 1 to 64/],
    [['run'], /NETPULSE_SILVER_SHARDS: "1.5" is not a whole number from 1 to 64/, { NETPULSE_SILVER_SHARDS: '1.5' }],
    [['report', '--as-of', 'last tuesday'], /--as-of: "last tuesday" is neither/],
    [['query', 'select 1', '--format', 'xml'], /--format: "xml"/],
    [['query', ''], /empty query: give one SELECT statement/],
    [['query', ' ;\n-- nothing but a comment\n/* and another */'], /empty query: give one SELECT statement/],
    [['no-such-command'], /unknown command/],
    [['schedule', 'create', 'every-zero', '--every', '0s'], /--every: "0s" is not a positive duration/],
    [['schedule', 'create', 'too-often', '--every', '1s'], /--every 1s: scheduled passes need at least 5s between them .*; give at least --every 5s/],
    [['schedule', 'create', 'too-often', '--every', '4999ms'], /give at least --every 5s/],
    [['run', '--landing', '/no/such/landing'], /--landing: \/no\/such\/landing is not a folder/],
    [['dashboard', '--port', 'http'], /--port: "http" is not a port number/],
  ];
  for (const [args, message, extraEnv] of cases) {
    const result = await cli(args, { ...env, ...extraEnv });
    expect({ args, code: result.code }).toEqual({ args, code: 2 });
    expect(result.stderr).toMatch(message);
  }
  const unreachable = await cli(['run'], env);
  expect(unreachable.code).toBe(1);
  expect(unreachable.stderr).toMatch(/cannot reach Temporal at 127\.0\.0\.1:9/);
});

test('run through the worker; report, query (sandboxed) and status read the lake directly', async () => {
  const { taskQueue, env, deps, landing } = await cliLake('cli', 8, 25);
  try {
    await withWorker(async () => {
      const run = await cli(['run'], env);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/computador_conectado\s+1\s+2\s+50\s+0\s+\d+\.\.\d+/);
      expect(run.stdout).toMatch(/pass finished in/);

      const report = await cli(['report', '--json'], env);
      expect(report.code).toBe(0);
      const parsed = JSON.parse(report.stdout);
      expect(parsed.version).toEqual(expect.any(Number));
      expect(parsed.tables.connections_now.find((r: { dispositivo: string }) => r.dispositivo === 'Total')).toEqual(
        { dispositivo: 'Total', connected: expect.any(Number), disconnected: expect.any(Number), devices: expect.any(Number) }); // counts as numbers, not strings
      const text = await cli(['report', '--as-of', String(parsed.version)], env);
      expect(text.stdout).toMatch(new RegExp(`^gold version ${parsed.version}, committed`));
      // A well-formed --as-of before the first gold refresh finds nothing (1), it is not bad input (2).
      expect(await cli(['report', '--as-of', '1'], env)).toMatchObject({ code: 1, stderr: expect.stringMatching(/no gold refresh at or before snapshot 1/) });
      expect(await cli(['report', '--as-of', '2000-01-01T00:00:00Z'], env))
        .toMatchObject({ code: 1, stderr: expect.stringMatching(/no gold refresh at or before 2000-01-01T00:00:00\.000Z/) });
      expect(text.stdout).toMatch(/Server load and upgrade flags/);

      const csv = await cli(['query', 'SELECT count(*) AS n FROM bronze.celular_conectado', '--format', 'csv'], env);
      expect(csv).toEqual({ code: 0, stdout: 'n\n50\n', stderr: '' });
      const write = await cli(['query', 'DELETE FROM silver.events'], env);
      expect(write.code).toBe(2);
      expect(write.stderr).toMatch(/only SELECT statements are allowed/);
      const broken = await cli(['query', 'SELECT nope FROM silver.events'], env);
      expect(broken.code).toBe(2);
      expect(broken.stderr).toMatch(/Referenced column "nope" not found|nope/);
      // The sandbox: no files outside the lake, no other database, no way to lift the limits.
      for (const escape of ["SELECT * FROM read_text('/etc/passwd')", "SELECT * FROM read_csv('/etc/hostname')"]) {
        expect(await cli(['query', escape], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/disabled|Permission|not allowed/i) });
      }
      expect((await cli(['query', "ATTACH '/tmp/other.duckdb' AS other"], env)).code).toBe(2);
      expect((await cli(['query', 'SET enable_external_access = true'], env)).code).toBe(2);
      // A cut result says so on stderr in every format; stdout stays the rows alone.
      const capped = (format: string) => cli(['query', 'SELECT * FROM range(100)', '--max-rows', '7', '--format', format], env);
      const [json, csvCapped, tableCapped] = [await capped('json'), await capped('csv'), await capped('table')];
      expect([json, csvCapped, tableCapped].map((r) => ({ code: r.code, stderr: r.stderr })))
        .toEqual(Array(3).fill({ code: 0, stderr: expect.stringMatching(/^result truncated to its first 7 rows \(--max-rows 7\)/) }));
      expect(JSON.parse(json.stdout)).toHaveLength(7);
      expect(csvCapped.stdout).toBe(`range\n${[...Array(7).keys()].join('\n')}\n`);
      const byDefault = await cli(['query', 'SELECT * FROM range(10001)', '--format', 'json'], env);
      expect({ rows: JSON.parse(byDefault.stdout).length, stderr: byDefault.stderr })
        .toEqual({ rows: 10000, stderr: expect.stringMatching(/^result truncated to its first 10000 rows \(--max-rows 10000\)/) });
      expect(await cli(['query', 'SELECT * FROM range(7)', '--max-rows', '7', '--format', 'json'], env)).toMatchObject({ code: 0, stderr: '' });
      // Output far larger than a pipe holds reaches a reader that is slow to start, whole.
      const piped = await cliIntoSlowReader(['query', "SELECT range AS n, repeat('x', 100) AS pad FROM range(5000)", '--format', 'json'], env, 1000);
      expect(piped.code).toBe(0);
      expect(JSON.parse(piped.stdout).map((r: { n: number }) => Number(r.n))).toEqual([...Array(5000).keys()]);
      expect(await cli(['query', 'SELECT count(*) FROM range(10000000000) a', '--timeout', '0.5'], env))
        .toMatchObject({ code: 2, stderr: expect.stringMatching(/interrupted after 500 ms/) });

      const status = await cli(['status'], env);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/bronze-celular-conectado\s+2\s+0\s+50\s+\d+\s+1\s+0/);
      expect(status.stdout).toMatch(/silver\s+0\s+silver:0\s+\S+ \S+/); // last commit per owner: silver's batch 0
      expect(status.stdout).toMatch(/Event log \(latest\)/);
      expect(status.stdout).toMatch(/pass\s+pipeline/);
      expect(status.stdout).toMatch(/bronze\s+0\s+0\nsilver\s+0\s+0/); // quarantine of both layers

      // Temporal away: the lake's part still shows, Temporal is named with its address, exit 1.
      const noTemporal = await cli(['status'], { ...env, TEMPORAL_ADDRESS: '127.0.0.1:9' });
      expect(noTemporal.code).toBe(1);
      expect(noTemporal.stdout).toMatch(/^Checkpoints\ncannot reach Temporal at 127\.0\.0\.1:9 .*: checkpoint workflows not queried$/m);
      expect(noTemporal.stdout).toMatch(/silver\s+0\s+silver:0\s+\S+ \S+/);
      expect(noTemporal.stdout).toMatch(/pass\s+pipeline/);
      expect(noTemporal.stderr).toMatch(/^error: cannot reach Temporal at 127\.0\.0\.1:9/m);
      // The catalog away: not "(no rows)" and exit 0, but the catalog named (password hidden) and exit 1.
      const noCatalog = await cli(['status'], { ...env, ...closedCatalog('host=127.0.0.1 port=9 dbname=netpulse user=netpulse password=s3cret-pw') });
      expect(noCatalog.code).toBe(1);
      expect(noCatalog.stdout).toMatch(/bronze-celular-conectado\s+2\s+0\s+50\s+\d+\s+1\s+0/);
      expect(noCatalog.stdout).toMatch(/^Lake\ncannot reach the lake's catalog at host=127\.0\.0\.1 port=9 dbname=netpulse user=netpulse password=\*\*\* \(.*refused.*\): commits, quarantine and event log not read$/m);
      expect(noCatalog.stdout).not.toMatch(/\(no rows\)/);
      expect(noCatalog.stdout + noCatalog.stderr).not.toMatch(/s3cret-pw/);

      // reset asks first; with --yes it stops the checkpoint workflows and empties the lake,
      // and the next run rebuilds everything from the kept landing files.
      expect(await cli(['reset'], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/confirm with --yes/) });
      const reset = await cli(['reset', '--yes', '--keep-landing'], env);
      expect(reset).toMatchObject({ code: 0, stdout: expect.stringMatching(/reset: 6 workflows terminated, lake \S+ emptied \(\d+ tables dropped\)/) });
      expect(await cli(['query', 'SELECT count(*) AS n FROM bronze.celular_conectado', '--format', 'csv'], env))
        .toMatchObject({ code: 2, stderr: expect.stringMatching(/celular_conectado does not exist/) });
      expect((await cli(['run'], env)).code).toBe(0);
      expect(await cli(['query', 'SELECT count(*) AS n FROM silver.events', '--format', 'csv'], env)).toMatchObject({ code: 0, stdout: 'n\n200\n' });

      // A stopped generator says so (its own flag would still say running).
      const gen = ['--id', `gen-${taskQueue}`];
      expect((await cli(['generator', 'start', ...gen, '--interval', '5', '--landing', `${landing}-generated`], env)).code).toBe(0);
      expect((await cli(['generator', 'stop', ...gen], env)).code).toBe(0);
      expect((await cli(['generator', 'status', ...gen, '--brief'], env)).stdout).toMatch(/^\[generator\] cancel/);
    }, { taskQueue, deps });
  } finally {
    await terminateAll([...DEFAULT_SOURCES.map((s) => bronzeWorkflowId(s)), 'silver', 'gold']);
  }
});

test('schedule create --every refuses an interval shorter than the lake\'s recent passes (p95 from the event log), and accepts one as long', async () => {
  const dir = tempDir('schedule');
  const lake = testLake(dir);
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, ...lakeEnv(lake) };
  const id = uniqueId('every');
  try {
    // No lake yet: nothing measured, the floor alone decides.
    expect(await cli(['schedule', 'create', id, '--every', '5s', '--paused'], env)).toMatchObject({ code: 0, stdout: `schedule ${id} created (paused)\n` });
    expect((await cli(['schedule', 'delete', id], env)).code).toBe(0);
    // The last 20 passes: 18 of 4 s and 2 of 12 s (p95 12 s); 5 older ones of 10 minutes no longer count.
    await withLake(lake, (db) => db.run(`INSERT INTO lake.event_log (logged_at, kind, layer, source, duration_ms)
      SELECT now() - to_minutes(i), 'pass', 'pipeline', 'test', CASE WHEN i < 2 THEN 12000 WHEN i < 20 THEN 4000 ELSE 600000 END FROM range(25) t(i)`));
    const refused = await cli(['schedule', 'create', id, '--every', '11s'], env);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--every 11s: a pass on this lake takes 12\.0 s \(p95 of the last 20 passes in lake\.event_log\), and a pass due while one runs is skipped; give at least --every 12s/);
    expect(await cli(['schedule', 'create', id, '--every', '12s', '--paused'], env)).toMatchObject({ code: 0, stdout: `schedule ${id} created (paused)\n` });
    // The catalog away: the interval cannot be checked, and the command says why.
    const noCatalog = await cli(['schedule', 'create', `${id}-2`, '--every', '1m'], { ...env, ...closedCatalog('host=127.0.0.1 port=9 dbname=netpulse user=netpulse') });
    expect(noCatalog.code).toBe(1);
    expect(noCatalog.stderr).toMatch(/cannot reach the lake's catalog at host=127\.0\.0\.1 port=9/);
  } finally {
    await cli(['schedule', 'delete', id], env);
    await dropLake(lake).finally(() => rmSync(dir, { recursive: true, force: true }));
  }
});

test('status before silver\'s first batch: the quarantine tables there are, and no lake error', async () => {
  const dir = tempDir('status-new');
  const lake = testLake(dir);
  try {
    await withLake(lake, async () => undefined); // the bookkeeping tables, as a worker makes them
    // Temporal away, so the only error is Temporal's: a missing silver.quarantine is none.
    const status = await cli(['status'], { TEMPORAL_ADDRESS: '127.0.0.1:9', ...lakeEnv(lake) });
    expect(status.code).toBe(1);
    expect(status.stdout).toMatch(/^Quarantine\nlayer\s+quarantined\s+tables\n-+\s+-+\s+-+\nbronze\s+0\s+0\n\nEvent log/m);
    expect(status.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^error: cannot reach Temporal at 127\.0\.0\.1:9/)]);
  } finally {
    await dropLake(lake).finally(() => rmSync(dir, { recursive: true, force: true }));
  }
});
