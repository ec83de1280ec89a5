// The webhook adapter: the operator's network controller (a BNG or RADIUS CoA proxy, an SDN
// controller) enforces the limit. One resource per client, <url>/throttles/<client>: PUT installs
// or replaces the limit, DELETE removes it, GET reads back what is in force (404: none). Every
// change carries an Idempotency-Key (the audit's episode and seq), so a retried call after a lost
// answer changes nothing more; the activity's retry policy does the retrying.
import { ApplicationFailure } from '@temporalio/common';
import { readFileSync } from 'node:fs';
import type { EnforcementAdapter, InForce, ThrottleClient } from './adapter';

export interface WebhookOptions {
  url: string;
  tokenFile?: string;
  timeoutMs: number;
}

/** 4xx other than timeouts and rate limits: the controller refuses the request, trying again will not help. */
const refused = (status: number) => status >= 400 && status < 500 && status !== 408 && status !== 429;

export function webhookAdapter(options: WebhookOptions): EnforcementAdapter {
  const base = options.url.replace(/\/+$/, '');
  const token = options.tokenFile ? readFileSync(options.tokenFile, 'utf8').trim() : undefined;
  const resource = (client: ThrottleClient) => `${base}/throttles/${encodeURIComponent(client.client)}`;
  // Errors name the controller by its origin only: no credentials, no client.
  const where = new URL(base).origin;

  async function call(method: 'PUT' | 'DELETE' | 'GET', client: ThrottleClient, body?: unknown, idempotencyKey?: string): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(resource(client), {
        method,
        headers: {
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...(idempotencyKey && { 'idempotency-key': idempotencyKey }),
          ...(token && { authorization: `Bearer ${token}` }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      });
    } catch (error) {
      const cause = (error as Error).name === 'TimeoutError' ? `no answer within ${options.timeoutMs} ms` : (error as Error).message;
      throw new Error(`network controller ${where}: ${method} failed: ${cause}`);
    }
    if (response.ok || (response.status === 404 && method !== 'PUT')) return response;
    const text = (await response.text()).slice(0, 200);
    const message = `network controller ${where}: ${method} answered ${response.status}${text ? `: ${text}` : ''}`;
    if (refused(response.status)) throw ApplicationFailure.create({ type: 'EnforcementRefused', nonRetryable: true, message });
    throw new Error(message);
  }

  return {
    name: 'webhook',
    async apply(target, idempotencyKey) {
      const response = await call('PUT', target, { client: target.client, ip: target.ip, limitMbps: target.limitMbps }, idempotencyKey);
      return `webhook ${where}: PUT ${response.status}`;
    },
    async lift(client, idempotencyKey) {
      const response = await call('DELETE', client, undefined, idempotencyKey);
      return `webhook ${where}: DELETE ${response.status}${response.status === 404 ? ' (none in force)' : ''}`;
    },
    async inForce(client): Promise<InForce | undefined> {
      const response = await call('GET', client);
      if (response.status === 404) return undefined;
      const body = (await response.json()) as { limitMbps?: unknown; detail?: unknown };
      if (typeof body.limitMbps !== 'number') throw new Error(`network controller ${where}: GET answered without a numeric limitMbps`);
      return { limitMbps: body.limitMbps, detail: `webhook ${where}: ${typeof body.detail === 'string' ? body.detail.slice(0, 200) : `limit ${body.limitMbps} Mbps`}` };
    },
  };
}
