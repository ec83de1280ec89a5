// DuckLake's conflict rules between two concurrent transactions, as they are on the version this
// project installs: what a sharded silver layer (N workers writing one lake) may do at once.
// Plain SQL (test/ducklake-sql.ts): two DuckDB instances attached to one lake, each with its
// transaction open before either works, the first to finish committing first. A conflict fails the
// later COMMIT, and the whole of its transaction: every statement in it is undone.
import { DUCKLAKE, type Instance, meta, snapshot, withFreshLake } from './ducklake-sql';
import { closeTestResources } from './helpers';

afterAll(closeTestResources);

/** Inserts of more rows than this are written to Parquet, of fewer inlined in the catalog. */
const INLINING = 10;
const COMMITTED = 'committed';

interface Lake {
  /** The instance that set the lake up; it reads the results. */
  setup: Instance;
  /**
   * Two transactions open at once, on two other instances: both BEGIN, `first` runs its
   * statements, then `second` its own, then `first` commits, then `second`. Each COMMIT's
   * outcome: COMMITTED or its error message.
   */
  concurrently: (first: string[], second: string[]) => Promise<[string, string]>;
  /** The first value of a query's first row, as a number. */
  count: (sql: string) => Promise<number>;
  /** How many data files (Parquet) `table` reads now. */
  files: (table: string) => Promise<number>;
  /** What a later COMMIT fails with when DuckLake finds a conflict on `table`: `detail` with its table id for TABLE. */
  conflict: (table: string, detail: string) => Promise<string>;
}

/** A fresh lake, `statements` run on it, then `body`; every instance closed and the lake dropped after. */
async function withLake(tag: string, statements: string[], body: (lake: Lake) => Promise<void>) {
  await withFreshLake(tag, async (config, open) => {
    const setup = await open(INLINING);
    for (const sql of statements) await setup.q(sql);
    const [a, b] = [await open(INLINING), await open(INLINING)];
    const commit = (i: Instance) => i.q('COMMIT').then(() => COMMITTED, (error: Error) => error.message);
    const count = async (sql: string) => Number(Object.values((await setup.q(sql))[0])[0]);
    const tableId = (table: string) => count(`SELECT table_id FROM ${meta(config, 'ducklake_table')} WHERE table_name = '${table}' AND end_snapshot IS NULL`);
    await body({
      setup,
      count,
      async concurrently(first, second) {
        await a.q('BEGIN');
        await b.q('BEGIN');
        for (const sql of first) await a.q(sql);
        for (const sql of second) await b.q(sql);
        return [await commit(a), await commit(b)];
      },
      files: async (table) => count(`SELECT count(*) FROM ${meta(config, 'ducklake_data_file')} WHERE table_id = ${await tableId(table)} AND end_snapshot IS NULL`),
      conflict: async (table, detail) => 'TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n'
        + `Transaction conflict - ${detail.replace('TABLE', `table with index "${await tableId(table)}"`)}`,
    });
  });
}

const insert = (table: string, from: number, rows: number) => `INSERT INTO ${table} SELECT i FROM range(${from}, ${from + rows}) r(i)`;
/** Table `name` with two Parquet files of 100 rows each: i in 0-99, then 100-199. */
const twoFiles = (name: string) => [`CREATE TABLE ${name} (i BIGINT)`, insert(name, 0, 100), insert(name, 100, 100)];

describe(`concurrent transactions on ${DUCKLAKE}`, () => {
  it('1. INSERTs into one table: both commit, to Parquet or inlined (DuckLake retries the later commit on the new snapshot)', async () => {
    await withLake('conflicts1', ['CREATE TABLE parquet (i BIGINT)', 'CREATE TABLE inlined (i BIGINT)'], async (lake) => {
      expect(await lake.concurrently([insert('parquet', 0, 100)], [insert('parquet', 100, 100)])).toEqual([COMMITTED, COMMITTED]);
      expect(await lake.count('SELECT count(*) FROM parquet')).toBe(200);
      expect(await lake.files('parquet')).toBe(2);
      expect(await lake.concurrently(['INSERT INTO inlined VALUES (1)'], ['INSERT INTO inlined VALUES (2)'])).toEqual([COMMITTED, COMMITTED]);
      expect(await lake.count('SELECT count(*) FROM inlined')).toBe(2);
      expect(await lake.files('inlined')).toBe(0);
      // It is the retry that lets the later one in: without it, it loses the race for the next snapshot id.
      const noRetry = 'SET ducklake_max_retry_count = 0';
      const [, second] = await lake.concurrently([noRetry, insert('parquet', 200, 100)], [noRetry, insert('parquet', 300, 100)]);
      expect(second).toMatch(/^TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\nExceeded the maximum retry count of 0/);
      expect(second).toMatch(/duplicate key value violates unique constraint "ducklake_snapshot_pkey"/);
      expect(await lake.count('SELECT count(*) FROM parquet')).toBe(300);
    });
  });

  it('2. INSERT into a table and DELETE or UPDATE of rows of it in other files: the later commit fails, whichever it is', async () => {
    await withLake('conflicts2', [...twoFiles('ins_del'), ...twoFiles('del_ins'), ...twoFiles('ins_upd'), ...twoFiles('upd_ins')], async (lake) => {
      // The DELETE and UPDATE touch the first file only; the INSERT writes a file of its own.
      expect(await lake.concurrently([insert('ins_del', 200, 100)], ['DELETE FROM ins_del WHERE i < 50']))
        .toEqual([COMMITTED, await lake.conflict('ins_del', 'attempting to delete from TABLE - but another transaction has inserted into it')]);
      expect(await lake.count('SELECT count(*) FROM ins_del')).toBe(300);
      expect(await lake.concurrently(['DELETE FROM del_ins WHERE i < 50'], [insert('del_ins', 200, 100)]))
        .toEqual([COMMITTED, await lake.conflict('del_ins', 'attempting to insert into TABLE - but another transaction has deleted from it')]);
      expect(await lake.count('SELECT count(*) FROM del_ins')).toBe(150);
      // An UPDATE is a DELETE and an INSERT, and conflicts as the DELETE does.
      expect(await lake.concurrently([insert('ins_upd', 200, 100)], ['UPDATE ins_upd SET i = i + 1000 WHERE i < 50']))
        .toEqual([COMMITTED, await lake.conflict('ins_upd', 'attempting to delete from TABLE - but another transaction has inserted into it')]);
      expect(await lake.count('SELECT count(*) FROM ins_upd WHERE i >= 1000')).toBe(0);
      expect(await lake.concurrently(['UPDATE upd_ins SET i = i + 1000 WHERE i < 50'], [insert('upd_ins', 200, 100)]))
        .toEqual([COMMITTED, await lake.conflict('upd_ins', 'attempting to insert into TABLE - but another transaction has deleted from it')]);
      expect(await lake.count('SELECT count(*) FROM upd_ins')).toBe(200);
    });
  });

  it('3. DELETE or UPDATE in one table and in another at once: both commit', async () => {
    await withLake('conflicts3', [...twoFiles('a'), ...twoFiles('b')], async (lake) => {
      expect(await lake.concurrently(['DELETE FROM a WHERE i < 50'], ['UPDATE b SET i = i + 1000 WHERE i < 50'])).toEqual([COMMITTED, COMMITTED]);
      expect(await lake.concurrently(['UPDATE a SET i = i + 1000 WHERE i >= 150'], ['DELETE FROM b WHERE i BETWEEN 150 AND 199'])).toEqual([COMMITTED, COMMITTED]);
      expect(await lake.setup.q('SELECT (SELECT count(*) FROM a) AS a, (SELECT count(*) FROM a WHERE i >= 1000) AS a_updated, (SELECT count(*) FROM b) AS b, (SELECT count(*) FROM b WHERE i >= 1000) AS b_updated'))
        .toEqual([{ a: '150', a_updated: '50', b: '150', b_updated: '50' }]);
    });
  });

  it('4. INSERTs into a shared event log, each with an UPDATE of a one-row fence of its own: both commit (one fence for both: the later fails)', async () => {
    const tables = ['CREATE TABLE event_log (worker INTEGER, i BIGINT)', 'CREATE TABLE fence_1 (epoch INTEGER)', 'CREATE TABLE fence_2 (epoch INTEGER)',
      'INSERT INTO fence_1 VALUES (0)', 'INSERT INTO fence_2 VALUES (0)'];
    await withLake('conflicts4', tables, async (lake) => {
      const worker = (n: number, fence: string) => [`UPDATE ${fence} SET epoch = epoch + 1`, `INSERT INTO event_log SELECT ${n}, i FROM range(100) r(i)`];
      expect(await lake.concurrently(worker(1, 'fence_1'), worker(2, 'fence_2'))).toEqual([COMMITTED, COMMITTED]);
      const state = 'SELECT (SELECT count(*) FROM event_log) AS log, (SELECT epoch FROM fence_1) AS fence_1, (SELECT epoch FROM fence_2) AS fence_2';
      expect(await lake.setup.q(state)).toEqual([{ log: '200', fence_1: 1, fence_2: 1 }]);
      // Two workers that claim the same fence (a zombie and its successor): the fence keeps the later one's rows out.
      expect(await lake.concurrently(worker(1, 'fence_1'), worker(3, 'fence_1')))
        .toEqual([COMMITTED, await lake.conflict('fence_1', 'attempting to insert into TABLE - but another transaction has deleted inlined data from it')]);
      expect(await lake.setup.q(state)).toEqual([{ log: '300', fence_1: 2, fence_2: 1 }]);
    });
  });

  it('5. INSERT during ducklake_merge_adjacent_files or ducklake_rewrite_data_files: both commit, either order (a DELETE and a compaction: the later fails)', async () => {
    const races = ['insert_merge', 'merge_insert', 'insert_rewrite', 'rewrite_insert', 'merge_delete', 'delete_merge', 'rewrite_delete', 'delete_rewrite'];
    // Each race on a table of its own: three Parquet files (i in 0-99, 100-199, 200-299), 90 rows of the first deleted.
    await withLake('conflicts5', races.flatMap((t) => [...twoFiles(t), insert(t, 200, 100), `DELETE FROM ${t} WHERE i < 90`]), async (lake) => {
      const statements = (t: string) => ({
        insert: insert(t, 300, 100),
        delete: `DELETE FROM ${t} WHERE i >= 250`,
        merge: `CALL ducklake_merge_adjacent_files('lk', '${t}')`,
        rewrite: `CALL ducklake_rewrite_data_files('lk', '${t}', delete_threshold => 0)`,
      });
      const race = async (t: string) => {
        const [first, second] = t.split('_') as (keyof ReturnType<typeof statements>)[];
        const commits = await lake.concurrently([statements(t)[first]], [statements(t)[second]]);
        return { commits, rows: await lake.count(`SELECT count(*) FROM ${t}`), files: await lake.files(t) };
      };
      const both = [COMMITTED, COMMITTED];
      // The merge makes one file of the two without deletes, the rewrite one of the first; the INSERT's file is beside it.
      expect(await race('insert_merge')).toEqual({ commits: both, rows: 310, files: 3 });
      expect(await race('merge_insert')).toEqual({ commits: both, rows: 310, files: 3 });
      expect(await race('insert_rewrite')).toEqual({ commits: both, rows: 310, files: 4 });
      expect(await race('rewrite_insert')).toEqual({ commits: both, rows: 310, files: 4 });
      // A DELETE from the table compacted is another matter.
      const compacted = (t: string) => lake.conflict(t, 'attempting to delete from TABLE - but another transaction has compacted it');
      const deleted = (t: string) => lake.conflict(t, 'attempting to compact TABLE - but another transaction has deleted from it');
      expect(await race('merge_delete')).toEqual({ commits: [COMMITTED, await compacted('merge_delete')], rows: 210, files: 2 });
      expect(await race('delete_merge')).toEqual({ commits: [COMMITTED, await deleted('delete_merge')], rows: 160, files: 3 });
      expect(await race('rewrite_delete')).toEqual({ commits: [COMMITTED, await compacted('rewrite_delete')], rows: 210, files: 3 });
      expect(await race('delete_rewrite')).toEqual({ commits: [COMMITTED, await deleted('delete_rewrite')], rows: 160, files: 3 });
    });
  });

  it('6. a view over a UNION ALL of two tables: it can be created; AT works on each table in a union and on the view itself', async () => {
    await withLake('conflicts6', ['CREATE TABLE a (i INTEGER)', 'CREATE TABLE b (i INTEGER)'], async ({ setup: lake }) => {
      const created = await snapshot(lake);
      await lake.q('CREATE VIEW v AS SELECT i FROM a UNION ALL SELECT i FROM b');
      await lake.q('INSERT INTO a VALUES (1)');
      await lake.q('INSERT INTO b VALUES (10)');
      const both = await snapshot(lake);
      await lake.q('INSERT INTO a VALUES (2)');
      await lake.q('INSERT INTO b VALUES (20)');
      const rows = async (sql: string) => (await lake.q<{ i: number }>(`SELECT i FROM (${sql}) ORDER BY i`)).map((r) => r.i);
      expect(await lake.q(`SELECT table_type FROM information_schema.tables WHERE table_catalog = 'lk' AND table_name = 'v'`)).toEqual([{ table_type: 'VIEW' }]);
      expect(await rows('SELECT * FROM v')).toEqual([1, 2, 10, 20]);
      // Each table at a version of its own, in a query and in a view's definition.
      const mixed = `SELECT i FROM a AT (VERSION => ${both}) UNION ALL SELECT i FROM b`;
      expect(await rows(mixed)).toEqual([1, 10, 20]);
      await lake.q(`CREATE VIEW pinned AS ${mixed}`);
      expect(await rows('SELECT * FROM pinned')).toEqual([1, 10, 20]);
      // AT on the view: its definition and both its tables as they were then; before it existed, an error.
      expect(await rows(`SELECT * FROM v AT (VERSION => ${both})`)).toEqual([1, 10]);
      await expect(lake.q(`SELECT * FROM v AT (VERSION => ${created})`)).rejects.toThrow(`Catalog Error: Table with name v does not exist at version ${created}!`);
    });
  });
});
