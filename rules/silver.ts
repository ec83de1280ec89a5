// Silver's record rules, in one place. Each rule is a named SQL predicate over the typed row
// (SQL does the data work: rows never travel through JavaScript). `silverEventSchema` is the
// same contract in zod, for readers and for the tests that check both agree (except late_event,
// which depends on the watermark, silver state rather than the row).
import { z } from 'zod';
import { DEVICES, SPEEDS_MBPS, STATUSES } from './events';

export const silverOptionsSchema = z
  .object({
    /** An event may be this far after its file was written (clock skew) before it is "in the future". */
    futureToleranceMinutes: z.number().min(0).max(1440).default(5),
    /**
     * Watermark: an event older than the newest event silver has accepted minus this many minutes
     * is late (quarantined as late_event), so deduplication only ever looks that far back.
     */
    watermarkMinutes: z.number().int().min(1).max(525_600).default(1440),
  })
  .strict();
export type SilverOptions = z.output<typeof silverOptionsSchema>;

/** 0-255, leading zeros allowed (as before: up to three digits). */
const OCTET = String.raw`(25[0-5]|2[0-4]\d|[01]?\d?\d)`;
/** One regular expression, octets included: a per-row split into a list cost most of silver's checks. */
export const PRIVATE_IPV4 = String.raw`^(10\.${OCTET}\.${OCTET}\.${OCTET}|172\.(1[6-9]|2\d|3[01])\.${OCTET}\.${OCTET}|192\.168\.${OCTET}\.${OCTET})$`;

export interface SilverRule {
  name: string;
  description: string;
  /** True when the typed row breaks the rule. Columns: see activities/silver.ts. */
  violation: (options: SilverOptions) => string;
}

const sqlList = (values: readonly (string | number)[]) => values.map((v) => (typeof v === 'number' ? v : `'${v}'`)).join(', ');

export const SILVER_RULES: SilverRule[] = [
  { name: 'name_present', description: 'Nome is not empty', violation: () => `nome IS NULL` },
  {
    name: 'ip_private_ipv4', description: 'Ip is a private IPv4 address (10/8, 172.16/12, 192.168/16), octets 0-255',
    violation: () => `ip IS NULL OR NOT regexp_full_match(ip, '${PRIVATE_IPV4}')`,
  },
  { name: 'device_enum', description: `Dispositivo_de_Acesso is one of ${DEVICES.join(', ')}`, violation: () => `dispositivo IS NULL` },
  { name: 'status_enum', description: `Status_Conexao is one of ${STATUSES.join(', ')}`, violation: () => `status IS NULL` },
  {
    name: 'speed_allowed', description: `Velocidade_de_Conexao is one of ${SPEEDS_MBPS.join(', ')} Mbps`,
    violation: () => `velocidade_mbps IS NULL OR velocidade_mbps NOT IN (${sqlList(SPEEDS_MBPS)})`,
  },
  { name: 'timestamp_present', description: 'Hora_Conexao is a timestamp', violation: () => `hora_conexao IS NULL` },
  {
    name: 'timestamp_not_future', description: 'Hora_Conexao is not after its file was written, beyond the tolerance',
    violation: (o) => `hora_conexao > file_mtime + INTERVAL ${Math.trunc(o.futureToleranceMinutes * 60)} SECOND`,
  },
  {
    name: 'late_event', description: 'Hora_Conexao is inside the watermark: not older than the newest accepted event minus watermarkMinutes',
    violation: () => `hora_conexao < getvariable('silver_watermark')`,
  },
];

/** A silver event, as zod sees it: the same rules as SILVER_RULES, for rows read back out. */
export const silverEventSchema = z.object({
  nome: z.string().min(1),
  ip: z.string().regex(new RegExp(PRIVATE_IPV4)),
  dispositivo: z.enum(DEVICES),
  status: z.enum(STATUSES),
  velocidade_mbps: z.number().int().refine((v) => (SPEEDS_MBPS as readonly number[]).includes(v), 'speed not in the allowed set'),
  hora_conexao: z.string().min(1),
  servidor: z.string().min(1).nullable(),
});
export type SilverEvent = z.infer<typeof silverEventSchema>;

/**
 * Quarantined rows to put back through silver's rules (after a rule or a bronze table was fixed):
 * the rows every given field matches; all of them when none is given.
 */
export const requeueFilterSchema = z
  .object({
    /** The first rule the row broke, as in silver.quarantine.rule. */
    rule: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'a rule name (lowercase letters, digits and _)').optional(),
    /** The bronze table the row came from, e.g. bronze.celular_conectado. */
    sourceTable: z.string().regex(/^bronze\.[a-z][a-z0-9_]{0,62}$/, 'a bronze table such as bronze.celular_conectado').optional(),
    /** Text the row's landing file path contains. */
    pathContains: z.string().min(1).max(1024).optional(),
  })
  .strict();
export type RequeueFilter = z.infer<typeof requeueFilterSchema>;

/** A silver batch's input: the bronze tables' changes in snapshots (fromSnapshot, toSnapshot]. */
export interface SilverInput {
  fromSnapshot: number;
  toSnapshot: number;
  tables: string[];
  /** Bronze rows in the range (from the commits' extra info). */
  rows: number;
  /** Every bronze commit waiting at planning time is in the range: the pass needs no further plan. */
  drained?: boolean;
  /** Quarantined rows to read again in this batch (they leave the quarantine in its transaction). */
  requeue?: RequeueFilter[];
}

export interface SilverTotals {
  rowsIn: number;
  eventsOut: number;
  quarantined: number;
  duplicates: number;
}

export interface SilverCheckpoint extends SilverTotals {
  nextBatchSeq: number;
  /** Requeue requests not yet served by a batch (carried through continue-as-new). */
  requeue?: RequeueFilter[];
  /** The last bronze snapshot silver has read. */
  bronzeSnapshot: number;
  /** The snapshot of silver's last commit. */
  eventsVersion: number;
  passes: number;
}

export interface SilverResult {
  batchId: string;
  rowsIn: number;
  events: number;
  quarantined: number;
  duplicates: number;
  devicesChanged: number;
  /** The snapshot the batch committed as (every silver table's version). */
  snapshot: number;
  alreadyCommitted: boolean;
  /** Quarantined rows the batch read again (counted in events, quarantined and duplicates, not in rowsIn). */
  requeued?: number;
}
