// Silver's shards: every silver rule is per device (deduplication on Ip + device + time + status,
// device state on Ip + device), so silver splits exactly by the device's address. Shard k of N
// owns the addresses whose hash is k modulo N, with its own owner workflow, fence, watermark and
// tables; the lake records N. Names and the shard predicate live here, for workflows, activities
// and clients alike.
import { z } from 'zod';

export const MAX_SILVER_SHARDS = 64;

/**
 * Shard owners run their batches on this task queue beside the main one (`<queue>-silver-batches`):
 * each worker polls it with room for NETPULSE_SILVER_BATCHES_PER_WORKER batches (1), so Temporal
 * hands a second shard's batch to another worker instead of crowding one worker's memory.
 */
export const silverBatchQueue = (taskQueue: string) => `${taskQueue}-silver-batches`;
/**
 * Shards of a new lake unless NETPULSE_SILVER_SHARDS says otherwise: one, as up.sh runs one worker.
 * bench/results/2026-12-07-scale-out.md: on this 2-core machine one worker ran silver + gold at
 * 152,091 rows/s with one shard and 113,348 with two (its two concurrent batches shared its 256 MB
 * and ran out of memory 12 times); two workers on a core each, with two shards, 178,304. Shards pay
 * with a worker per core or host. A lake keeps the count it was made with.
 */
export const DEFAULT_SILVER_SHARDS = 1;

export const shardCountSchema = z.number().int().min(1).max(MAX_SILVER_SHARDS);

export const silverShardSchema = z
  .object({ index: z.number().int().min(0), count: shardCountSchema })
  .strict()
  .refine((s) => s.index < s.count, 'shard index must be below the shard count');
export type SilverShard = z.infer<typeof silverShardSchema>;

/** The one shard of an unsharded lake: its owner, workflow and tables keep their first names. */
export const SINGLE_SHARD: SilverShard = { index: 0, count: 1 };

/** Every shard of a lake with `count` shards. */
export function silverShards(count: number): SilverShard[] {
  return Array.from({ length: count }, (_, index) => ({ index, count }));
}

/** The shard's checkpoint owner (fence, batch ids, event-log source) and its owner workflow's id. */
export function silverShardOwner(shard: SilverShard = SINGLE_SHARD): string {
  return shard.count === 1 ? 'silver' : `silver-${shard.index}-of-${shard.count}`;
}

export interface SilverShardTables {
  events: string;
  quarantine: string;
  deviceState: string;
}

/**
 * The tables a shard writes. One shard: silver.events, silver.quarantine, silver.device_state.
 * Several: a table of each per shard (silver.events_1_of_4 …), and those names are views over
 * them. A table per shard because DuckLake fails a commit that deletes or updates rows of a table
 * another open transaction inserted into; shards update their device state and delete requeued
 * quarantine rows, and their merges must not rewrite each other's files.
 */
export function silverShardTables(shard: SilverShard = SINGLE_SHARD): SilverShardTables {
  const suffix = shard.count === 1 ? '' : `_${shard.index}_of_${shard.count}`;
  return { events: `silver.events${suffix}`, quarantine: `silver.quarantine${suffix}`, deviceState: `silver.device_state${suffix}` };
}

/**
 * True for a typed row (column `ip`) of the shard. MD5 (RFC 1321) rather than DuckDB's hash():
 * an address must stay on its shard across DuckDB versions, and hash() is not specified. The top
 * 32 bits of the digest: a modulo of the whole 128-bit number cost 4 µs a row.
 */
export function shardPredicateSql(shard: SilverShard, ip = 'ip'): string {
  if (shard.count === 1) return 'true';
  return `(md5_number(coalesce(${ip}, '')) >> 96)::UBIGINT % ${Math.trunc(shard.count)} = ${Math.trunc(shard.index)}`;
}
