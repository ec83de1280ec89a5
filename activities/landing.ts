// The device simulator's I/O: faker rows → one parquet file per scenario per tick.
import { Context } from '@temporalio/activity';
import { Faker, base, en, pt_BR } from '@faker-js/faker';
import { DuckDBTimestampValue } from '@duckdb/node-api';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { config } from '../config';
import { withConnection, sqlString } from '../lake/duckdb';
import { landingFileName } from '../lake/landing';
import { LANDING_COLUMNS, SPEEDS_MBPS } from '../rules/events';
import type { LandingBatchRequest, LandingFile, Scenario } from '../rules/generator';

const PRIVATE_NETWORKS = ['private-a', 'private-b', 'private-c'] as const;

function fakeAddress(faker: Faker): string {
  return `${faker.location.streetAddress(true)}, ${faker.location.city()} - ${faker.location.state({ abbreviated: true })}, ${faker.location.zipCode()}`;
}

/** Writes one parquet file atomically (temp name, then rename). Same seed → same file. */
async function writeScenarioFile(request: LandingBatchRequest, scenario: Scenario, index: number): Promise<LandingFile> {
  const faker = new Faker({ locale: [pt_BR, en, base] });
  faker.seed([request.seed, request.tick, index]);
  const tickMs = Date.parse(request.tickTime);
  const spreadMs = Math.round(request.intervalSeconds * 1000);

  const dir = path.join(request.landingPath ?? config.landingDir, scenario.device, scenario.status);
  await mkdir(dir, { recursive: true });
  const finalPath = path.join(dir, landingFileName(scenario, new Date(tickMs), request.tick));
  const tempPath = path.join(dir, `.${path.basename(finalPath)}.${process.pid}.tmp`);

  await withConnection(':memory:', async (db) => {
    const table = `landing_rows_${process.pid}_${request.tick}_${index}`;
    await db.run(`CREATE TEMP TABLE ${table} (${LANDING_COLUMNS.map(([n, t]) => `${n} ${t}`).join(', ')})`);
    try {
      const appender = await db.createAppender(table);
      for (let i = 0; i < scenario.count; i++) {
        // Events of a tick happened during the interval that ends at the tick.
        const at = tickMs - (spreadMs > 0 ? faker.number.int({ min: 0, max: spreadMs - 1 }) : 0);
        appender.appendVarchar(faker.person.fullName());
        appender.appendVarchar(fakeAddress(faker));
        appender.appendVarchar(faker.internet.ipv4({ network: faker.helpers.arrayElement(PRIVATE_NETWORKS) }));
        appender.appendTimestamp(new DuckDBTimestampValue(BigInt(at) * 1000n));
        appender.appendVarchar(scenario.device);
        appender.appendBigInt(BigInt(faker.helpers.arrayElement(SPEEDS_MBPS)));
        appender.appendVarchar(scenario.status);
        appender.endRow();
      }
      appender.closeSync();
      await db.run(`COPY ${table} TO ${sqlString(tempPath)} (FORMAT parquet, COMPRESSION zstd)`);
    } finally {
      await db.run(`DROP TABLE IF EXISTS ${table}`);
    }
  });
  try {
    await rename(tempPath, finalPath);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
  return { path: finalPath, rows: scenario.count, device: scenario.device, status: scenario.status };
}

/** One generator tick: a file per scenario. Idempotent: a retry rewrites the same names with the same rows. */
export async function writeLandingBatch(request: LandingBatchRequest): Promise<LandingFile[]> {
  const files: LandingFile[] = [];
  for (const [index, scenario] of request.scenarios.entries()) {
    files.push(await writeScenarioFile(request, scenario, index));
    Context.current().heartbeat({ filesDone: files.length, filesTotal: request.scenarios.length });
  }
  return files;
}
