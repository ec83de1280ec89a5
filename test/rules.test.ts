// Silver's rules say the same in SQL (what silver runs) and in zod (what readers check).
import { DuckDBInstance } from '@duckdb/node-api';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { config } from '../config';
import { closeInstance, createInstance, duckdbThreads, threadSettings } from '../lake/duckdb';
import { stagedDevicesMax } from '../activities/gold';
import { SILVER_RULES, silverEventSchema, silverOptionsSchema } from '../rules/silver';

test('ip_private_ipv4: SQL and zod agree on private IPv4 addresses, octets 0-255', async () => {
  const expected: Record<string, boolean> = {
    '10.0.0.1': true, '10.255.255.255': true, '172.16.0.1': true, '172.31.255.255': true, '192.168.0.7': true,
    '192.168.1.010': true, '10.00.000.099': true, '10.0.0.256': false, '10.300.0.1': false, '172.15.0.1': false,
    '172.32.0.1': false, '192.169.0.1': false, '8.8.8.8': false, '10.0.0': false, '10.0.0.1.1': false, '010.0.0.1': false,
    ' 10.0.0.1': false, '10.0.0.1a': false, '10.0.0.1000': false,
  };
  const rule = SILVER_RULES.find((r) => r.name === 'ip_private_ipv4')!.violation(silverOptionsSchema.parse({}));
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  try {
    const values = Object.keys(expected).map((ip) => `('${ip}')`).join(', ');
    const rows = (await db.runAndReadAll(`SELECT ip, NOT (${rule}) AS ok FROM (VALUES ${values}) t(ip)`)).getRowObjectsJson();
    const bySql = Object.fromEntries(rows.map((r) => [String(r.ip), Boolean(r.ok)]));
    const byZod = Object.fromEntries(Object.keys(expected).map((ip) => [ip, silverEventSchema.shape.ip.safeParse(ip).success]));
    expect(bySql).toEqual(expected);
    expect(byZod).toEqual(expected);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
});

test('NETPULSE_GOLD_COPY_MAX_DEVICES: a whole number ≥ 0, else a refresh fails naming the variable', () => {
  const saved = process.env.NETPULSE_GOLD_COPY_MAX_DEVICES;
  try {
    delete process.env.NETPULSE_GOLD_COPY_MAX_DEVICES;
    expect(stagedDevicesMax()).toBe(200_000);
    process.env.NETPULSE_GOLD_COPY_MAX_DEVICES = '0';
    expect(stagedDevicesMax()).toBe(0);
    for (const bad of ['', ' ', '1.5', '-1', '10k', '1e400']) {
      process.env.NETPULSE_GOLD_COPY_MAX_DEVICES = bad;
      expect(() => stagedDevicesMax()).toThrow(expect.objectContaining({
        nonRetryable: true, message: expect.stringContaining(`NETPULSE_GOLD_COPY_MAX_DEVICES: "${bad}" is not a whole number`),
      }));
    }
  } finally {
    if (saved === undefined) delete process.env.NETPULSE_GOLD_COPY_MAX_DEVICES;
    else process.env.NETPULSE_GOLD_COPY_MAX_DEVICES = saved;
  }
});

test('NETPULSE_DUCKDB_THREADS: a whole number ≥ 1 that a DuckDB instance runs with, else a clear error; the worker refuses to start with a bad one', async () => {
  const saved = process.env.NETPULSE_DUCKDB_THREADS;
  try {
    delete process.env.NETPULSE_DUCKDB_THREADS;
    expect(duckdbThreads()).toBeUndefined();
    expect(threadSettings()).toEqual({});
    process.env.NETPULSE_DUCKDB_THREADS = '3';
    expect(threadSettings()).toEqual({ threads: '3' });
    const instance = await createInstance(':memory:', threadSettings());
    const db = await instance.connect();
    expect(Number((await db.runAndReadAll(`SELECT current_setting('threads')`)).getRows()[0][0])).toBe(3);
    db.closeSync();
    closeInstance(instance);
    for (const bad of ['', ' ', '0', '-1', '1.5', 'two', '1e3']) {
      process.env.NETPULSE_DUCKDB_THREADS = bad;
      expect(() => duckdbThreads()).toThrow(`NETPULSE_DUCKDB_THREADS: "${bad}" is not a whole number ≥ 1`);
    }
    const worker = spawnSync(process.execPath, [path.join(config.projectRoot, 'dist', 'worker.js')], {
      env: { ...process.env, NETPULSE_DUCKDB_THREADS: '0', TEMPORAL_ADDRESS: '127.0.0.1:1' }, encoding: 'utf8', timeout: 60_000,
    });
    expect(worker.status).toBe(1);
    expect(worker.stderr).toContain('NETPULSE_DUCKDB_THREADS: "0" is not a whole number ≥ 1');
  } finally {
    if (saved === undefined) delete process.env.NETPULSE_DUCKDB_THREADS;
    else process.env.NETPULSE_DUCKDB_THREADS = saved;
  }
});
