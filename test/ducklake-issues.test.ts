// The DuckLake bugs netpulse carried workarounds for (docs/lake.md, "Known issues"), each
// reproduced directly: plain SQL on the DuckDB and DuckLake this project installs, the test
// PostgreSQL catalog, no netpulse code between, no workaround (test/ducklake-sql.ts). A fixed
// issue's test asserts the right behaviour, so a regression fails it; a still-present one asserts
// the bug and says which workaround stays.
import path from 'node:path';
import { sqlString } from '../lake/duckdb';
import { startDevCatalog } from '../scripts/dev-catalog';
import { DUCKLAKE, type Instance, liveFiles, meta, snapshot, withFreshLake } from './ducklake-sql';
import { closeTestResources } from './helpers';

afterAll(closeTestResources);

test(`issue 1, columns added after inlined rows read as NULL in other processes: fixed on ${DUCKLAKE}`, async () => {
  await withFreshLake('issue1', async (lake, open) => {
    const writer = await open(1000);
    await writer.q('CREATE TABLE t (a INTEGER)');
    await writer.q('INSERT INTO t VALUES (1)');
    // As bronze's schema evolution did: the column and the batch that brings it in one transaction.
    await writer.q('BEGIN');
    await writer.q('ALTER TABLE t ADD COLUMN b VARCHAR');
    await writer.q(`INSERT INTO t VALUES (2, 'x'), (3, 'y')`);
    await writer.q('COMMIT');
    await writer.q(`INSERT INTO t VALUES (4, 'z')`);
    expect(await liveFiles(lake, writer)).toBe(0); // every row inlined in the catalog
    // A later schema change elsewhere in the lake, by another process.
    const other = await open(1000);
    await other.q('CREATE TABLE u (x INTEGER)');
    await other.q('ALTER TABLE u ADD COLUMN y INTEGER');
    // A fresh process reads the column (1.4.4: NULL), and its flush writes the values to Parquet.
    const fresh = await open(1000);
    expect(await fresh.q('SELECT count(b) AS n FROM t')).toEqual([{ n: '3' }]);
    await fresh.q(`CALL ducklake_flush_inlined_data('lk')`);
    const reader = await open();
    expect(await reader.q('SELECT a, b FROM t ORDER BY a')).toEqual([{ a: 1, b: null }, { a: 2, b: 'x' }, { a: 3, b: 'y' }, { a: 4, b: 'z' }]);
    expect(await liveFiles(lake, reader)).toBeGreaterThan(0);
  });
});

test(`issue 2, a flush of inlined rows drops rows deleted before it and time travel to them: fixed on ${DUCKLAKE}`, async () => {
  await withFreshLake('issue2', async (lake, open) => {
    const writer = await open(1000);
    await writer.q('CREATE TABLE g (k VARCHAR, v INTEGER)');
    await writer.q(`INSERT INTO g VALUES ('a', 1), ('b', 2), ('c', 3)`);
    const inserted = await snapshot(writer);
    await writer.q(`DELETE FROM g WHERE k = 'b'`);
    await writer.q(`UPDATE g SET v = 30 WHERE k = 'c'`);
    const changed = await snapshot(writer);
    await writer.q(`INSERT INTO g VALUES ('d', 4)`);
    const last = await snapshot(writer);
    expect(await liveFiles(lake, writer)).toBe(0);
    const history = async (i: Instance) => ({
      inserted: (await i.q(`SELECT string_agg(k || v, ',' ORDER BY k) AS r FROM g AT (VERSION => ${inserted})`))[0].r,
      changed: (await i.q(`SELECT string_agg(k || v, ',' ORDER BY k) AS r FROM g AT (VERSION => ${changed})`))[0].r,
      now: (await i.q(`SELECT string_agg(k || v, ',' ORDER BY k) AS r FROM g`))[0].r,
      feed: (await i.q(`SELECT string_agg(change_type || ' ' || k || v, ', ' ORDER BY snapshot_id, change_type, k) AS r
        FROM ducklake_table_changes('lk', 'main', 'g', 0, ${last})`))[0].r,
    });
    const expected = {
      inserted: 'a1,b2,c3', changed: 'a1,c30', now: 'a1,c30,d4',
      feed: 'insert a1, insert b2, insert c3, delete b2, update_postimage c30, update_preimage c3, insert d4',
    };
    expect(await history(writer)).toEqual(expected);
    await writer.q(`CALL ducklake_flush_inlined_data('lk')`);
    expect(await liveFiles(lake, writer)).toBeGreaterThan(0);
    expect(await history(await open())).toEqual(expected);
  });
});

test(`issue 3, merging or flushing hides rows from the change feed: fixed on ${DUCKLAKE}`, async () => {
  await withFreshLake('issue3', async (lake, open) => {
    const writer = await open(100);
    await writer.q('CREATE TABLE b (i BIGINT, s VARCHAR)');
    const created = await snapshot(writer);
    // Three commits straight to Parquet, two inlined (below the limit of 100 rows), as bronze's batches.
    for (const [from, rows] of [[0, 1500], [1500, 1500], [3000, 60], [3060, 60], [3120, 1500]]) {
      await writer.q(`INSERT INTO b SELECT i, md5(i::VARCHAR) FROM range(${from}, ${from + rows}) r(i)`);
    }
    const last = await snapshot(writer);
    // The whole range and one that starts mid-way, as a downstream reader's next batch does.
    const feed = async (i: Instance) => Promise.all([created + 1, created + 4].map((from) => i.q(`
      SELECT snapshot_id, count(*) AS n, min(i) AS lo FROM ducklake_table_changes('lk', 'main', 'b', ${from}, ${last}) GROUP BY 1 ORDER BY 1`)));
    const before = await feed(writer);
    expect(before.map((range) => range.map((r) => Number(r.n)))).toEqual([[1500, 1500, 60, 60, 1500], [60, 1500]]);
    await writer.q(`CALL ducklake_flush_inlined_data('lk')`);
    expect(await feed(writer)).toEqual(before);
    await writer.q(`CALL ducklake_merge_adjacent_files('lk')`);
    expect(await liveFiles(lake, writer)).toBe(1); // four files merged into one
    expect(await feed(await open())).toEqual(before);
  });
});

test(`issue 4, concurrent CREATE TABLEs fail each other's commit: fixed on ${DUCKLAKE} (DuckLake writes the commit again itself)`, async () => {
  await withFreshLake('issue4', async (lake, open) => {
    const owners: Instance[] = [];
    for (let i = 0; i < 4; i++) owners.push(await open(1000)); // one after another: the first attach creates the lake
    // Four owners each create a table of their own and write its first rows, at once, four times.
    const createAll = async (round: string) => (await Promise.allSettled(owners.map(async (owner, i) => {
      await owner.q('BEGIN');
      try {
        await owner.q(`CREATE TABLE t_${round}_${i} (a BIGINT, b VARCHAR)`);
        await owner.q(`INSERT INTO t_${round}_${i} SELECT i, 'x' FROM range(2000) r(i)`);
        await owner.q('COMMIT');
      } catch (error) {
        await owner.q('ROLLBACK').catch(() => undefined);
        throw error;
      }
    }))).flatMap((r) => (r.status === 'rejected' ? [String((r.reason as Error).message).split('\n')[0]] : []));
    const failures: string[] = [];
    for (const round of ['a', 'b', 'c', 'd']) failures.push(...await createAll(round));
    expect(failures).toEqual([]);
    expect(await owners[0].q(`SELECT count(*) AS n FROM information_schema.tables WHERE table_catalog = 'lk' AND starts_with(table_name, 't_')`)).toEqual([{ n: '16' }]);
    // They did race: with DuckLake's own retries off, some commits lose (1.4.4 lost them to "Failed to parse catalog entry").
    for (const owner of owners) await owner.q('SET ducklake_max_retry_count = 0');
    const lost = await createAll('e');
    expect(lost.length).toBeGreaterThan(0);
    for (const message of lost) expect(message).toMatch(/Failed to commit DuckLake transaction/);
    for (const owner of owners) await owner.q('RESET ducklake_max_retry_count');
    // The same table created by two attempts at once still conflicts (one wins): why retryConcurrentCommit stays.
    const same = await Promise.allSettled(owners.map((owner) => owner.q('CREATE TABLE IF NOT EXISTS same (a INTEGER)')));
    expect(same.filter((r) => r.status === 'fulfilled').length).toBeGreaterThanOrEqual(1);
  });
});

test(`issue 5, a merge of files whose row ids are not contiguous writes a row-id column: fixed on ${DUCKLAKE}`, async () => {
  await withFreshLake('issue5', async (lake, open) => {
    const writer = await open(100); // Parquet version 1, DuckLake's default
    await writer.q('CREATE TABLE b (i BIGINT, s VARCHAR, t TIMESTAMP)');
    for (const [from, rows] of [[0, 1500], [1500, 1500], [3000, 60], [3060, 60], [3120, 1500]]) {
      await writer.q(`INSERT INTO b SELECT i, md5(i::VARCHAR), TIMESTAMP '2026-06-01' + to_seconds(i) FROM range(${from}, ${from + rows}) r(i)`);
    }
    await writer.q(`CALL ducklake_flush_inlined_data('lk')`);
    const files = () => writer.q<{ path: string; bytes: string; row_id_start: string }>(`
      SELECT path, file_size_bytes AS bytes, row_id_start FROM ${meta(lake, 'ducklake_data_file')} WHERE end_snapshot IS NULL ORDER BY data_file_id`);
    const replaced = await files();
    // The flushed file's row ids (3,000-3,119) lie between the second and third direct files'.
    expect(replaced.map((f) => Number(f.row_id_start))).toEqual([0, 1500, 3120, 3000]);
    await writer.q(`CALL ducklake_merge_adjacent_files('lk')`);
    const [merged, ...more] = await files();
    expect(more).toEqual([]);
    const columns = (await writer.q<{ name: string }>(`SELECT name FROM parquet_schema(${sqlString(path.join(lake.dataPath, 'main', 'b', merged.path))})`)).map((c) => c.name);
    expect(columns).not.toContain('_ducklake_internal_row_id');
    expect(columns).toEqual(expect.arrayContaining(['i', 's', 't']));
    // Without a row id per row, even Parquet version 1 merges into less than it replaces.
    expect(Number(merged.bytes)).toBeLessThan(replaced.reduce((n, f) => n + Number(f.bytes), 0));
  });
});

test(`issue 6, a catalog connection pool outlives a PostgreSQL restart: fixed on ${DUCKLAKE} (and a stop and start)`, async () => {
  const catalog = await startDevCatalog({ setEnv: false }); // a catalog of this test's own, restarted under it
  try {
    await withFreshLake('issue6', async (lake, open) => {
      const lakeDb = await open(1000);
      await lakeDb.q('CREATE TABLE t (a INTEGER)');
      // Four statements at once on connections of their own: the pool holds several catalog connections.
      const write = async () => {
        const connection = await lakeDb.instance.connect();
        try {
          await connection.run('INSERT INTO lk.t VALUES (1)');
          return 'ok';
        } catch (error) {
          return String((error as Error).message).split('\n')[0];
        } finally {
          connection.closeSync();
        }
      };
      expect(await Promise.all([write(), write(), write(), write()])).toEqual(['ok', 'ok', 'ok', 'ok']);
      catalog.restartImmediately();
      // 1.4.4: each stale pooled connection failed its next statement. Now none does.
      const after: string[] = [];
      for (let i = 0; i < 8; i++) after.push(await write());
      expect(after).toEqual(Array(8).fill('ok'));
      // Stopped, the catalog fails every statement; started again, the same pool serves them all.
      catalog.pause();
      expect(await write()).toMatch(/Unable to connect to Postgres/);
      catalog.resume();
      expect([await write(), await write(), await write(), await write()]).toEqual(['ok', 'ok', 'ok', 'ok']);
      expect(await lakeDb.q('SELECT count(*) AS n FROM t')).toEqual([{ n: '16' }]);
    }, catalog.connection);
  } finally {
    await catalog.stop();
  }
});
