// `netpulse dashboard`: one page and a small read-only JSON API over gold and the pipeline's own
// tables, on Fastify. The lake is attached read-only in this process; requests are validated
// with zod and only ever choose between fixed, parameterised reads.
import { Command } from 'commander';
import Fastify, { type FastifyInstance } from 'fastify';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { config } from '../config';
import { CatalogUnreachableError, lakeFromEnv, type LakeConfig } from '../lake/catalog';
import { NotFoundError, readDashboard, ReadError, readSilverShardCount, secondsSince } from '../lake/reads';
import type { Source } from '../rules/bronze';
import { asOfFromQuery, dashboardQuerySchema } from '../rules/dashboard';
import { describeIssues } from '../rules/validate';
import { CliError, connectClient } from './connection';
import { registerMetrics } from './metrics';
import { lagCell, ownerIds, queryOwner, retryingCell } from './owner-state';
import { readThrottles } from '../lake/throttles';
import { decisionRequestSchema } from '../rules/dashboard';
import { decide } from './throttle';

const PAGE_DIR = path.join(config.projectRoot, 'client', 'dashboard-page');
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: path.join(PAGE_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: path.join(PAGE_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: path.join(PAGE_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  // Chart.js's UMD build, next to its CommonJS entry (the package's exports do not list it).
  '/vendor/chart.js': { file: path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.min.js'), type: 'text/javascript; charset=utf-8' },
};

export interface DashboardOptions {
  lake?: LakeConfig;
  /** Owner workflows to show lag and links for (the defaults, or a test's). */
  sources?: Source[];
  workflowIdPrefix?: string;
  /** Temporal client for the pipeline-health panel and the throttle actions; none: the panel says so. */
  temporal?: () => Promise<Client>;
  /** Accept approve/reject/lift from any address, not only from this machine (loopback). */
  remoteActions?: boolean;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

/** How an owner answered, in a word (the metrics count owners by it). */
export type OwnerAnswer = 'answering' | 'parked' | 'not started' | 'not answering';

export interface OwnerHealth { workflowId: string; layer: string; url: string; answer: OwnerAnswer; lagFiles?: number | string; lastPassAt?: string; running?: boolean; retrying?: string; error?: string }

async function ownerHealth(options: DashboardOptions): Promise<OwnerHealth[]> {
  const owners = ownerIds(options.sources, options.workflowIdPrefix ?? '', await readSilverShardCount(options.lake ?? lakeFromEnv()));
  const url = (id: string) => `${config.uiUrl}/namespaces/${config.namespace}/workflows/${encodeURIComponent(id)}`;
  let client: Client | undefined;
  try {
    client = await options.temporal?.();
  } catch (error) {
    return owners.map((o) => ({ workflowId: o.workflowId, layer: o.layer, url: url(o.workflowId), answer: 'not answering', error: (error as Error).message }));
  }
  return Promise.all(owners.map(async (o): Promise<OwnerHealth> => {
    const health = { workflowId: o.workflowId, layer: o.layer, url: url(o.workflowId) };
    if (!client) return { ...health, answer: 'not answering', error: 'no Temporal connection' };
    const q = await queryOwner(client.workflow, o.workflowId);
    if ('missing' in q) return { ...health, answer: 'not started', error: 'not started' };
    if ('failed' in q) return { ...health, answer: 'not answering', error: q.failed };
    const state = q.state;
    return {
      ...health, answer: state.parked ? 'parked' : 'answering', lagFiles: lagCell(state), running: state.passRunning, lastPassAt: state.lastPass?.finishedAt,
      ...(state.retrying && { retrying: retryingCell(state.retrying) }),
      ...(state.parked && { error: `parked ${state.parked.batchId ?? ''}: ${state.parked.reason} (netpulse owners retry-parked)` }),
    };
  }));
}

export async function buildDashboard(options: DashboardOptions = {}): Promise<FastifyInstance> {
  const lake = options.lake ?? lakeFromEnv();
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 200 } });
  for (const [route, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(asset.file);
    app.get(route, async (_request, reply) => reply.type(asset.type).send(body));
  }
  app.get('/api/dashboard', async (request, reply) => {
    const query = dashboardQuerySchema.safeParse(request.query);
    if (!query.success) return reply.code(400).send({ error: `bad query: ${describeIssues(query.error)}` });
    // The owners are asked whatever the lake says: when the lake cannot be read, their health is what the page still shows.
    const owners = ownerHealth(options);
    try {
      const data = await readDashboard(lake, asOfFromQuery(query.data));
      return { ...data, pipeline: await owners, secondsSinceGold: data.report.committedAt ? secondsSince(data.report.committedAt) : null, webUi: config.uiUrl };
    } catch (error) {
      if (error instanceof ReadError) return reply.code(400).send({ error: error.message });
      if (error instanceof NotFoundError) return reply.code(404).send({ error: error.message });
      // A catalog outage says so, with the address (its password hidden), not libpq's last words.
      const message = error instanceof CatalogUnreachableError ? error.message : `cannot read the lake: ${(error as Error).message.split('\n')[0]}`;
      return reply.code(503).send({ error: message, pipeline: await owners });
    }
  });
  // Throttles in force and proposals waiting, from the audit (always now, whatever ?as_of= says).
  app.get('/api/throttles', async (_request, reply) => {
    try {
      return { throttles: await readThrottles(lake), ended: await readThrottles(lake, { which: 'ended', limit: 10 }) };
    } catch (error) {
      const message = error instanceof CatalogUnreachableError ? error.message : `cannot read the lake: ${(error as Error).message.split('\n')[0]}`;
      return reply.code(503).send({ error: message });
    }
  });
  // The page's only write: an operator's decision on one throttle, from this machine unless told
  // otherwise, as JSON (a form or another site's page cannot send it: no CORS, and Origin must match).
  app.post('/api/throttles/decide', { bodyLimit: 4096 }, async (request, reply) => {
    if (!options.remoteActions && !LOOPBACK.test(request.socket.remoteAddress ?? '')) {
      return reply.code(403).send({ error: 'throttle actions are accepted from this machine only (netpulse dashboard --remote-actions to change that)' });
    }
    const origin = request.headers.origin;
    if (origin !== undefined && new URL(origin).host !== request.headers.host) return reply.code(403).send({ error: `origin ${origin} may not act on throttles` });
    const body = decisionRequestSchema.safeParse(request.body);
    if (!body.success) return reply.code(400).send({ error: `bad decision: ${describeIssues(body.error)}` });
    if (!options.temporal) return reply.code(503).send({ error: 'no Temporal connection' });
    try {
      const actor = `dashboard@${request.socket.remoteAddress?.replace(/^::ffff:/, '') ?? 'unknown'}`;
      const view = await decide(await options.temporal(), body.data.client, body.data.action, actor, body.data.reason);
      return { client: view.client, state: view.state, transition: view.transitions.at(-1) };
    } catch (error) {
      return reply.code(error instanceof CliError && error.exitCode === 2 ? 409 : 503).send({ error: (error as Error).message });
    }
  });
  registerMetrics(app, { lake, owners: options.temporal && (() => ownerHealth(options)) });
  return app;
}

export function dashboardCommand(): Command {
  return new Command('dashboard')
    .description('serve the live dashboard (one page + a read-only JSON API) on 127.0.0.1')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port', process.env.NETPULSE_DASHBOARD_PORT ?? '8080')
    .option('--remote-actions', 'accept throttle approve/reject/lift from other machines too (default: this machine only)')
    .action(async (options) => {
      const port = Number(options.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) throw new CliError(`--port: "${options.port}" is not a port number`, 2);
      let client: Promise<Client> | undefined;
      const app = await buildDashboard({ temporal: () => (client ??= connectClient()), remoteActions: Boolean(options.remoteActions) });
      // Listening for the stop signals before saying where to connect: one sent right after still closes cleanly.
      const stopped = new Promise<void>((resolve) => process.once('SIGINT', resolve).once('SIGTERM', resolve));
      const address = await app.listen({ host: options.host, port });
      console.log(`dashboard: ${address.replace('127.0.0.1', 'localhost')}/  (Ctrl-C to stop)`);
      await stopped;
      await app.close();
    });
}
