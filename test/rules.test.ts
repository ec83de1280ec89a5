// Silver's rules say the same in SQL (what silver runs) and in zod (what readers check).
import { DuckDBInstance } from '@duckdb/node-api';
import { deviceIdSql, SILVER_RULES, silverEventSchema, silverOptionsSchema } from '../rules/silver';

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

test('deviceIdSql: distinct accepted (ip, device) pairs get distinct ids, leading zeros included', async () => {
  const rule = SILVER_RULES.find((r) => r.name === 'ip_private_ipv4')!.violation(silverOptionsSchema.parse({}));
  const instance = await DuckDBInstance.create(':memory:');
  const db = await instance.connect();
  try {
    // Every spelling of octets 0-255 the rule accepts (0, 00, 000, 7, 07, 007, 42, 042, 255 …) in
    // each position, with both devices: ids are distinct exactly when (ip, device) is.
    const [{ pairs, ids }] = (await db.runAndReadAll(`
      WITH spellings AS (
        SELECT DISTINCT o FROM (SELECT i::VARCHAR AS o FROM range(256) r(i) UNION ALL SELECT lpad(i::VARCHAR, 2, '0') FROM range(100) r(i)
                               UNION ALL SELECT lpad(i::VARCHAR, 3, '0') FROM range(256) r(i))),
      ips AS (
        SELECT '10.' || a.o || '.' || b.o || '.' || c.o AS ip FROM spellings a, spellings b, (VALUES ('1'), ('01'), ('255')) c(o)
        UNION ALL SELECT '192.168.' || a.o || '.' || b.o FROM spellings a, spellings b
        UNION ALL SELECT '172.16.0.' || o FROM spellings),
      accepted AS (SELECT ip, d AS dispositivo FROM ips, (VALUES ('Computador'), ('Celular')) v(d) WHERE NOT (${rule}))
      SELECT count(*) AS pairs, count(DISTINCT ${deviceIdSql('ip', 'dispositivo')}) AS ids FROM accepted`)).getRowObjectsJson();
    expect(Number(pairs)).toBeGreaterThan(1_000_000);
    expect(ids).toEqual(pairs);
  } finally {
    db.closeSync();
    instance.closeSync();
  }
});
