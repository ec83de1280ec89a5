// The landing zone's files as retention sees them, in a folder or under an object-store prefix:
// where a file lies relative to the zone, whether it is still there, deleting and moving it.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { deleteObject, isObjectUrl, joinUrl, moveObject, parseObjectUrl, statObject } from './object-store';

export interface LandingStore {
  /** The file's path relative to the landing zone; undefined when it lies outside it. */
  relative(file: string): string | undefined;
  join(root: string, relative: string): string;
  exists(file: string): Promise<boolean>;
  remove(file: string): Promise<void>;
  move(from: string, to: string): Promise<void>;
}

const objectStore = (root: string): LandingStore => ({
  relative: (file) => (file.startsWith(`${root}/`) ? file.slice(root.length + 1) : undefined),
  join: joinUrl,
  exists: async (file) => (await statObject(file)) !== undefined,
  remove: deleteObject,
  move: moveObject,
});

const folder = (root: string): LandingStore => ({
  relative: (file) => {
    const relative = path.relative(root, path.resolve(file));
    return relative.startsWith('..') || path.isAbsolute(relative) ? undefined : relative;
  },
  join: path.join,
  exists: async (file) => (await stat(file).catch(() => undefined)) !== undefined,
  remove: (file) => rm(file, { force: true }),
  move: async (from, to) => {
    await mkdir(path.dirname(to), { recursive: true });
    await rename(from, to);
  },
});

export function landingStore(root: string): LandingStore {
  return isObjectUrl(root) ? objectStore(root.replace(/\/+$/, '')) : folder(path.resolve(root));
}

/** Where retention archives by default: data/archive, or beside an object-store landing zone (s3://b/landing → s3://b/archive). */
export function defaultArchiveRoot(landingRoot: string, dataDir: string): string {
  if (!isObjectUrl(landingRoot)) return path.join(dataDir, 'archive');
  const { bucket, key } = parseObjectUrl(landingRoot.replace(/\/+$/, ''));
  const parent = key.includes('/') ? key.slice(0, key.lastIndexOf('/')) : '';
  return joinUrl(`s3://${bucket}`, parent, 'archive');
}
