// Prometheus metrics of the dashboard process, at GET /metrics: each server's load and forecast
// from gold, the throttles by state, and the pipeline's health. A scrape reads the lake once (gold
// at its latest refresh) and sets every gauge from that read. A lake that cannot be read is itself
// a metric, netpulse_lake_readable 0, not a failed scrape: Prometheus alerts on it.
// Labels are server names, states and owner answers only: no client name or address leaves the lake.
import type { DuckDBConnection } from '@duckdb/node-api';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { withLake, type LakeConfig } from '../lake/catalog';
import { tableAtSql } from '../lake/changes';
import { jsonRows, latestGoldRefresh, secondsSince } from '../lake/reads';
import { sqlFile } from '../lake/sql-files';
import { missingTables } from '../lake/tables';
import type { OwnerAnswer, OwnerHealth } from './dashboard';

/** The per-server gauges, by the column of the servers read (serversSql) that sets each. */
const SERVER_GAUGES = {
  utilisation_pct: ['netpulse_server_utilisation_percent', 'Mbps in use as a percentage of the server capacity, at the latest gold refresh'],
  devices_connected: ['netpulse_server_devices_connected', 'Devices connected to the server'],
  mbps_in_use: ['netpulse_server_bandwidth_in_use_mbps', 'Plan Mbps of the devices connected to the server'],
  capacity_mbps: ['netpulse_server_capacity_mbps', 'The server capacity in Mbps'],
  over_capacity: ['netpulse_server_over_capacity', '1 when the server is above 100 % of its capacity now'],
  needs_upgrade: ['netpulse_server_needs_upgrade', '1 when the server stayed above the upgrade threshold over the whole upgrade window'],
  days_until_full: ['netpulse_server_days_until_full', 'Days until 100 % at the server trend (only when gold.capacity_forecast has a forecast, or says full: 0)'],
  trend_pct_per_day: ['netpulse_server_trend_percent_per_day', 'The server utilisation trend in percentage points a day (least squares over the forecast window)'],
  heavy_clients: ['netpulse_server_heavy_clients', 'Connected clients above the heavy-client factor times the server median (a count, never who)'],
} as const;
type ServerColumn = keyof typeof SERVER_GAUGES;

/** Every state a throttle can be in (sql/actions/throttle_audit.sql), each exported even at 0. */
const THROTTLE_STATES = ['proposed', 'approved', 'applied', 'in force', 'lifted', 'withdrawn', 'rejected', 'failed'];
const OWNER_ANSWERS: OwnerAnswer[] = ['answering', 'parked', 'not started', 'not answering'];

/** Each server at one gold snapshot, one row with a column per gauge (NULL: no series). */
function serversSql(version: number): string {
  // DuckDB takes no alias after AT (VERSION => …): each table is a subquery.
  const at = (table: string) => `(SELECT * FROM ${tableAtSql(table, version)})`;
  return `
    SELECT coalesce(l.servidor, '(none)') AS server, l.utilisation_pct::DOUBLE AS utilisation_pct, l.devices_connected::DOUBLE AS devices_connected,
           l.mbps_in_use::DOUBLE AS mbps_in_use, l.capacity_mbps::DOUBLE AS capacity_mbps,
           l.over_capacity_now::INTEGER AS over_capacity, l.needs_upgrade::INTEGER AS needs_upgrade,
           CASE WHEN f.forecast IN ('forecast', 'full') THEN f.days_until_full::DOUBLE END AS days_until_full,
           f.trend_pct_per_day::DOUBLE AS trend_pct_per_day, coalesce(h.heavy_on_server, 0)::DOUBLE AS heavy_clients
    FROM ${at('gold.server_load')} AS l
    LEFT JOIN ${at('gold.capacity_forecast')} AS f USING (servidor)
    LEFT JOIN (SELECT servidor, max(heavy_on_server) AS heavy_on_server FROM ${at('gold.heavy_clients')} GROUP BY servidor) h USING (servidor)
    ORDER BY server`;
}

/** A client's throttle is in the state of its latest audit row (sql/actions/throttles_now.sql); per state, how many and since when the oldest. */
const throttlesSql = () => `
  SELECT state, count(*)::DOUBLE AS throttles, (epoch(current_timestamp) - epoch(min(happened_at)))::DOUBLE AS oldest_seconds
  FROM (${sqlFile('actions', 'throttles_now', {})}) GROUP BY state ORDER BY state`;

interface LakeFigures {
  /** Undefined before gold's first refresh. */
  secondsSinceGold?: number;
  servers: Record<string, unknown>[];
  /** Undefined while actions.throttle_audit does not exist (no throttle ever proposed). */
  throttles?: Record<string, unknown>[];
}

async function readLakeFigures(lake: LakeConfig): Promise<LakeFigures> {
  return withLake(lake, async (db: DuckDBConnection) => {
    const rows = async (sql: string) => jsonRows(await db.runAndReadAll(sql));
    const gold = await latestGoldRefresh(db);
    const throttles = (await missingTables(db, ['actions.throttle_audit'])).length === 0 ? await rows(throttlesSql()) : undefined;
    if (!gold) return { servers: [], throttles };
    return { secondsSinceGold: secondsSince(String(gold.committed_at)), servers: await rows(serversSql(Number(gold.snapshot_id))), throttles };
  }, { readOnly: true });
}

export interface MetricsSources {
  lake: LakeConfig;
  /** The owner workflows' health, when the dashboard has a Temporal client; none: no owner series. */
  owners?: () => Promise<OwnerHealth[]>;
}

/** The registry of netpulse's gauges (its own, not prom-client's global one) and a scrape that fills it. */
export function dashboardMetrics(sources: MetricsSources): { registry: Registry; scrape: () => Promise<string> } {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'netpulse_dashboard_' });
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name, help, labelNames, registers: [registry] });
  const lakeReadable = gauge('netpulse_lake_readable', '1 when this scrape read the lake, 0 when it could not (the reason is in the dashboard log)');
  const goldAge = gauge('netpulse_gold_refresh_age_seconds', 'Seconds since the latest gold refresh committed');
  const servers = Object.fromEntries(Object.entries(SERVER_GAUGES).map(([column, [name, help]]) => [column, gauge(name, help, ['server'])])) as Record<ServerColumn, Gauge>;
  const throttles = gauge('netpulse_throttles', 'Client throttles by current state (the latest audit row of each client, sql/actions/throttles_now.sql)', ['state']);
  const oldestProposal = gauge('netpulse_throttle_oldest_proposal_age_seconds', 'Age of the oldest throttle proposal still waiting for a decision (0: none waiting)');
  const owners = gauge('netpulse_owners', 'Checkpoint owner workflows by how they answered their checkpoint query', ['answer']);
  const lakeGauges = [goldAge, ...Object.values(servers), throttles, oldestProposal];

  function setLakeFigures(figures: LakeFigures): void {
    if (figures.secondsSinceGold !== undefined) goldAge.set(figures.secondsSinceGold);
    for (const row of figures.servers) {
      for (const column of Object.keys(SERVER_GAUGES) as ServerColumn[]) {
        if (row[column] !== null) servers[column].set({ server: String(row.server) }, Number(row[column]));
      }
    }
    if (!figures.throttles) return;
    for (const state of THROTTLE_STATES) throttles.set({ state }, 0);
    for (const row of figures.throttles) throttles.set({ state: String(row.state) }, Number(row.throttles));
    oldestProposal.set(Number(figures.throttles.find((r) => r.state === 'proposed')?.oldest_seconds ?? 0));
  }

  function setOwners(health: OwnerHealth[]): void {
    for (const answer of OWNER_ANSWERS) owners.set({ answer }, health.filter((h) => h.answer === answer).length);
  }

  // The reason the lake cannot be read goes to the log once per change of reason, not once per scrape.
  let lastFailure: string | undefined;
  function sayOnce(error: unknown): undefined {
    const reason = (error as Error).message.split('\n')[0];
    if (reason !== lastFailure) console.error(`metrics: cannot read the lake: ${reason}`);
    lastFailure = reason;
    return undefined;
  }

  async function scrape(): Promise<string> {
    const [figures, health] = await Promise.all([readLakeFigures(sources.lake).catch(sayOnce), sources.owners?.()]);
    // Series of servers or states gone since the last scrape must go too: every gauge starts empty
    // (an unlabelled one keeps a 0 through reset: removed, it is absent until set).
    for (const g of [...lakeGauges, owners]) g.reset();
    for (const g of [goldAge, oldestProposal]) g.remove();
    lakeReadable.set(figures ? 1 : 0);
    if (figures) {
      lastFailure = undefined;
      setLakeFigures(figures);
    }
    if (health) setOwners(health);
    return registry.metrics();
  }

  // Scrapes at the same moment share one read of the lake.
  let inFlight: Promise<string> | undefined;
  return { registry, scrape: () => (inFlight ??= scrape().finally(() => (inFlight = undefined))) };
}

/** GET /metrics on the dashboard's app. */
export function registerMetrics(app: FastifyInstance, sources: MetricsSources): void {
  const metrics = dashboardMetrics(sources);
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.scrape()));
}
