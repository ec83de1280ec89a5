// Reading the throttle audit: each client's throttle now (CLI `throttle list`, the dashboard's
// throttle panel, the metrics), and one client's transitions.
import { withLake, type LakeConfig } from './catalog';
import { sqlString } from './duckdb';
import { sqlFile } from './sql-files';
import { missingTables } from './tables';

export interface ThrottleNow {
  client: string;
  workflow_id: string;
  servidor: string | null;
  state: string;
  /** When it entered this state. */
  since: string;
  limit_mbps: number | null;
  /** The plan speed at the proposal. */
  plan_mbps: number | null;
  actor: string;
  reason: string | null;
  adapter: string | null;
}

const OPEN = `state NOT IN ('lifted', 'withdrawn', 'rejected')`;
const WHICH = { open: `WHERE ${OPEN}`, ended: `WHERE NOT (${OPEN})`, all: '' };

/** Each client's throttle now: the open ones (heaviest plan first), those that ended, or all (open first); ended ones latest first. */
export async function readThrottles(lake: LakeConfig, { which = 'open', limit = 500 }: { which?: keyof typeof WHICH; limit?: number } = {}): Promise<ThrottleNow[]> {
  return withLake(lake, async (db) => {
    if ((await missingTables(db, ['actions.throttle_audit'])).length > 0) return [];
    const rows = (await db.runAndReadAll(`
      SELECT client, workflow_id, servidor, state, strftime(happened_at, '%Y-%m-%dT%H:%M:%SZ') AS since, limit_mbps,
             (SELECT json_extract(p.evidence, '$.planMbps')::BIGINT FROM actions.throttle_audit p WHERE p.episode = t.episode AND p.seq = 1) AS plan_mbps,
             actor, reason, adapter
      FROM (${sqlFile('actions', 'throttles_now', {})}) t
      ${WHICH[which]}
      ORDER BY ${OPEN} DESC, plan_mbps DESC NULLS LAST, happened_at DESC LIMIT ${Math.trunc(limit)}`)).getRowObjectsJson() as unknown as ThrottleNow[];
    return rows.map((r) => ({ ...r, limit_mbps: r.limit_mbps === null ? null : Number(r.limit_mbps), plan_mbps: r.plan_mbps === null ? null : Number(r.plan_mbps) }));
  }, { readOnly: true });
}

/** One client's audit rows, every episode, oldest first. */
export async function readThrottleHistory(lake: LakeConfig, client: string): Promise<Record<string, unknown>[]> {
  return withLake(lake, async (db) => {
    if ((await missingTables(db, ['actions.throttle_audit'])).length > 0) return [];
    return (await db.runAndReadAll(`
      SELECT strftime(happened_at, '%Y-%m-%dT%H:%M:%SZ') AS happened_at, seq, transition, state, actor, reason, limit_mbps, adapter, adapter_result
      FROM actions.throttle_audit WHERE client = ${sqlString(client)} ORDER BY happened_at, seq`)).getRowObjectsJson() as Record<string, unknown>[];
  }, { readOnly: true });
}
