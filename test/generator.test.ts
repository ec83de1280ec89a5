// The device simulator against the real Temporal dev server; output read back with DuckDB.
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_SCENARIOS, type GeneratorInput } from '../rules/generator';
import { SPEEDS_MBPS } from '../rules/events';
import { generatorProgressQuery, generatorWorkflow } from '../workflows/generator';
import { closeTestResources, failFirstAttemptAfterWork, testClient, sqlRows, tempDir, uniqueId, withWorker } from './helpers';

afterAll(closeTestResources);

const START = '2026-01-01T12:00:00.000Z';

function parquetGlob(landing: string): string {
  return `read_parquet('${landing}/*/*/*.parquet', filename = true)`;
}

test('writes exactly the configured rows per scenario, with the source schema and value domains', async () => {
  const landing = tempDir('gen');
  const result = await withWorker(({ client, taskQueue }) =>
    client.workflow.execute(generatorWorkflow, {
      taskQueue, workflowId: uniqueId('gen'),
      args: [{ ticks: 2, intervalSeconds: 1, seed: 1, startTime: START, landingPath: landing }],
    }),
  );
  expect(result).toMatchObject({ ticksDone: 2, filesWritten: 8, rowsWritten: 2 * 250 });

  const perScenario = await sqlRows<{ folder: string; files: string; rows: string }>(`
    SELECT regexp_extract(filename, '([^/]+/[^/]+)/[^/]+$', 1) AS folder,
           count(DISTINCT filename) AS files, count(*) AS rows
    FROM ${parquetGlob(landing)} GROUP BY ALL ORDER BY folder`);
  const expected = DEFAULT_SCENARIOS.map((s) => ({ folder: `${s.device}/${s.status}`, files: '2', rows: String(2 * s.count) }))
    .sort((a, b) => a.folder.localeCompare(b.folder));
  expect(perScenario).toEqual(expected);

  const schema = await sqlRows<{ column_name: string; column_type: string }>(
    `DESCRIBE SELECT * EXCLUDE (filename) FROM ${parquetGlob(landing)}`);
  expect(schema.map((c) => `${c.column_name} ${c.column_type}`)).toEqual([
    'Nome VARCHAR', 'Endereco VARCHAR', 'Ip VARCHAR', 'Hora_Conexao TIMESTAMP', 'Dispositivo_de_Acesso VARCHAR',
    'Velocidade_de_Conexao BIGINT', 'Status_Conexao VARCHAR',
  ]);

  // Every rule counted separately, so a failure names the broken domain.
  const [violations] = await sqlRows(`
    WITH r AS (SELECT *, string_split(regexp_extract(filename, '([^/]+/[^/]+)/[^/]+$', 1), '/') AS parts FROM ${parquetGlob(landing)})
    SELECT
      count(*) FILTER (WHERE NOT regexp_full_match(Ip, '(10\\.\\d+|172\\.(1[6-9]|2\\d|3[01])|192\\.168)\\.\\d+\\.\\d+')) AS non_private_ip,
      count(*) FILTER (WHERE Velocidade_de_Conexao NOT IN (${SPEEDS_MBPS.join(',')})) AS bad_speed,
      count(*) FILTER (WHERE Dispositivo_de_Acesso <> parts[1] OR Status_Conexao <> parts[2]) AS wrong_folder,
      count(*) FILTER (WHERE coalesce(trim(Nome), '') = '' OR coalesce(trim(Endereco), '') = '') AS empty_text,
      count(*) FILTER (WHERE Hora_Conexao NOT BETWEEN TIMESTAMP '2026-01-01 11:59:59' AND TIMESTAMP '2026-01-01 12:00:01') AS out_of_window,
      count(DISTINCT Velocidade_de_Conexao) AS distinct_speeds
    FROM r`);
  expect(violations).toEqual({
    non_private_ip: '0', bad_speed: '0', wrong_folder: '0', empty_text: '0', out_of_window: '0',
    distinct_speeds: String(SPEEDS_MBPS.length),
  });
  // No temp files are left behind.
  for (const s of DEFAULT_SCENARIOS) {
    expect(readdirSync(path.join(landing, s.device, s.status)).every((n) => n.endsWith('.parquet') && !n.startsWith('.'))).toBe(true);
  }
});

test('the same seed gives the same rows; another seed gives other rows', async () => {
  const [a, b, c] = [tempDir('seed-a'), tempDir('seed-b'), tempDir('seed-c')];
  const input: GeneratorInput = { ticks: 2, intervalSeconds: 5, startTime: START, scenarios: [{ device: 'Celular', status: 'Conectado', count: 25 }] };
  await withWorker(({ client, taskQueue }) =>
    Promise.all([
      client.workflow.execute(generatorWorkflow, { taskQueue, workflowId: uniqueId('seed'), args: [{ ...input, seed: 42, landingPath: a }] }),
      client.workflow.execute(generatorWorkflow, { taskQueue, workflowId: uniqueId('seed'), args: [{ ...input, seed: 42, landingPath: b }] }),
      client.workflow.execute(generatorWorkflow, { taskQueue, workflowId: uniqueId('seed'), args: [{ ...input, seed: 43, landingPath: c }] }),
    ]),
  );
  const rows = (dir: string) => `SELECT * EXCLUDE (filename), regexp_extract(filename, '[^/]+$') AS file FROM ${parquetGlob(dir)}`;
  const diff = async (x: string, y: string) =>
    Number((await sqlRows<{ n: string }>(`SELECT count(*) AS n FROM ((${rows(x)}) EXCEPT ALL (${rows(y)}))`))[0].n);
  expect((await sqlRows<{ n: string }>(`SELECT count(*) AS n FROM (${rows(a)})`))[0].n).toBe('50');
  expect(await diff(a, b)).toBe(0);
  expect(await diff(b, a)).toBe(0);
  expect(await diff(a, c)).toBe(50);
});

test('bad input fails the workflow at once, non-retryable, naming each bad field', async () => {
  const landing = tempDir('bad');
  const error = await withWorker(({ client, taskQueue }) =>
    client.workflow
      .execute(generatorWorkflow, {
        taskQueue, workflowId: uniqueId('bad'),
        args: [{ landingPath: landing, intervalSeconds: -1, scenarios: [{ device: 'Tablet' as never, status: 'Conectado', count: 5 }] }],
      })
      .then(() => undefined, (e: unknown) => e),
  );
  expect(error).toBeInstanceOf(WorkflowFailedError);
  const cause = (error as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause.nonRetryable).toBe(true);
  expect(cause.type).toBe('InvalidInput');
  expect(cause.message).toMatch(/scenarios\.0\.device: .*Computador.*Celular/);
  expect(cause.message).toMatch(/intervalSeconds: .*>=0/);
  expect(readdirSync(landing)).toEqual([]);
});

test('a failed activity attempt is retried and the output stays exact', async () => {
  const landing = tempDir('retry');
  const workflowId = uniqueId('retry');
  const result = await withWorker(
    ({ client, taskQueue }) =>
      client.workflow.execute(generatorWorkflow, {
        taskQueue, workflowId, args: [{ ticks: 1, seed: 3, startTime: START, landingPath: landing }],
      }),
    { interceptors: failFirstAttemptAfterWork('writeLandingBatch') },
  );
  expect(result.rowsWritten).toBe(250);
  const [{ files, rows }] = await sqlRows<{ files: string; rows: string }>(
    `SELECT count(DISTINCT filename) AS files, count(*) AS rows FROM ${parquetGlob(landing)}`);
  expect({ files, rows }).toEqual({ files: '4', rows: '250' });
  // The retry really happened: the activity completed on its second attempt.
  const history = await (await testClient()).workflow.getHandle(workflowId).fetchHistory();
  const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
  expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([2]);
  expect(JSON.stringify(history.events)).toContain('injected failure after writeLandingBatch');
});

test('progress is visible by query, and long runs continue as new with their totals', async () => {
  const landing = tempDir('can');
  const workflowId = uniqueId('can');
  await withWorker(async ({ client, taskQueue }) => {
    const handle = await client.workflow.start(generatorWorkflow, {
      taskQueue, workflowId,
      args: [{ ticks: 5, ticksPerRun: 2, intervalSeconds: 0.2, seed: 9, landingPath: landing, scenarios: [{ device: 'Computador', status: 'Conectado', count: 3 }] }],
    });
    const seen = await handle.query(generatorProgressQuery);
    expect(seen.running).toBe(true);
    const result = await client.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ ticksDone: 5, filesWritten: 5, rowsWritten: 15, seed: 9 });
    const final = await client.workflow.getHandle(workflowId).describe();
    expect(final.runId).not.toBe(handle.firstExecutionRunId); // continued as new at least once
    expect(await client.workflow.getHandle(workflowId).query(generatorProgressQuery)).toMatchObject({ ticksDone: 5, running: false });
  });
  expect(existsSync(path.join(landing, 'Computador', 'Conectado'))).toBe(true);
  expect(readdirSync(path.join(landing, 'Computador', 'Conectado'))).toHaveLength(5);
});
