// The reader sandbox's second wall: a user's SELECT may call only what a reader of the lake needs.
// The first wall is the database's own privileges (the reader role can only SELECT the catalog),
// so this check is what keeps a statement from even trying (postgres_query() on the catalog,
// file readers, lake maintenance). It walks DuckDB's own parse tree (json_serialize_sql), so no
// spelling, quoting, comment or nesting hides a call.

/** Table functions a reader needs: the lake's change feed, time travel and metadata, and generators. */
const READER_TABLE_FUNCTIONS = new Set([
  'ducklake_snapshots', 'ducklake_table_info', 'ducklake_table_changes', 'ducklake_table_insertions', 'ducklake_table_deletions',
  'range', 'generate_series', 'unnest',
  'duckdb_tables', 'duckdb_columns', 'duckdb_schemas', 'duckdb_views', 'duckdb_types', 'duckdb_constraints',
]);

/** Scalar functions that reach past the lake (the catalog's PostgreSQL, files, the environment, extensions). */
const REFUSED_SCALAR = /^(postgres_|ducklake_|read_|pg_read|getenv$|glob$|parquet_|sniff_|query$|query_table$|load_|install_|json_execute)/i;

/** A name DuckDB would read as a file or URL (a replacement scan: FROM 'x.csv'), not a lake table. */
const PLAIN_TABLE_NAME = /^[A-Za-z0-9_$]+$/;

interface Node { [key: string]: unknown }

function* references(node: unknown): Generator<{ kind: 'table function' | 'function' | 'table'; name: string }> {
  if (Array.isArray(node)) {
    for (const child of node) yield* references(child);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const n = node as Node;
  if (n.type === 'TABLE_FUNCTION' && n.function && typeof n.function === 'object') {
    const fn = n.function as Node;
    yield { kind: 'table function', name: String(fn.function_name) };
    for (const [key, value] of Object.entries(n)) if (key !== 'function') yield* references(value);
    for (const value of Object.values(fn)) yield* references(value);
    return;
  }
  if (n.class === 'FUNCTION' && typeof n.function_name === 'string') yield { kind: 'function', name: n.function_name };
  if (n.type === 'BASE_TABLE' && typeof n.table_name === 'string') yield { kind: 'table', name: n.table_name };
  for (const value of Object.values(n)) yield* references(value);
}

/**
 * Why a parsed SELECT (json_serialize_sql's output) is refused to a reader, naming the function or
 * file it reaches for; undefined when it may run.
 */
export function refusalOf(parseTree: unknown): string | undefined {
  for (const ref of references(parseTree)) {
    if (ref.kind === 'table function' && !READER_TABLE_FUNCTIONS.has(ref.name.toLowerCase())) {
      return `${ref.name}() is not allowed in a read-only query: readers may use the lake's tables and ${[...READER_TABLE_FUNCTIONS].filter((f) => f.startsWith('ducklake_')).join(', ')}`;
    }
    if (ref.kind === 'function' && REFUSED_SCALAR.test(ref.name)) {
      return `${ref.name}() is not allowed in a read-only query: it reaches past the lake (its catalog database, files or extensions)`;
    }
    if (ref.kind === 'table' && !PLAIN_TABLE_NAME.test(ref.name)) {
      return `FROM '${ref.name}' is not allowed in a read-only query: it names a file or URL, not a lake table`;
    }
  }
  return undefined;
}
