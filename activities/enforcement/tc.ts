// The Linux `tc` adapter: shapes traffic TO a client on the egress of the gateway's interface,
// the way Linux ISPs shape subscribers. One HTB root `1:` per device, shared by every client, with
// a default class for everyone unshaped; each shaped client gets its own class and a u32 filter
// on `ip dst <ip>/32`. Flower would be simpler, but it is not built into every kernel (this
// machine's has CONFIG_NET_CLS_FLOWER unset); u32 is in all of them.
//
// The filters live in a u32 hash table of 256 buckets keyed on the last octet (the classic ISP
// layout: a packet is compared with the clients of its bucket, not with all of them). A client's
// slot is its low 16 bits: bucket = last octet, node = third octet + 1, class minor = the two
// octets in hex (10.0.1.180 -> bucket b4, node 2, class 1:1b4). Both are fixed, so applying twice
// replaces in place; two clients with the same low 16 bits on one device would share a slot, and
// that is refused rather than throttling the wrong one.
import { execFile } from 'node:child_process';
import { ApplicationFailure } from '@temporalio/common';
import type { EnforcementAdapter, InForce, ThrottleClient, ThrottleTarget } from './adapter';

export interface TcOptions {
  /** The gateway's interface toward the clients, e.g. `eth1`. */
  device: string;
  /** The network namespace the device is in, if not the worker's own. */
  netns?: string;
  /** The default class's rate: what unshaped clients share (default 10000). */
  rootRateMbit?: number;
  /** Default /usr/sbin/tc: sbin is not on every service's PATH. */
  tcPath?: string;
}

const ROOT = '1:';
/** The default class: 0xffff is x.x.255.255, a broadcast address, never a client's slot. */
const DEFAULT_MINOR = 0xffff;
/** Our filters' priority; other tools' filters at other prefs are left alone. */
const PREF = '100';
/** Our u32 hash table (tc names tables in hex; 2: is far from the kernel's own 800: onwards). */
const HASH_TABLE = 0x2;
const TC_TIMEOUT_MS = 10_000;

// IFNAMSIZ is 16 with the NUL; namespace names are file names under /run/netns.
const DEVICE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const NETNS_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

export function tcAdapter(options: TcOptions): EnforcementAdapter {
  const { device, netns, rootRateMbit = 10_000, tcPath = '/usr/sbin/tc' } = options;
  if (!DEVICE_NAME.test(device)) refuse(`tc adapter: device ${JSON.stringify(device)} is not an interface name (letters, digits, '_', '.', '-'; at most 15)`);
  if (netns !== undefined && !NETNS_NAME.test(netns)) refuse(`tc adapter: netns ${JSON.stringify(netns)} is not a namespace name (letters, digits, '_', '.', '-')`);
  if (!validRate(rootRateMbit)) refuse(`tc adapter: rootRateMbit ${rootRateMbit} is not a rate in Mbit/s`);
  const where = `${device}${netns ? ` (netns ${netns})` : ''}`;

  const tc = (args: string[]) => runTc(tcPath, [...(netns ? ['-n', netns] : []), ...args]);
  const dev = ['dev', device];

  /** The HTB root, its default class and our hash table, each created only when absent. */
  async function ensureRoot(): Promise<void> {
    const root = await rootQdisc();
    // Never `replace` a root: that would wipe every other client's class. A default root has handle 0:.
    if (root && root.handle !== '0:' && !(root.kind === 'htb' && root.handle === ROOT)) {
      throw ApplicationFailure.create({ type: 'ForeignRootQdisc', nonRetryable: true, message: `tc adapter: ${where} already has a root qdisc ${root.kind} ${root.handle}, not htb ${ROOT}; not replacing it` });
    }
    if (root?.handle !== ROOT) await tc(['qdisc', 'add', ...dev, 'root', 'handle', ROOT, 'htb', 'default', hex(DEFAULT_MINOR)]);
    if (!(await classes()).has(DEFAULT_MINOR)) {
      await tc(['class', 'add', ...dev, 'parent', ROOT, 'classid', classId(DEFAULT_MINOR), 'htb', 'rate', `${rootRateMbit}mbit`]);
    }
    const filters = await u32Filters();
    if (!filters.some((f) => f.table === HASH_TABLE && f.divisor === 256)) {
      await tc(['filter', 'add', ...dev, 'parent', ROOT, 'pref', PREF, 'protocol', 'ip', 'handle', `${hex(HASH_TABLE)}:`, 'u32', 'divisor', '256']);
    }
    if (!filters.some((f) => f.link === HASH_TABLE)) {
      // Every IPv4 packet goes to the bucket of its destination's last octet (byte 19 of the header).
      await tc(['filter', 'add', ...dev, 'parent', ROOT, 'pref', PREF, 'protocol', 'ip', 'u32', 'ht', '800::',
        'match', 'ip', 'dst', '0.0.0.0/0', 'hashkey', 'mask', '0x000000ff', 'at', '16', 'link', `${hex(HASH_TABLE)}:`]);
    }
  }

  /** HTB classes on the device by minor, with their rate line. `tc -j class show` prints text for htb in iproute2 6.1, so the text is read. */
  async function classes(): Promise<Map<number, { rateMbps: number; line: string }>> {
    const byMinor = new Map<number, { rateMbps: number; line: string }>();
    for (const line of (await tc(['class', 'show', ...dev])).split('\n')) {
      const m = /^class htb 1:([0-9a-f]+) .*?\brate (\S+) ceil (\S+)/.exec(line);
      if (m) byMinor.set(parseInt(m[1], 16), { rateMbps: parseRateMbps(m[2]), line: `class 1:${m[1]} htb rate ${m[2]} ceil ${m[3]}` });
    }
    return byMinor;
  }

  async function u32Filters(): Promise<U32Filter[]> {
    const rows = JSON.parse(await tc(['-j', 'filter', 'show', ...dev, 'parent', ROOT])) as TcFilterRow[];
    return rows.flatMap((r) => (r.kind === 'u32' && r.options?.fh ? [readU32(r)] : []));
  }

  /** Our filter for the client's slot and any filter that sends to its class, whoever made it. */
  async function slotState(ip: string, slot: Slot) {
    const filters = await u32Filters();
    const inSlot = filters.find((f) => f.table === HASH_TABLE && f.bucket === slot.bucket && f.node === slot.node);
    const toClass = filters.filter((f) => f.flowMinor === slot.minor);
    const other = [inSlot, ...toClass].find((f) => f && !(f === inSlot && f.dstIp === ip && f.flowMinor === slot.minor));
    return { ours: inSlot?.dstIp === ip ? inSlot : undefined, other };
  }

  return {
    name: 'tc',

    async apply(target: ThrottleTarget, idempotencyKey: string): Promise<string> {
      const ip = checkedIp(target.ip);
      const slot = slotOf(ip);
      if (!validRate(target.limitMbps)) refuse(`tc adapter: limit ${target.limitMbps} Mbit/s for ${target.client} is not a rate above 0`);
      // tc takes whole kbit; sub-Mbit limits stay exact.
      const rate = `${Math.round(target.limitMbps * 1000)}kbit`;
      return serialized(where, async () => {
        await ensureRoot();
        const { other } = await slotState(ip, slot);
        if (other) {
          throw ApplicationFailure.create({ type: 'ClassCollision', nonRetryable: true, message: `tc adapter: ${ip} maps to class ${classId(slot.minor)} on ${where}, `
            + `which filter ${other.handle}${other.dstIp ? ` for ${other.dstIp}` : ''} already uses; refusing rather than throttle the wrong client` });
        }
        await tc(['class', 'replace', ...dev, 'parent', ROOT, 'classid', classId(slot.minor), 'htb', 'rate', rate, 'ceil', rate]);
        await tc(['filter', 'replace', ...dev, 'parent', ROOT, 'pref', PREF, 'protocol', 'ip', 'handle', slot.handle, 'u32',
          'ht', `${hex(HASH_TABLE)}:${hex(slot.bucket)}:`, 'match', 'ip', 'dst', `${ip}/32`, 'flowid', classId(slot.minor)]);
        return `applied ${classId(slot.minor)} htb rate ${rate} ceil ${rate}, filter ${slot.handle} dst ${ip}/32 on ${where} (key ${idempotencyKey})`;
      });
    },

    async lift(client: ThrottleClient, idempotencyKey: string): Promise<string> {
      const ip = checkedIp(client.ip);
      const slot = slotOf(ip);
      return serialized(where, async () => {
        const removed = (await hasOurRoot()) ? await removeSlot(ip, slot) : [];
        return `${removed.length ? `removed ${removed.join(' and ')}` : 'no limit in force'} for ${ip} on ${where} (key ${idempotencyKey})`;
      });
    },

    async inForce(client: ThrottleClient): Promise<InForce | undefined> {
      const ip = checkedIp(client.ip);
      const slot = slotOf(ip);
      if (!(await hasOurRoot())) return undefined;
      const { ours } = await slotState(ip, slot);
      const shaping = ours && (await classes()).get(slot.minor);
      if (!ours || !shaping) return undefined;
      return { limitMbps: shaping.rateMbps, detail: `${shaping.line}, filter ${ours.handle} dst ${ip}/32 on ${where}` };
    },
  };

  /** The client's filter and class, what of them there is; the class stays while someone else's filter sends to it. */
  async function removeSlot(ip: string, slot: Slot): Promise<string[]> {
    const { ours, other } = await slotState(ip, slot);
    const removed: string[] = [];
    if (ours) {
      await tc(['filter', 'del', ...dev, 'parent', ROOT, 'pref', PREF, 'protocol', 'ip', 'handle', slot.handle, 'u32']);
      removed.push(`filter ${slot.handle}`);
    }
    if (!other && (await classes()).has(slot.minor)) {
      await tc(['class', 'del', ...dev, 'parent', ROOT, 'classid', classId(slot.minor)]);
      removed.push(`class ${classId(slot.minor)}`);
    }
    return removed;
  }

  async function rootQdisc(): Promise<{ kind: string; handle: string } | undefined> {
    const qdiscs = JSON.parse(await tc(['-j', 'qdisc', 'show', ...dev])) as { kind: string; handle: string; root?: boolean }[];
    return qdiscs.find((q) => q.root);
  }

  /** Before the first apply there is no HTB root, and `filter show parent 1:` would fail. */
  async function hasOurRoot(): Promise<boolean> {
    const root = await rootQdisc();
    return root?.kind === 'htb' && root.handle === ROOT;
  }
}

interface TcFilterRow {
  kind: string;
  options?: { fh?: string; ht_divisor?: number; flowid?: string; link?: string; match?: { value: string; mask: string; off: number } };
}

interface U32Filter {
  handle: string;
  table: number;
  bucket: number;
  node: number;
  divisor?: number;
  link?: number;
  flowMinor?: number;
  /** The destination this filter matches, when it is one whole IPv4 address. */
  dstIp?: string;
}

/** A u32 filter as `tc -j` prints it: handle `table:bucket:node` in hex, the match as hex value/mask at an offset. */
function readU32(row: TcFilterRow): U32Filter {
  const o = row.options!;
  const [table, bucket, node] = o.fh!.split(':').map((part) => parseInt(part || '0', 16));
  const flow = o.flowid ? /^1:([0-9a-f]+)$/.exec(o.flowid) : null;
  const wholeDst = o.match && o.match.off === 16 && o.match.mask === 'ffffffff';
  return {
    handle: o.fh!, table, bucket, node, divisor: o.ht_divisor,
    link: o.link ? parseInt(o.link, 16) : undefined,
    flowMinor: flow ? parseInt(flow[1], 16) : undefined,
    dstIp: wholeDst ? ipFromNumber(parseInt(o.match!.value, 16)) : undefined,
  };
}

interface Slot { minor: number; bucket: number; node: number; handle: string }

/** The client's place on the device: see the header. */
function slotOf(ip: string): Slot {
  const [, , third, fourth] = ip.split('.').map(Number);
  const minor = third * 256 + fourth;
  if (minor === 0 || minor === DEFAULT_MINOR) {
    refuse(`tc adapter: ${ip} maps to class ${classId(minor)}, which is ${minor === 0 ? 'the qdisc itself' : 'the default class'}; it cannot be shaped alone`);
  }
  const bucket = fourth;
  const node = third + 1; // node 0 asks the kernel to pick one
  return { minor, bucket, node, handle: `${hex(HASH_TABLE)}:${hex(bucket)}:${hex(node)}` };
}

function checkedIp(ip: string): string {
  if (typeof ip !== 'string' || !IPV4.test(ip)) refuse(`tc adapter: ${JSON.stringify(ip)} is not an IPv4 address (dotted quad, no leading zeros)`);
  return ip;
}

function validRate(mbit: number): boolean {
  return typeof mbit === 'number' && Number.isFinite(mbit) && mbit >= 0.001 && mbit <= 1_000_000;
}

function refuse(message: string): never {
  throw ApplicationFailure.create({ type: 'InvalidInput', nonRetryable: true, message });
}

const hex = (n: number) => n.toString(16);
const classId = (minor: number) => `${ROOT}${hex(minor)}`;
const ipFromNumber = (n: number) => [24, 16, 8, 0].map((shift) => (n >>> shift) & 0xff).join('.');

/** tc prints rates in SI units: `100Mbit`, `1500Kbit`, `10Gbit`, `800bit`. */
function parseRateMbps(text: string): number {
  const m = /^([\d.]+)([KMGT]?)bit$/.exec(text);
  if (!m) throw new Error(`tc adapter: cannot read the rate ${JSON.stringify(text)}`);
  return Number(m[1]) * { '': 1e-6, K: 1e-3, M: 1, G: 1e3, T: 1e6 }[m[2] as '' | 'K' | 'M' | 'G' | 'T'];
}

function runTc(tcPath: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tcPath, args, { timeout: TC_TIMEOUT_MS }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${tcPath} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

// One change at a time per device in this process: two applies reading "no root yet" would both add it.
const queues = new Map<string, Promise<unknown>>();
function serialized<T>(key: string, body: () => Promise<T>): Promise<T> {
  const run = (queues.get(key) ?? Promise.resolve()).then(body, body);
  queues.set(key, run.catch(() => undefined));
  return run;
}
