// Bronze schemas under odd input: a source's declared types (schema hints) and inference over a
// sample decide a new table's types, never one odd file; a value that does not fit is rescued,
// its neighbours are not; silver reads rescued values like any other; and a lake whose table an
// odd file typed wrongly (as the previous version let happen) recovers with `requeue --silver`.
import { utimesSync } from 'node:fs';
import path from 'node:path';
import { writeSyntheticLanding } from '../bench/landing-maker';
import { withLake, type LakeConfig } from '../lake/catalog';
import { commitBatch } from '../lake/commit';
import { ensureShardTables } from '../lake/silver-layout';
import { withConnection } from '../lake/duckdb';
import { bronzeWorkflowId, type Source } from '../rules/bronze';
import { DEFAULT_SCENARIOS } from '../rules/generator';
import { bronzeAvailableNow } from '../workflows/bronze';
import { medallionPipeline } from '../workflows/pipeline';
import { cli, closeTestResources, lakeEnv, sqlRows, tempDir, terminateAll, testLake, testSources, uniqueId, withWorker } from './helpers';

afterAll(closeTestResources);

const GOOD_FILES = 4;
const ROWS = 25;
const ODD_ROWS = 7;

/** Good files of a source's folder, then a copy of the first whose speed is the text 'rápido', landed before all of them. */
async function landOddFirst(landing: string, scenario: (typeof DEFAULT_SCENARIOS)[number], prefix: string): Promise<string> {
  const good = await writeSyntheticLanding({ root: landing, files: GOOD_FILES, rowsPerFile: ROWS, scenarios: [scenario], prefix, seed: prefix.length });
  const odd = path.join(path.dirname(good[0]), `${prefix}_odd.parquet`);
  await withConnection(':memory:', (db) => db.run(`COPY (SELECT * REPLACE ('rápido' AS Velocidade_de_Conexao)
    FROM read_parquet('${good[0]}') LIMIT ${ODD_ROWS}) TO '${odd}' (FORMAT parquet)`));
  const base = Date.now() / 1000 - 600;
  utimesSync(odd, base, base); // the odd file is the oldest: first in the source's first batch
  good.forEach((file, i) => utimesSync(file, base + 1 + i, base + 1 + i));
  return odd;
}

const speedType = async (lake: LakeConfig, source: Source) => (await sqlRows<{ t: string }>(`SELECT data_type AS t FROM information_schema.columns
  WHERE table_schema = 'bronze' AND table_name = '${source.name}' AND column_name = 'Velocidade_de_Conexao'`, lake))[0]?.t;

/** A case's landing zone, lake, owners' id prefix and the four default sources under its own names. */
function setup(name: string) {
  const dir = tempDir(name);
  const tag = `${name[0]}${Math.random().toString(36).slice(2, 6)}`;
  return { landing: path.join(dir, 'landing'), lake: testLake(dir), workflowIdPrefix: `${tag}-`, sources: testSources(tag) };
}

test('an odd first file never decides a column\'s type: declared types, or the type most sampled files have; only its values are rescued', async () => {
  const { landing, lake, workflowIdPrefix, sources: [declaredAmong, inferredAmong, inferredAlone, declaredAlone] } = setup('odd-first');
  inferredAmong.schemaHints = {};
  inferredAlone.schemaHints = {};
  // [source, files per batch]: the odd file first among four good ones, or alone in the first batch.
  const cases: [Source, number][] = [[declaredAmong, 1000], [inferredAmong, 1000], [inferredAlone, 1], [declaredAlone, 1]];
  for (const [i, [source]] of cases.entries()) await landOddFirst(landing, DEFAULT_SCENARIOS[i], source.name);
  const sources = cases.map(([s]) => s);
  try {
    await withWorker(async ({ client, taskQueue }) => {
      for (const [source, maxFilesPerBatch] of cases) {
        const [pass] = await client.workflow.execute(bronzeAvailableNow, {
          taskQueue, workflowId: uniqueId('bronze'), args: [{ sources: [source], landingPath: landing, workflowIdPrefix, options: { maxFilesPerBatch } }],
        });
        expect(pass).toMatchObject({ files: GOOD_FILES + 1, rows: GOOD_FILES * ROWS + ODD_ROWS, quarantined: 0, batches: maxFilesPerBatch === 1 ? GOOD_FILES + 1 : 1 });
      }
      await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('silver'), args: [{ sources, landingPath: landing, workflowIdPrefix, layers: ['silver'] }] });
    }, { deps: { lake, landingDir: landing } });
    for (const source of sources) {
      expect(await speedType(lake, source)).toBe('BIGINT');
      // Per file: the odd one's speeds rescued ('rápido' kept), every good file typed, nothing rescued there.
      const byFile = await sqlRows<{ odd: boolean; rows: string; typed: string; rescued: string; kept: string }>(`
        SELECT rastreamento_source LIKE '%_odd.parquet' AS odd, count(*) AS rows, count(Velocidade_de_Conexao) AS typed,
               count(_rescued_data) AS rescued, count(*) FILTER (WHERE _rescued_data->>'Velocidade_de_Conexao' = 'rápido') AS kept
        FROM bronze.${source.name} GROUP BY ALL ORDER BY odd`, lake);
      expect(byFile).toEqual([
        { odd: false, rows: String(GOOD_FILES * ROWS), typed: String(GOOD_FILES * ROWS), rescued: '0', kept: '0' },
        { odd: true, rows: String(ODD_ROWS), typed: '0', rescued: String(ODD_ROWS), kept: String(ODD_ROWS) },
      ]);
    }
    // Silver: the odd rows quarantined for their speed, with the value; every good row is an event.
    expect(await sqlRows(`SELECT source_table, rule, count(*)::INTEGER AS n, any_value(raw::JSON->'_rescued_data'->>'Velocidade_de_Conexao') AS speed
      FROM silver.quarantine GROUP BY ALL ORDER BY 1`, lake)).toEqual(sources.map((s) => ({ source_table: `bronze.${s.name}`, rule: 'speed_allowed', n: ODD_ROWS, speed: 'rápido' }))
      .sort((a, b) => a.source_table.localeCompare(b.source_table)));
    expect(await sqlRows('SELECT count(*)::INTEGER AS n FROM silver.events', lake)).toEqual([{ n: sources.length * GOOD_FILES * ROWS }]);
  } finally {
    await terminateAll([...sources.map((s) => bronzeWorkflowId(s, workflowIdPrefix)), `${workflowIdPrefix}silver`]);
  }
});

/**
 * The lake as the previous version left it after the issue's case: the odd file, first, typed the
 * speed VARCHAR; the good files' speeds went to _rescued_data (a BIGINT file into a VARCHAR
 * column was rescued whole); and silver quarantined every row (speed_allowed). Written through the
 * commit protocol, as that version wrote it: a bronze batch, then a silver batch.
 */
async function previousVersionLake(lake: LakeConfig, source: Source, files: string[]): Promise<number> {
  const table = `bronze.${source.name}`;
  return withLake(lake, async (db) => {
    await db.run(`CREATE TABLE ${table} (Nome VARCHAR, Endereco VARCHAR, Ip VARCHAR, Hora_Conexao TIMESTAMP, Dispositivo_de_Acesso VARCHAR,
      Velocidade_de_Conexao VARCHAR, Status_Conexao VARCHAR, rastreamento_source VARCHAR, source VARCHAR, data_arquivo_ingestao TIMESTAMP,
      status BOOLEAN, _rescued_data JSON, _batch_id VARCHAR)`);
    const bronze = await commitBatch(db, { owner: table, batchId: `${table}:0`, batchSeq: 0, operation: 'STREAMING UPDATE', log: { layer: 'bronze', source: table } }, async () => {
      let rows = 0;
      for (const file of files) {
        const odd = file.endsWith('_odd.parquet');
        rows += (await db.run(`INSERT INTO ${table} SELECT Nome, Endereco, Ip, Hora_Conexao, Dispositivo_de_Acesso,
            ${odd ? 'Velocidade_de_Conexao' : 'NULL'}, Status_Conexao, '${file}', '${source.label}', now()::TIMESTAMP, true,
            ${odd ? 'NULL' : `json_object('Velocidade_de_Conexao', Velocidade_de_Conexao, '_file_path', '${file}')`}, '${table}:0'
          FROM read_parquet('${file}')`)).rowsChanged;
        await db.run(`INSERT INTO lake.file_ledger VALUES ('${table}', '${file}', 0, 0, 'ingested', '${table}:0', now())`);
      }
      return { tables: { [table]: { rowsInserted: rows } }, details: { filesIngested: files.length, filesQuarantined: 0, schemaVersion: 1, newColumns: [] } };
    });
    await ensureShardTables(db);
    const rows = bronze.tables[table].rowsInserted!;
    const input = { fromSnapshot: 0, toSnapshot: bronze.snapshot, tables: [table], rows };
    await commitBatch(db, { owner: 'silver', batchId: 'silver:0', batchSeq: 0, operation: 'MERGE', log: { layer: 'silver', source: 'silver.events' } }, async () => {
      const quarantined = (await db.run(`INSERT INTO silver.quarantine SELECT 'speed_allowed', ['speed_allowed', 'no_rescued_data'], to_json(b)::VARCHAR,
        '${table}', b.rastreamento_source, ${bronze.snapshot}, 'silver:0' FROM ${table} b`)).rowsChanged;
      return {
        tables: { 'silver.quarantine': { rowsInserted: quarantined } }, extraInfo: { fromSnapshot: 0, toSnapshot: bronze.snapshot },
        details: {
          rowsIn: rows, quarantined, events: 0, duplicates: 0, devicesChanged: 0, input, hashedFrom: 'all',
          totals: { rowsIn: rows, eventsOut: 0, quarantined, duplicates: 0 },
        },
      };
    });
    return rows;
  });
}

test('a lake whose table an odd first file typed wrongly recovers with `requeue --silver`: the quarantined good rows become events, once', async () => {
  const { landing, lake, workflowIdPrefix, sources: [source] } = setup('recover');
  const odd = await landOddFirst(landing, DEFAULT_SCENARIOS[0], source.name);
  const good = (await sqlRows<{ file: string }>(`SELECT DISTINCT filename AS file FROM read_parquet('${path.dirname(odd)}/*.parquet', filename = true) ORDER BY 1`))
    .map((r) => r.file).filter((f) => f !== odd);
  const bronzeRows = await previousVersionLake(lake, source, [odd, ...good]);
  expect(bronzeRows).toBe(GOOD_FILES * ROWS + ODD_ROWS);
  const input = { sources: [source], landingPath: landing, workflowIdPrefix, layers: ['bronze', 'silver'] as ('bronze' | 'silver')[] };
  const env = { TEMPORAL_ADDRESS: process.env.TEMPORAL_ADDRESS!, ...lakeEnv(lake) };
  const owner = `${workflowIdPrefix}silver`;
  const quarantine = () => sqlRows(`SELECT rule, count(*)::INTEGER AS n FROM silver.quarantine GROUP BY 1`, lake);
  const events = async () => (await sqlRows<{ n: number }>('SELECT count(*)::INTEGER AS n FROM silver.events', lake))[0].n;
  try {
    await withWorker(async ({ client, taskQueue }) => {
      // Today's version over that lake: the owners resume from its checkpoints, nothing new to read.
      const first = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('resume'), args: [input] }))!;
      expect(first.silver).toMatchObject({ batches: 0 });
      expect(await quarantine()).toEqual([{ rule: 'speed_allowed', n: bronzeRows }]);

      const bad = await cli(['requeue', '--silver', '--rule', 'Speed; DROP', '--owner', owner], env);
      expect(bad).toMatchObject({ code: 2, stderr: expect.stringMatching(/rule: a rule name/) });
      const requeued = await cli(['requeue', '--silver', '--source', `bronze.${source.name}`, '--rule', 'speed_allowed', '--owner', owner], env);
      expect(requeued).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^${bronzeRows} quarantined rows read again by silver \\(1 batch\\): ${GOOD_FILES * ROWS} events, ${ODD_ROWS} quarantined again, 0 duplicates`)) });
      expect(await events()).toBe(GOOD_FILES * ROWS);
      expect(await quarantine()).toEqual([{ rule: 'speed_allowed', n: ODD_ROWS }]);
      // The silver owner's totals still add up: every bronze row is an event, quarantined or a duplicate, once.
      const state = await client.workflow.getHandle(owner).query<{ rowsIn: number; eventsOut: number; quarantined: number; duplicates: number }>('checkpoint');
      expect(state).toMatchObject({ rowsIn: bronzeRows, eventsOut: GOOD_FILES * ROWS, quarantined: ODD_ROWS, duplicates: 0 });
      // Requeued again, the odd rows stay quarantined and no event is written twice.
      expect(await cli(['requeue', '--silver', '--owner', owner], env)).toMatchObject({ code: 0, stdout: expect.stringMatching(new RegExp(`^${ODD_ROWS} quarantined rows read again by silver \\(1 batch\\): 0 events, ${ODD_ROWS} quarantined again`)) });
      expect(await events()).toBe(GOOD_FILES * ROWS);

      // A later good file goes into the VARCHAR column as text, typed by silver: nothing rescued, nothing lost.
      const [later] = await writeSyntheticLanding({ root: landing, files: 1, rowsPerFile: 30, scenarios: [DEFAULT_SCENARIOS[0]], prefix: `${source.name}_later`, seed: 99 });
      const pass = (await client.workflow.execute(medallionPipeline, { taskQueue, workflowId: uniqueId('later'), args: [input] }))!;
      expect(pass.bronze[0]).toMatchObject({ files: 1, rows: 30 });
      expect(await sqlRows(`SELECT count(Velocidade_de_Conexao)::INTEGER AS typed, count(_rescued_data)::INTEGER AS rescued FROM bronze.${source.name}
        WHERE rastreamento_source = '${later}'`, lake)).toEqual([{ typed: 30, rescued: 0 }]);
      expect(await events()).toBe(GOOD_FILES * ROWS + 30);
    }, { deps: { lake, landingDir: landing } });
  } finally {
    await terminateAll([bronzeWorkflowId(source, workflowIdPrefix), owner]);
  }
});
