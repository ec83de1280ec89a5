// Throttle I/O: the controller's observation of gold (which clients to propose, which throttles
// still see their client heavy, what the policy approves), the audit rows, and the enforcement
// adapter's apply, read-back and lift.
import { Context } from '@temporalio/activity';
import type { DuckDBConnection } from '@duckdb/node-api';
import { withLake } from '../lake/catalog';
import { retryConcurrentCommit } from '../lake/commit';
import { failpoint } from '../lake/failpoints';
import { sqlFile } from '../lake/sql-files';
import { missingTables } from '../lake/tables';
import { sqlString } from '../lake/duckdb';
import type { EnforcementSettings, Observation, ThrottlePolicy, ThrottleState } from '../rules/throttle';
import { throttleWorkflowId } from '../rules/throttle';
import type { LakeDeps } from './context';
import { lazyClient, type TemporalDeps } from './control';
import { adapterFor, enforcementFromEnv } from './enforcement';
import type { ThrottleClient, ThrottleTarget } from './enforcement/adapter';

export interface ThrottleDeps {
  /** The adapter and its settings; default from the worker's environment (enforcementFromEnv). */
  enforcement?: EnforcementSettings;
}

/** One transition of a throttle, as the audit keeps it. */
export interface AuditRow {
  at: string;
  workflowId: string;
  episode: string;
  seq: number;
  client: string;
  ip: string;
  dispositivo: string;
  servidor?: string;
  transition: string;
  state: ThrottleState;
  actor: string;
  reason: string;
  limitMbps?: number;
  adapter?: string;
  adapterResult?: string;
  evidence?: unknown;
}

const AUDIT = 'actions.throttle_audit';
const text = (v: string | undefined) => (v === undefined ? 'NULL' : sqlString(v));
const whole = (v: number | undefined) => (v === undefined ? 'NULL' : String(Math.trunc(v)));

async function ensureAudit(db: DuckDBConnection): Promise<void> {
  if ((await missingTables(db, [AUDIT])).length === 0) return;
  await retryConcurrentCommit(async () => {
    await db.run('CREATE SCHEMA IF NOT EXISTS actions');
    await db.run(sqlFile('actions', 'throttle_audit', {}));
  });
}

export function throttleActivities(deps: LakeDeps & TemporalDeps & ThrottleDeps) {
  const getClient = lazyClient(deps);
  let adapter: ReturnType<typeof adapterFor> | undefined;
  const enforcement = () => (adapter ??= adapterFor(deps.enforcement ?? enforcementFromEnv()));

  /**
   * Reads gold and the audit, and tells each client's throttle workflow what it sees (signal
   * `observe`, starting the workflow of a new proposal). A retry tells them again: a workflow
   * takes an observation as the latest state of things, so twice is the same as once.
   */
  async function observeHeavyClients({ policy }: { policy: ThrottlePolicy }): Promise<{ observed: number; proposals: number; autoApproved: number }> {
    const rows = await withLake(deps.lake, async (db) => {
      if ((await missingTables(db, ['gold.heavy_clients', 'gold.server_load', 'gold.server_load_history'])).length > 0) return [];
      await ensureAudit(db);
      const sql = sqlFile('actions', 'throttle_observations', {
        throttles_now: sqlFile('actions', 'throttles_now', {}),
        propose_per_server: whole(policy.proposePerServer),
        auto: String(policy.auto),
        min_heavy_minutes: String(Number(policy.minHeavyMinutes)),
        min_utilisation_pct: String(Number(policy.minServerUtilisationPct)),
        max_per_server: whole(policy.maxPerServer),
        quiet_minutes: String(Number(policy.quietAfterEndMinutes)),
      });
      return (await db.runAndReadAll(sql)).getRowObjectsJson() as unknown as ObservationRow[];
    });
    const client = await getClient();
    const { taskQueue } = Context.current().info;
    await Promise.all(rows.map((row) => {
      const observation = toObservation(row);
      return client.workflow.signalWithStart('throttleWorkflow', {
        taskQueue,
        workflowId: throttleWorkflowId(row.ip, row.dispositivo),
        args: [{ policy }],
        signal: 'observe',
        signalArgs: [{ ...observation, policy }],
        searchAttributes: { NetpulseLayer: ['actions'], NetpulseSource: [row.servidor ?? '(none)'] },
        staticSummary: `throttle of a heavy client on ${row.servidor ?? '(no server)'}`,
        memo: { servidor: row.servidor },
      });
    }));
    return {
      observed: rows.length,
      proposals: rows.filter((r) => r.state === null).length,
      autoApproved: rows.filter((r) => r.auto_approve !== null).length,
    };
  }

  /** Writes one transition, once: a retry finds its (episode, seq) there and writes nothing. */
  async function recordThrottle(row: AuditRow): Promise<{ written: boolean }> {
    // Fault tests stop a worker here, after the adapter acted and before the audit says so.
    await failpoint('before-commit', `throttle ${row.transition} ${row.workflowId}`);
    return withLake(deps.lake, async (db) => {
      await ensureAudit(db);
      const written = await retryConcurrentCommit(async () => (await db.run(`
        INSERT INTO ${AUDIT} SELECT ${sqlString(row.at)}::TIMESTAMPTZ, ${text(row.workflowId)}, ${text(row.episode)}, ${whole(row.seq)},
          ${text(row.client)}, ${text(row.ip)}, ${text(row.dispositivo)}, ${text(row.servidor)}, ${text(row.transition)}, ${text(row.state)},
          ${text(row.actor)}, ${text(row.reason)}, ${whole(row.limitMbps)}, ${text(row.adapter)}, ${text(row.adapterResult)},
          ${row.evidence === undefined ? 'NULL' : sqlString(JSON.stringify(row.evidence))}
        WHERE NOT EXISTS (SELECT 1 FROM ${AUDIT} WHERE episode = ${text(row.episode)} AND seq = ${whole(row.seq)})`)).rowsChanged);
      return { written: written > 0 };
    });
  }

  /** The client's latest audit row (of its latest episode), for a workflow that starts over an open throttle. */
  async function readThrottleAudit({ client }: { client: string }): Promise<AuditRow | undefined> {
    return withLake(deps.lake, async (db) => {
      if ((await missingTables(db, [AUDIT])).length > 0) return undefined;
      const [row] = (await db.runAndReadAll(`SELECT strftime(happened_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS at_iso, * EXCLUDE (happened_at)
        FROM (${sqlFile('actions', 'throttles_now', {})}) WHERE client = ${sqlString(client)}`)).getRowObjectsJson() as Record<string, string | null>[];
      if (!row) return undefined;
      return {
        at: row.at_iso!, workflowId: row.workflow_id!, episode: row.episode!, seq: Number(row.seq), client: row.client!, ip: row.ip!,
        dispositivo: row.dispositivo!, servidor: row.servidor ?? undefined, transition: row.transition!, state: row.state as ThrottleState,
        actor: row.actor!, reason: row.reason ?? '', limitMbps: row.limit_mbps === null ? undefined : Number(row.limit_mbps),
        adapter: row.adapter ?? undefined, adapterResult: row.adapter_result ?? undefined,
        evidence: row.evidence ? JSON.parse(row.evidence) : undefined,
      };
    });
  }

  async function applyThrottle({ target, idempotencyKey }: { target: ThrottleTarget; idempotencyKey: string }): Promise<{ adapter: string; result: string }> {
    const a = enforcement();
    return { adapter: a.name, result: await a.apply(target, idempotencyKey) };
  }

  /** Reads back what the network has in force for the client and compares it with the limit. */
  async function verifyThrottle({ target }: { target: ThrottleTarget }): Promise<{ adapter: string; verified: boolean; detail: string }> {
    const a = enforcement();
    if (a.name === 'dryrun') return { adapter: a.name, verified: true, detail: 'dry run: nothing installed, nothing to read back' };
    const found = await a.inForce(target);
    if (!found) return { adapter: a.name, verified: false, detail: 'no limit in force for the client' };
    return { adapter: a.name, verified: found.limitMbps === target.limitMbps, detail: found.detail };
  }

  /** Removes the limit, then reads back that none is left. */
  async function liftThrottle({ client, idempotencyKey }: { client: ThrottleClient; idempotencyKey: string }): Promise<{ adapter: string; result: string }> {
    const a = enforcement();
    const result = await a.lift(client, idempotencyKey);
    const left = await a.inForce(client);
    if (left) throw new Error(`the limit is still in force after the lift: ${left.detail}`);
    return { adapter: a.name, result };
  }

  return { observeHeavyClients, recordThrottle, readThrottleAudit, applyThrottle, verifyThrottle, liftThrottle };
}

interface ObservationRow {
  client: string;
  ip: string;
  dispositivo: string;
  heavy: boolean;
  limit_mbps: string | number;
  servidor: string | null;
  state: string | null;
  as_of: string | null;
  plan_mbps: string | number | null;
  server_median_mbps: number | null;
  times_median: number | null;
  server_utilisation_pct: number | null;
  heavy_on_server: string | number | null;
  auto_approve: string | null;
}

function toObservation(row: ObservationRow): Observation {
  return {
    client: row.client, ip: row.ip, dispositivo: row.dispositivo, heavy: row.heavy, limitMbps: Number(row.limit_mbps),
    ...(row.heavy && row.as_of && {
      evidence: {
        asOf: row.as_of, servidor: row.servidor ?? '(none)', planMbps: Number(row.plan_mbps), serverMedianMbps: Number(row.server_median_mbps),
        timesMedian: Number(row.times_median), serverUtilisationPct: Number(row.server_utilisation_pct), heavyOnServer: Number(row.heavy_on_server),
      },
    }),
    ...(row.auto_approve && { autoApprove: row.auto_approve }),
    ...(row.state && { auditState: row.state }),
  };
}
