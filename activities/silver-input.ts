// What a silver batch reads, as typed rows with the rules each breaks: bronze's change feed in the
// batch's snapshot range, and quarantined rows put back in line (requeue). Fields are read as
// text and typed by silver's own rules whatever type bronze gave them, so a row's answer never
// depends on which file made its bronze table.
import type { DuckDBConnection } from '@duckdb/node-api';
import { describe, insertionsSql } from '../lake/changes';
import { sqlString } from '../lake/duckdb';
import { SILVER_RULES, type RequeueFilter, type SilverInput, type SilverOptions } from '../rules/silver';
import { shardPredicateSql, SINGLE_SHARD } from '../rules/shards';

const INTEGER_TYPES = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT']);

/** Text as a whole number of Mbps, or NULL: '100.5' is not 101 (a plain cast rounds it). */
const wholeNumber = (text: string) => `CASE WHEN regexp_full_match(trim(${text}), '[+]?[0-9]{1,9}') THEN CAST(trim(${text}) AS INTEGER) END`;

/** The source system's fields of one row, as silver's rules read them (raw text, event time, speed). */
function fieldsSql(text: (column: string) => string, hora: string, velocidade: string): string {
  return `${text('Nome')} AS raw_nome, ${text('Endereco')} AS raw_endereco, ${text('Ip')} AS raw_ip,
             ${hora} AS hora_conexao, ${text('Dispositivo_de_Acesso')} AS raw_dispositivo,
             ${velocidade} AS velocidade_mbps, ${text('Status_Conexao')} AS raw_status, ${text('Servidor')} AS raw_servidor`;
}

/**
 * The source system's fields of the rows `b`, whose columns have `types`, as silver's rules read
 * them: as text whatever type the column has, except the event time and speed, taken as they are
 * when already of silver's type (the same values as through text, without formatting and parsing
 * 250k values each: ~60 ms a batch). `rescued(column)`: where a value that did not fit its column
 * is kept as text (bronze's _rescued_data), read like any other text; none for files read as they are.
 */
export function typedFieldsSql(types: Map<string, string>, rescued?: (column: string) => string): string {
  const orRescued = (value: string, column: string, parse: (text: string) => string = (text) => text) =>
    (rescued ? `coalesce(${value}, ${parse(rescued(column))})` : value);
  const text = (column: string) => (types.has(column) ? orRescued(`CAST(b."${column}" AS VARCHAR)`, column) : 'NULL::VARCHAR');
  const hora = types.get('Hora_Conexao') === 'TIMESTAMP'
    ? orRescued('b."Hora_Conexao"', 'Hora_Conexao', (t) => `TRY_CAST(${t} AS TIMESTAMP)`) : `TRY_CAST(${text('Hora_Conexao')} AS TIMESTAMP)`;
  const velocidade = INTEGER_TYPES.has(types.get('Velocidade_de_Conexao') ?? '')
    ? orRescued('TRY_CAST(b."Velocidade_de_Conexao" AS INTEGER)', 'Velocidade_de_Conexao', wholeNumber)
    : wholeNumber(text('Velocidade_de_Conexao'));
  return fieldsSql(text, hora, velocidade);
}

/** Bronze rows inserted in the input range, plus lineage and where the row is. */
async function bronzeFeedSql(db: DuckDBConnection, input: SilverInput): Promise<string[]> {
  const parts: string[] = [];
  for (const table of input.tables) {
    const inserted = insertionsSql(table, input.fromSnapshot, input.toSnapshot);
    // The columns as of the range's end: a column bronze added after it is not in the feed yet.
    const types = new Map(await describe(db, `(${inserted})`));
    parts.push(`
      SELECT ${typedFieldsSql(types, (column) => `(b._rescued_data->>${sqlString(column)})`)},
             b.data_arquivo_ingestao AS file_mtime, b.rastreamento_source AS source_file,
             ${types.has('_row_index') ? 'b._row_index' : 'NULL::BIGINT'} AS file_row,
             ${sqlString(table)} AS source_table, b.snapshot_id AS bronze_snapshot, b.rowid AS bronze_rowid, NULL::VARCHAR AS requeued_raw
      FROM (${inserted}) AS b`);
  }
  return parts;
}

/** The quarantine rows any of the filters selects (every row for an empty filter). */
export function requeueWhereSql(filters: RequeueFilter[]): string {
  return filters.map((f) => `(${[
    'true',
    ...(f.rule ? [`rule = ${sqlString(f.rule)}`] : []),
    ...(f.sourceTable ? [`source_table = ${sqlString(f.sourceTable)}`] : []),
    ...(f.pathContains ? [`contains(source_file, ${sqlString(f.pathContains)})`] : []),
  ].join(' AND ')})`).join(' OR ');
}

/**
 * Requeued quarantine rows (the temp table `requeued`), read from the bronze row each keeps as
 * JSON (`raw`): the same text as from bronze, rescued values included, so they are typed as their
 * first reading would be now.
 */
const REQUEUED_SQL = (() => {
  const text = (column: string) => `coalesce(r.raw::JSON->>${sqlString(column)}, r.raw::JSON->'_rescued_data'->>${sqlString(column)})`;
  return `
      SELECT ${fieldsSql(text, `TRY_CAST(${text('Hora_Conexao')} AS TIMESTAMP)`, wholeNumber(text('Velocidade_de_Conexao')))},
             TRY_CAST(r.raw::JSON->>'data_arquivo_ingestao' AS TIMESTAMP) AS file_mtime, r.source_file,
             TRY_CAST(r.raw::JSON->>'_row_index' AS BIGINT) AS file_row,
             r.source_table, r.bronze_snapshot, NULL::BIGINT AS bronze_rowid, r.raw AS requeued_raw
      FROM requeued r`;
})();

/**
 * Rows of `inputs` (each a SELECT with the columns of the feeds above) typed, with the rules each
 * breaks (SILVER_RULES; late_event reads the variable silver_watermark); only the shard's rows.
 */
export function checkedRowsSql(inputs: string[], options: SilverOptions, shard = SINGLE_SHARD): string {
  const checks = SILVER_RULES.map((r) => `CASE WHEN ${r.violation(options)} THEN '${r.name}' END`).join(',\n        ');
  // The list of broken rules is built only for rows that break one (few): a list per row is costly.
  const anyBroken = SILVER_RULES.map((r) => `(${r.violation(options)})`).join(' OR ');
  return `
    WITH silver_input AS (${inputs.join(' UNION ALL ')}),
    typed AS (
      SELECT nullif(trim(raw_nome), '') AS nome, nullif(trim(raw_endereco), '') AS endereco, trim(raw_ip) AS ip,
             CASE lower(trim(raw_dispositivo)) WHEN 'computador' THEN 'Computador' WHEN 'celular' THEN 'Celular' END AS dispositivo,
             CASE lower(trim(raw_status)) WHEN 'conectado' THEN 'Conectado' WHEN 'desconectado' THEN 'Desconectado' END AS status,
             nullif(trim(raw_servidor), '') AS servidor,
             * EXCLUDE (raw_nome, raw_endereco, raw_ip, raw_dispositivo, raw_status, raw_servidor)
      FROM silver_input)
    SELECT *, CASE WHEN ${anyBroken} THEN list_filter([
        ${checks}], x -> x IS NOT NULL) ELSE []::VARCHAR[] END AS failed_rules
    FROM typed WHERE ${shardPredicateSql(shard)}`;
}

/**
 * The batch's input typed, with the rules each row breaks; read straight from the feed (no staging
 * copy). `withRequeued`: the temp table `requeued` holds quarantine rows to read again. Only the
 * shard's rows: every shard reads the whole bronze range and keeps its devices' rows.
 */
export async function checkedInputSql(db: DuckDBConnection, input: SilverInput, options: SilverOptions, withRequeued: boolean, shard = SINGLE_SHARD): Promise<string> {
  return checkedRowsSql([...(await bronzeFeedSql(db, input)), ...(withRequeued ? [REQUEUED_SQL] : [])], options, shard);
}
