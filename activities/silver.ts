// Silver I/O: bronze change feeds → typed, validated, deduplicated events; quarantine with
// the rule broken; device state upserted by key; data-quality counts. One transaction per batch.
import type { DuckDBConnection } from '@duckdb/node-api';
import { withLake } from '../lake/catalog';
import { changeFeedSql, ensureMutableTable, mergeWithChanges, qualified } from '../lake/changes';
import { commitTables, registerTable } from '../lake/commit';
import { sqlString } from '../lake/duckdb';
import {
  SILVER_RULES, type SilverCheckpoint, type SilverInput, type SilverOptions, type SilverResult,
} from '../rules/silver';
import type { LakeDeps } from './bronze';
import { batchLog, heartbeatEvery } from './context';

export const SILVER_EVENTS = 'silver.events';
export const SILVER_QUARANTINE = 'silver.quarantine';
export const SILVER_DEVICE_STATE = 'silver.device_state';
export const SILVER_DQ = 'silver.dq_counts';
const SILVER_TABLES = [SILVER_EVENTS, SILVER_QUARANTINE, SILVER_DEVICE_STATE, SILVER_DQ];

const SILVER_DDL = `
CREATE SCHEMA IF NOT EXISTS silver;
CREATE TABLE IF NOT EXISTS silver.events (
  event_key VARCHAR NOT NULL, ip VARCHAR NOT NULL, dispositivo VARCHAR NOT NULL, status VARCHAR NOT NULL,
  hora_conexao TIMESTAMP NOT NULL, velocidade_mbps INTEGER NOT NULL, nome VARCHAR NOT NULL, endereco VARCHAR,
  servidor VARCHAR, source_table VARCHAR NOT NULL, source_file VARCHAR, bronze_version BIGINT NOT NULL,
  _batch_id VARCHAR NOT NULL, _commit_version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS silver.quarantine (
  rule VARCHAR NOT NULL, failed_rules VARCHAR[] NOT NULL, raw JSON NOT NULL, source_table VARCHAR NOT NULL,
  source_file VARCHAR, bronze_version BIGINT NOT NULL, _batch_id VARCHAR NOT NULL, _commit_version BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS silver.dq_counts (
  _batch_id VARCHAR NOT NULL, _commit_version BIGINT NOT NULL, check_name VARCHAR NOT NULL, rows BIGINT NOT NULL, checked_at TIMESTAMP NOT NULL);
`;
// No PRIMARY KEY: the upsert keeps one row per (ip, dispositivo), and DuckDB holds a key index
// in memory, which costs more than the table itself with millions of devices.
const DEVICE_STATE_COLUMNS = `ip VARCHAR NOT NULL, dispositivo VARCHAR NOT NULL, nome VARCHAR, endereco VARCHAR, servidor VARCHAR,
  velocidade_mbps INTEGER, status VARCHAR, last_event_at TIMESTAMP, last_event_key VARCHAR`;

async function ensureSilver(db: DuckDBConnection): Promise<void> {
  await db.run(SILVER_DDL);
  for (const table of [SILVER_EVENTS, SILVER_QUARANTINE, SILVER_DQ]) await registerTable(db, table, 'append');
  await ensureMutableTable(db, SILVER_DEVICE_STATE, { columns: DEVICE_STATE_COLUMNS });
}

async function columnsOf(db: DuckDBConnection, table: string): Promise<Set<string>> {
  const [schema, name] = table.split('.');
  const rows = (await db.runAndReadAll(`SELECT column_name FROM information_schema.columns
    WHERE table_schema = ${sqlString(schema)} AND table_name = ${sqlString(name)}`)).getRows();
  return new Set(rows.map((r) => String(r[0])));
}

/** Bronze rows of the input ranges, every field as text, plus lineage and where the row is. */
async function stageInput(db: DuckDBConnection, inputs: SilverInput[]): Promise<void> {
  const parts: string[] = [];
  for (const input of inputs) {
    const present = await columnsOf(db, input.table);
    const text = (column: string) => (present.has(column) ? `CAST(b."${column}" AS VARCHAR)` : 'NULL::VARCHAR');
    parts.push(`
      SELECT ${text('Nome')} AS raw_nome, ${text('Endereco')} AS raw_endereco, ${text('Ip')} AS raw_ip,
             ${text('Hora_Conexao')} AS raw_hora, ${text('Dispositivo_de_Acesso')} AS raw_dispositivo,
             ${text('Velocidade_de_Conexao')} AS raw_velocidade, ${text('Status_Conexao')} AS raw_status,
             ${text('Servidor')} AS raw_servidor, b._rescued_data AS rescued_data,
             b.data_arquivo_ingestao AS file_mtime, b.rastreamento_source AS source_file,
             ${sqlString(input.table)} AS source_table, b._commit_version AS bronze_version, b._rowid AS bronze_rowid
      FROM (${await changeFeedSql(db, input.table, input.fromVersion, input.toVersion)}) AS b`);
  }
  await db.run(`CREATE OR REPLACE TEMP TABLE silver_input AS ${parts.join(' UNION ALL ')}`);
}

function typedAndCheckedSql(options: SilverOptions): string {
  const checks = SILVER_RULES.map((r) => `CASE WHEN ${r.violation(options)} THEN '${r.name}' END`).join(',\n        ');
  return `
    WITH typed AS (
      SELECT nullif(trim(raw_nome), '') AS nome, nullif(trim(raw_endereco), '') AS endereco, trim(raw_ip) AS ip,
             TRY_CAST(raw_hora AS TIMESTAMP) AS hora_conexao,
             CASE lower(trim(raw_dispositivo)) WHEN 'computador' THEN 'Computador' WHEN 'celular' THEN 'Celular' END AS dispositivo,
             CASE lower(trim(raw_status)) WHEN 'conectado' THEN 'Conectado' WHEN 'desconectado' THEN 'Desconectado' END AS status,
             TRY_CAST(trim(raw_velocidade) AS INTEGER) AS velocidade_mbps,
             nullif(trim(raw_servidor), '') AS servidor,
             * EXCLUDE (raw_nome, raw_endereco, raw_ip, raw_hora, raw_dispositivo, raw_status, raw_velocidade, raw_servidor)
      FROM silver_input)
    SELECT *, list_filter([
        ${checks}], x -> x IS NOT NULL) AS failed_rules
    FROM typed`;
}

export function silverActivities(deps: LakeDeps) {
  /**
   * The next silver batch: bronze versions after silver's marks, table by table, as many as fit
   * in `maxRows` rows (at least one version), so a big backlog goes in bounded transactions.
   */
  async function planSilverBatch(request: { bronzeVersions: Record<string, number>; maxRows: number }): Promise<SilverInput[]> {
    return withLake(deps.lakeFile, async (db) => {
      const marks = Object.entries(request.bronzeVersions);
      const rows = (await db.runAndReadAll(`
        WITH marks(table_name, read_to) AS (
          ${marks.length ? `VALUES ${marks.map(([t, v]) => `(${sqlString(t)}, ${v})`).join(', ')}` : 'SELECT NULL::VARCHAR, NULL::BIGINT WHERE false'}),
        pending AS (
          -- one running total over every table's pending versions: the batch is bounded as a whole
          SELECT c.table_name, c.version, coalesce(m.read_to, 0) AS read_to,
                 sum(c.rows_inserted) OVER (ORDER BY c.table_name, c.version) AS rows_so_far,
                 row_number() OVER (ORDER BY c.table_name, c.version) AS n
          FROM lake.commit_log c JOIN lake.tables t USING (table_name)
          LEFT JOIN marks m USING (table_name)
          WHERE t.table_name LIKE 'bronze.%' AND t.kind = 'append' AND c.version > coalesce(m.read_to, 0))
        SELECT table_name, any_value(read_to) AS from_version, max(version) AS to_version FROM pending
        WHERE rows_so_far <= ${request.maxRows} OR n = 1
        GROUP BY table_name ORDER BY table_name`)).getRows();
      return rows.map((r) => ({ table: String(r[0]), fromVersion: Number(r[1]), toVersion: Number(r[2]) }));
    });
  }

  async function runSilverBatch(request: { batchId: string; batchSeq: number; inputs: SilverInput[]; options: SilverOptions }): Promise<SilverResult> {
    const stopHeartbeat = heartbeatEvery(5000, () => ({ phase: 'writing', inputs: request.inputs.length }));
    return withLake(deps.lakeFile, async (db) => {
      await ensureSilver(db);
      const counts = { rowsIn: 0, quarantined: 0, events: 0, duplicates: 0 };
      const commits = await commitTables(db, SILVER_TABLES, { batchId: request.batchId, batchSeq: request.batchSeq, operation: 'MERGE', log: batchLog('silver', SILVER_EVENTS) }, async (v) => {
        await stageInput(db, request.inputs);
        await db.run(`CREATE OR REPLACE TEMP TABLE silver_checked AS ${typedAndCheckedSql(request.options)}`);
        await db.run('DROP TABLE silver_input');
        counts.rowsIn = Number((await db.runAndReadAll('SELECT count(*) FROM silver_checked')).getRows()[0][0]);
        // The raw row (as JSON) is fetched back from bronze only for the rows that failed.
        for (const input of request.inputs) {
          counts.quarantined += (await db.run(`
            INSERT INTO silver.quarantine
            SELECT c.failed_rules[1], c.failed_rules, to_json(b), c.source_table, c.source_file, c.bronze_version, ${sqlString(request.batchId)}, ${v[SILVER_QUARANTINE]}
            FROM silver_checked c JOIN ${qualified(input.table)} b ON b.rowid = c.bronze_rowid
            WHERE c.source_table = ${sqlString(input.table)} AND len(c.failed_rules) > 0`)).rowsChanged;
        }
        // Redelivered events (same device, time and status) are kept once, across batches.
        counts.events = (await db.run(`
          INSERT INTO silver.events
          SELECT * FROM (
            SELECT
              md5(concat_ws('|', ip, dispositivo, strftime(hora_conexao, '%Y-%m-%d %H:%M:%S.%f'), status)) AS event_key,
              ip, dispositivo, status, hora_conexao, velocidade_mbps, nome, endereco, servidor,
              source_table, source_file, bronze_version, ${sqlString(request.batchId)}, ${v[SILVER_EVENTS]}
            FROM silver_checked WHERE len(failed_rules) = 0
            -- first delivery wins; a window per key is 3× cheaper here than DISTINCT ON's full sort
            QUALIFY row_number() OVER (PARTITION BY event_key ORDER BY bronze_version, source_file) = 1) AS n
          -- the key includes hora_conexao: joining on it too lets DuckDB skip row groups by time
          WHERE NOT EXISTS (SELECT 1 FROM silver.events e
                            WHERE e.hora_conexao = n.hora_conexao AND e.event_key = n.event_key AND e._commit_version < ${v[SILVER_EVENTS]})`)).rowsChanged;
        counts.duplicates = counts.rowsIn - counts.quarantined - counts.events;
        // Latest event per device among the new ones; older than the stored state: no change.
        await db.run(`
          CREATE OR REPLACE TEMP TABLE device_updates AS
          SELECT n.* FROM (
            SELECT ip, dispositivo, nome, endereco, servidor, velocidade_mbps, status,
                   hora_conexao AS last_event_at, event_key AS last_event_key
            FROM silver.events WHERE _commit_version = ${v[SILVER_EVENTS]}
            QUALIFY row_number() OVER (PARTITION BY ip, dispositivo ORDER BY hora_conexao DESC, event_key DESC) = 1) AS n
          LEFT JOIN silver.device_state s USING (ip, dispositivo)
          WHERE s.ip IS NULL OR (n.last_event_at, n.last_event_key) > (s.last_event_at, s.last_event_key)`);
        const devices = await mergeWithChanges(db, SILVER_DEVICE_STATE, ['ip', 'dispositivo'], 'device_updates', v[SILVER_DEVICE_STATE]);
        const checks = [
          ['rows_in', counts.rowsIn], ['passed', counts.rowsIn - counts.quarantined], ['quarantined', counts.quarantined],
          ['duplicates', counts.duplicates], ['events_out', counts.events],
        ] as [string, number][];
        await db.run(`
          INSERT INTO silver.dq_counts
          SELECT ${sqlString(request.batchId)}, ${v[SILVER_DQ]}, check_name, rows, now()::TIMESTAMP FROM (
            VALUES ${checks.map(([n, c]) => `(${sqlString(n)}, ${c})`).join(', ')}
            UNION ALL
            SELECT 'rule:' || r.rule, count(c.rule) FROM (VALUES ${SILVER_RULES.map((r) => `(${sqlString(r.name)})`).join(', ')}) r(rule)
            LEFT JOIN (SELECT unnest(failed_rules) AS rule FROM silver_checked) c USING (rule) GROUP BY r.rule
          ) AS d(check_name, rows)`);
        const dqRows = 5 + SILVER_RULES.length;
        for (const t of ['silver_checked', 'device_updates']) await db.run(`DROP TABLE ${t}`);
        return {
          [SILVER_EVENTS]: {
            rowsInserted: counts.events, details: { inputs: request.inputs, ...counts },
            event: { rowsIn: counts.rowsIn, rowsOut: counts.events, quarantined: counts.quarantined },
          },
          [SILVER_QUARANTINE]: { rowsInserted: counts.quarantined },
          [SILVER_DEVICE_STATE]: { rowsInserted: devices.rowsInserted, rowsUpdated: devices.rowsUpdated },
          [SILVER_DQ]: { rowsInserted: dqRows },
        };
      });
      const events = commits[SILVER_EVENTS];
      const d = events.details as typeof counts;
      return {
        batchId: request.batchId, rowsIn: d.rowsIn, events: d.events, quarantined: d.quarantined, duplicates: d.duplicates,
        devicesChanged: commits[SILVER_DEVICE_STATE].rowsInserted + commits[SILVER_DEVICE_STATE].rowsUpdated,
        versions: Object.fromEntries(SILVER_TABLES.map((t) => [t, commits[t].version])),
        alreadyCommitted: events.alreadyCommitted,
      };
    }).finally(stopHeartbeat);
  }

  /** Rebuilds silver's checkpoint from its last commit, for a workflow that starts without one. */
  async function readSilverCheckpoint(): Promise<SilverCheckpoint> {
    return withLake(deps.lakeFile, async (db) => {
      const rows = (await db.runAndReadAll(`
        SELECT batch_seq, version, details FROM lake.commit_log WHERE table_name = ${sqlString(SILVER_EVENTS)} ORDER BY version`)).getRowObjectsJson() as { batch_seq: string; version: string; details: string }[];
      const checkpoint: SilverCheckpoint = { nextBatchSeq: 0, bronzeVersions: {}, eventsVersion: 0, rowsIn: 0, eventsOut: 0, quarantined: 0, duplicates: 0, passes: 0 };
      for (const row of rows) {
        const d = JSON.parse(row.details) as { inputs: SilverInput[]; rowsIn: number; events: number; quarantined: number; duplicates: number };
        for (const input of d.inputs) checkpoint.bronzeVersions[input.table] = input.toVersion;
        checkpoint.nextBatchSeq = Number(row.batch_seq) + 1;
        checkpoint.eventsVersion = Number(row.version);
        checkpoint.rowsIn += d.rowsIn;
        checkpoint.eventsOut += d.events;
        checkpoint.quarantined += d.quarantined;
        checkpoint.duplicates += d.duplicates;
      }
      return checkpoint;
    });
  }

  return { planSilverBatch, runSilverBatch, readSilverCheckpoint };
}
