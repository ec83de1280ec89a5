// Object storage (S3 and S3-compatible stores: SeaweedFS, MinIO, R2, …) as a place for the
// lake's data files and the landing zone. DuckDB's httpfs reads and writes the Parquet objects;
// listing, deleting and archiving objects (things DuckDB does not do) go through the AWS SDK.
// Both take the same settings, from the environment:
//   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (, AWS_SESSION_TOKEN)  the writer's key; without
//       them, the AWS SDK's credential chain (instance role, profile, …)
//   NETPULSE_S3_READER_ACCESS_KEY_ID, NETPULSE_S3_READER_SECRET_ACCESS_KEY  a read-only key for
//       read-only attachments (CLI reads, dashboard); else the writer's
//   AWS_REGION (or AWS_DEFAULT_REGION)            default us-east-1
//   NETPULSE_S3_ENDPOINT                          host:port of an S3-compatible store; unset: AWS
//   NETPULSE_S3_URL_STYLE                         path or vhost (default: path with an endpoint, else vhost)
//   NETPULSE_S3_USE_SSL                           true (default) or false (a store on loopback)
import {
  CopyObjectCommand, DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import type { DuckDBConnection } from '@duckdb/node-api';
import path from 'node:path';
import { S3_LOCATION } from '../rules/landing';
import { sqlString } from './duckdb';

/** s3://bucket/key…: a path the lake and the landing zone may also be. */
export const isObjectUrl = (location: string): boolean => /^s3:\/\//i.test(location);

/** Any URL DuckDB reads through an extension (s3, gcs, http): never a local folder to create or delete. */
export const isRemotePath = (location: string): boolean => /^[a-z0-9]+:\/\//i.test(location);

export interface ObjectLocation {
  bucket: string;
  key: string;
}

/** s3://bucket/a/b → { bucket, key: 'a/b' }; refuses what is not an s3 URL or climbs with `..`. */
export function parseObjectUrl(url: string): ObjectLocation {
  const match = S3_LOCATION.exec(url);
  if (!match) throw new Error(`not an s3 URL (s3://bucket/prefix/…): ${url}`);
  const key = match[2] ?? '';
  if (key.split('/').some((part) => part === '..' || part === '.')) throw new Error(`an s3 URL may not contain . or .. segments: ${url}`);
  return { bucket: match[1], key };
}

/** A local path made absolute; a URL as given, without trailing slashes. */
export const resolveLocation = (location: string): string => (isRemotePath(location) ? location.replace(/\/+$/, '') : path.resolve(location));

/** Joins URL parts with single slashes (path.join for s3 URLs). */
export function joinUrl(base: string, ...parts: string[]): string {
  return [base.replace(/\/+$/, ''), ...parts.map((p) => p.replace(/^\/+|\/+$/g, ''))].filter(Boolean).join('/');
}

export type Access = 'write' | 'read';

interface Settings {
  endpoint?: string;
  region: string;
  urlStyle: 'path' | 'vhost';
  useSsl: boolean;
  key?: { id: string; secret: string; session?: string };
}

function settings(access: Access): Settings {
  const env = process.env;
  const endpoint = env.NETPULSE_S3_ENDPOINT?.replace(/^https?:\/\//, '') || undefined;
  const urlStyle = (env.NETPULSE_S3_URL_STYLE ?? (endpoint ? 'path' : 'vhost')).toLowerCase();
  if (urlStyle !== 'path' && urlStyle !== 'vhost') throw new Error(`NETPULSE_S3_URL_STYLE must be path or vhost, not ${urlStyle}`);
  const useSsl = (env.NETPULSE_S3_USE_SSL ?? 'true').toLowerCase();
  if (!['true', 'false'].includes(useSsl)) throw new Error(`NETPULSE_S3_USE_SSL must be true or false, not ${useSsl}`);
  const reader = access === 'read' && env.NETPULSE_S3_READER_ACCESS_KEY_ID && env.NETPULSE_S3_READER_SECRET_ACCESS_KEY
    ? { id: env.NETPULSE_S3_READER_ACCESS_KEY_ID, secret: env.NETPULSE_S3_READER_SECRET_ACCESS_KEY } : undefined;
  const writer = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? { id: env.AWS_ACCESS_KEY_ID, secret: env.AWS_SECRET_ACCESS_KEY, session: env.AWS_SESSION_TOKEN } : undefined;
  return { endpoint, region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1', urlStyle, useSsl: useSsl === 'true', key: reader ?? writer };
}

/** Where the store is, for logs: endpoint and style, never a key. */
export function describeObjectStore(): string {
  const s = settings('write');
  return `${s.endpoint ?? 'AWS S3'} (${s.region}, ${s.urlStyle} style${s.useSsl ? '' : ', no TLS'}, ${s.key ? 'key from the environment' : 'credential chain'})`;
}

/**
 * Makes a DuckDB connection's instance read and write s3:// paths: httpfs loaded and a secret of
 * this instance's (temporary: in memory, never written to disk). The key's secret never appears in
 * an error: DuckDB's messages about a failed CREATE SECRET could quote the statement.
 */
export async function useObjectStore(db: DuckDBConnection, access: Access): Promise<void> {
  const s = settings(access);
  await db.run('LOAD httpfs');
  const options = [
    'TYPE s3',
    ...(s.key
      ? [`KEY_ID ${sqlString(s.key.id)}`, `SECRET ${sqlString(s.key.secret)}`, ...(s.key.session ? [`SESSION_TOKEN ${sqlString(s.key.session)}`] : [])]
      : ['PROVIDER credential_chain']),
    `REGION ${sqlString(s.region)}`,
    ...(s.endpoint ? [`ENDPOINT ${sqlString(s.endpoint)}`] : []),
    `URL_STYLE ${sqlString(s.urlStyle)}`,
    `USE_SSL ${s.useSsl}`,
  ];
  // An upload's part buffer is max_filesize / max_parts: 80 MB by default, one per file being
  // written, so four bronze batches at once ran out of the 256 MB memory limit (npm run bench --s3,
  // bench/results/2026-12-07-duckdb-1.5.5.md). At its 50 GB minimum a part is 5 MB, S3's smallest,
  // and a file may still reach 50 GB.
  await db.run(`SET GLOBAL s3_uploader_max_filesize = '50GB'`);
  try {
    if (!s.key) await db.run('LOAD aws');
    await db.run(`CREATE OR REPLACE TEMPORARY SECRET netpulse_s3 (${options.join(', ')})`);
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    throw new Error(`cannot set up object storage access for DuckDB: ${s.key ? message.replaceAll(s.key.secret, '***') : message}`);
  }
}

const clients = new Map<Access, S3Client>();

/** The AWS SDK's client for the same store and key as DuckDB's secret. */
export function objectStoreClient(access: Access = 'write'): S3Client {
  let client = clients.get(access);
  if (!client) {
    const s = settings(access);
    const options: S3ClientConfig = {
      region: s.region,
      forcePathStyle: s.urlStyle === 'path',
      ...(s.endpoint && { endpoint: `${s.useSsl ? 'https' : 'http'}://${s.endpoint}` }),
      ...(s.key && { credentials: { accessKeyId: s.key.id, secretAccessKey: s.key.secret, sessionToken: s.key.session } }),
    };
    // netpulse runs on Node 20 with this SDK version pinned (package.json): its notice that later
    // versions will need Node 22 would print on every CLI command that lists objects.
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
    client = new S3Client(options);
    clients.set(access, client);
  }
  return client;
}

export interface ListedObject {
  path: string;
  size: number;
  mtimeMs: number;
}

/** Every object under `prefixUrl` (recursively), with its size and modification time; a page of 1,000 keys per request. */
export async function listObjects(prefixUrl: string): Promise<ListedObject[]> {
  const { bucket, key } = parseObjectUrl(prefixUrl);
  const prefix = key === '' || key.endsWith('/') ? key : `${key}/`;
  const objects: ListedObject[] = [];
  let token: string | undefined;
  do {
    const page = await objectStoreClient().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (!o.Key || o.Key.endsWith('/')) continue;
      objects.push({ path: `s3://${bucket}/${o.Key}`, size: Number(o.Size ?? 0), mtimeMs: o.LastModified?.getTime() ?? 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return objects;
}

/** Size and modification time of one object; undefined when it does not exist. */
export async function statObject(url: string): Promise<ListedObject | undefined> {
  const { bucket, key } = parseObjectUrl(url);
  try {
    const head = await objectStoreClient().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { path: url, size: Number(head.ContentLength ?? 0), mtimeMs: head.LastModified?.getTime() ?? 0 };
  } catch (error) {
    if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
    throw error;
  }
}

export async function deleteObject(url: string): Promise<void> {
  const { bucket, key } = parseObjectUrl(url);
  await objectStoreClient().send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

/** Deletes every object under a prefix (a lake or landing zone being dropped); how many. */
export async function deleteObjectsUnder(prefixUrl: string): Promise<number> {
  const objects = await listObjects(prefixUrl);
  for (const o of objects) await deleteObject(o.path);
  return objects.length;
}

/** Moves an object (copy, then delete the source): S3 has no rename. */
export async function moveObject(from: string, to: string): Promise<void> {
  const source = parseObjectUrl(from);
  const target = parseObjectUrl(to);
  await objectStoreClient().send(new CopyObjectCommand({
    Bucket: target.bucket, Key: target.key, CopySource: `${source.bucket}/${source.key.split('/').map(encodeURIComponent).join('/')}`,
  }));
  await deleteObject(from);
}
