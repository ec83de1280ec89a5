// Gold settings: thresholds of the business questions, validated with zod.
import { z } from 'zod';

export const goldOptionsSchema = z
  .object({
    highSpeedThresholdMbps: z.number().int().min(1).default(500),
    upgradeUtilisationPct: z.number().min(0).max(1000).default(80),
    upgradeWindowMinutes: z.number().int().min(1).max(10_080).default(10),
    upgradeMinSamples: z.number().int().min(1).default(3),
    heavyClientFactor: z.number().min(1).default(3),
    /** Heavy clients listed per server, heaviest first (heavy_on_server counts them all). */
    heavyClientsPerServer: z.number().int().min(1).max(10_000).default(50),
    defaultServerCapacityMbps: z.number().int().min(1).default(5000),
    /** Per-server capacity overrides, e.g. {"srv-sp-01": 10000}. */
    serverCapacityMbps: z.record(z.string().min(1), z.number().int().min(1)).default({}),
    /** Server load snapshots older than this are deleted at each refresh (maintenance then merges the files). */
    loadHistoryRetentionHours: z.number().min(1).max(24 * 366).default(168),
    /** Capacity forecast: the load history a server's trend is fitted to, and how much of it a forecast needs. */
    forecastHours: z.number().int().min(1).max(24 * 366).default(24),
    forecastMinSamples: z.number().int().min(2).default(10),
    forecastMinSpanMinutes: z.number().min(0).default(30),
    /** Without new silver data, gold is refreshed (moving windows, load snapshots) this often. */
    refreshIntervalSeconds: z.number().min(0).default(60),
  })
  .strict();
export type GoldOptions = z.output<typeof goldOptionsSchema>;

/** Gold tables in refresh order; each answers one question (sql/gold/<name>.sql). */
export const GOLD_TABLES = [
  'server_load_history', 'connections_now', 'events_per_minute', 'devices_last_10_min', 'bandwidth_now',
  'high_speed_share', 'bandwidth_by_device', 'server_load', 'heavy_clients', 'capacity_forecast',
] as const;
export type GoldTable = (typeof GOLD_TABLES)[number];

/** Incremental gold tables, by key: a refresh rewrites only the keys its SQL returns. */
export const INCREMENTAL_KEYS: Partial<Record<GoldTable, string[]>> = {
  events_per_minute: ['minute', 'dispositivo', 'status'],
  server_load_history: ['as_of', 'servidor'],
};

export interface GoldRequest {
  batchId: string;
  batchSeq: number;
  /** Silver snapshots (from, to]: silver.events rows inserted there feed the incremental tables. */
  silverFromSnapshot: number;
  silverToSnapshot: number;
  asOf: string;
  options: GoldOptions;
}

export interface GoldResult {
  batchId: string;
  asOf: string;
  /** The snapshot the refresh committed as (every gold table's version). */
  snapshot: number;
  rowsChanged: number;
  alreadyCommitted: boolean;
}

export interface GoldCheckpoint {
  nextBatchSeq: number;
  /** The last silver snapshot gold has read. */
  silverSnapshot: number;
  /** The snapshot of gold's last refresh. */
  goldSnapshot: number;
  lastAsOf?: string;
  refreshes: number;
  passes: number;
}
