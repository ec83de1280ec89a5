// The device simulator's I/O: rows (faker) → one parquet file per scenario per tick.
import { Context } from '@temporalio/activity';
import { Faker, base, en, pt_BR } from '@faker-js/faker';
import { DuckDBTimestampValue } from '@duckdb/node-api';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { config } from '../config';
import { withConnection, sqlString } from '../lake/duckdb';
import { assertLandingPath, landingFileName } from '../lake/landing';
import { isObjectUrl, joinUrl, useObjectStore } from '../lake/object-store';
import { LANDING_COLUMNS, SPEEDS_MBPS, type Device, type Status } from '../rules/events';
import type { LandingBatch, LandingBatchRequest, LandingFile, Population, Scenario } from '../rules/generator';

const PRIVATE_NETWORKS = ['private-a', 'private-b', 'private-c'] as const;

/** Population mode's plan mix: most clients on mid-range plans, few on the fastest. */
const PLAN_WEIGHTS = [1, 2, 4, 4, 6, 8, 12, 16, 14, 8, 4, 2];
const PLAN_MIX = SPEEDS_MBPS.map((value, i) => ({ value, weight: PLAN_WEIGHTS[i] }));

interface EventRow {
  nome: string;
  endereco: string;
  ip: string;
  atMs: number;
  device: Device;
  speed: number;
  status: Status;
  servidor?: string;
}

interface Client {
  nome: string;
  endereco: string;
  ip: string;
  device: Device;
  speed: number;
  servidor: string;
}

function newFaker(seed: number[]): Faker {
  const faker = new Faker({ locale: [pt_BR, en, base] });
  faker.seed(seed);
  return faker;
}

function fakeAddress(faker: Faker): string {
  return `${faker.location.streetAddress(true)}, ${faker.location.city()} - ${faker.location.state({ abbreviated: true })}, ${faker.location.zipCode()}`;
}

/** The same seed and settings always give the same clients; kept per worker process. */
const populations = new Map<string, Client[]>();
export function buildPopulation(seed: number, population: Population): Client[] {
  const key = JSON.stringify([seed, population]);
  let clients = populations.get(key);
  if (!clients) {
    const faker = newFaker([seed, 0x5e7]);
    const servers = Array.from({ length: population.servers }, (_, i) =>
      `srv-${population.regions[i % population.regions.length]}-${String(Math.floor(i / population.regions.length) + 1).padStart(2, '0')}`);
    clients = Array.from({ length: population.clients }, (_, i) => {
      const n = i + 1; // 10.x.y.z, unique per client, never .0
      return {
        nome: faker.person.fullName(),
        endereco: fakeAddress(faker),
        ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        device: faker.helpers.arrayElement(['Computador', 'Celular'] as const),
        speed: faker.helpers.weightedArrayElement(PLAN_MIX),
        servidor: faker.helpers.arrayElement(servers),
      };
    });
    populations.set(key, clients);
  }
  return clients;
}

function tickInstant(faker: Faker, request: LandingBatchRequest): number {
  // Events of a tick happened during the interval that ends at the tick.
  const spreadMs = Math.round(request.intervalSeconds * 1000);
  return Date.parse(request.tickTime) - (spreadMs > 0 ? faker.number.int({ min: 0, max: spreadMs - 1 }) : 0);
}

/** The source system's simulator: a new random person and IP for every event. */
function randomRows(request: LandingBatchRequest, scenario: Scenario, index: number): EventRow[] {
  const faker = newFaker([request.seed, request.tick, index]);
  return Array.from({ length: scenario.count }, () => ({
    atMs: tickInstant(faker, request),
    nome: faker.person.fullName(),
    endereco: fakeAddress(faker),
    ip: faker.internet.ipv4({ network: faker.helpers.arrayElement(PRIVATE_NETWORKS) }),
    device: scenario.device,
    speed: faker.helpers.arrayElement(SPEEDS_MBPS),
    status: scenario.status,
  }));
}

/**
 * Stable clients: a connect event picks a disconnected client of that device, and the reverse.
 * A client changes state at most once per tick, so its events stay in order in time.
 */
function populationRows(request: LandingBatchRequest, scenario: Scenario, index: number, connected: Uint8Array, touched: Set<number>): EventRow[] {
  const clients = buildPopulation(request.seed, request.population);
  const faker = newFaker([request.seed, request.tick, index]);
  const wantConnected = scenario.status === 'Desconectado';
  const candidates = clients
    .map((client, i) => i)
    .filter((i) => !touched.has(i) && clients[i].device === scenario.device && Boolean(connected[i >> 3] & (1 << (i & 7))) === wantConnected);
  const chosen = faker.helpers.arrayElements(candidates, Math.min(scenario.count, candidates.length));
  return chosen.map((i) => {
    connected[i >> 3] ^= 1 << (i & 7);
    touched.add(i);
    const { servidor, nome, endereco, ip, device, speed } = clients[i];
    return { atMs: tickInstant(faker, request), nome, endereco, ip, device, speed, status: scenario.status, servidor };
  });
}

/**
 * Writes rows as one parquet file atomically: in a folder under a temp name, then renamed; on
 * object storage straight to its key (an object appears whole, when its upload completes).
 */
async function writeParquet(finalPath: string, rows: EventRow[], withServer: boolean): Promise<void> {
  const objectStore = isObjectUrl(finalPath);
  const tempPath = objectStore ? finalPath : path.join(path.dirname(finalPath), `.${path.basename(finalPath)}.${process.pid}.tmp`);
  const columns = [...LANDING_COLUMNS, ...(withServer ? [['Servidor', 'VARCHAR'] as const] : [])];
  await withConnection(':memory:', async (db) => {
    if (objectStore) await useObjectStore(db, 'write');
    await db.run(`CREATE TEMP TABLE landing_rows (${columns.map(([n, t]) => `${n} ${t}`).join(', ')})`);
    const appender = await db.createAppender('landing_rows');
    for (const row of rows) {
      appender.appendVarchar(row.nome);
      appender.appendVarchar(row.endereco);
      appender.appendVarchar(row.ip);
      appender.appendTimestamp(new DuckDBTimestampValue(BigInt(row.atMs) * 1000n));
      appender.appendVarchar(row.device);
      appender.appendBigInt(BigInt(row.speed));
      appender.appendVarchar(row.status);
      if (withServer) appender.appendVarchar(row.servidor ?? '');
      appender.endRow();
    }
    appender.closeSync();
    await db.run(`COPY landing_rows TO ${sqlString(tempPath)} (FORMAT parquet, COMPRESSION zstd)`);
  });
  if (objectStore) return;
  try {
    await rename(tempPath, finalPath);
  } catch (error) {
    await rm(tempPath, { force: true });
    throw error;
  }
}

/** One generator tick: a file per scenario. Idempotent: a retry rewrites the same names with the same rows. */
export async function writeLandingBatch(request: LandingBatchRequest): Promise<LandingBatch> {
  const population = request.mode === 'population';
  const connected = population ? decodeBitmap(request.connected, request.population.clients) : new Uint8Array();
  const touched = new Set<number>();
  const files: LandingFile[] = [];
  for (const [index, scenario] of request.scenarios.entries()) {
    const rows = population ? populationRows(request, scenario, index, connected, touched) : randomRows(request, scenario, index);
    const root = request.landingPath ?? config.landingDir;
    const dir = isObjectUrl(root) ? joinUrl(root, scenario.device, scenario.status) : path.join(root, scenario.device, scenario.status);
    assertLandingPath(dir, config.landingRoots);
    if (!isObjectUrl(dir)) await mkdir(dir, { recursive: true });
    const name = landingFileName(scenario, new Date(Date.parse(request.tickTime)), request.tick);
    const file = isObjectUrl(dir) ? joinUrl(dir, name) : path.join(dir, name);
    if (rows.length > 0) await writeParquet(file, rows, population);
    files.push({ path: file, rows: rows.length, device: scenario.device, status: scenario.status });
    Context.current().heartbeat({ filesDone: files.length, filesTotal: request.scenarios.length });
  }
  return { files: files.filter((f) => f.rows > 0), connected: population ? Buffer.from(connected).toString('base64') : undefined };
}

function decodeBitmap(encoded: string | undefined, clients: number): Uint8Array {
  const bytes = new Uint8Array(Math.ceil(clients / 8));
  if (encoded) bytes.set(Buffer.from(encoded, 'base64').subarray(0, bytes.length));
  return bytes;
}
