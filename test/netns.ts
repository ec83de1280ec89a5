// A gateway and a client in network namespaces of their own, joined by a veth pair, with an
// iperf3 server on the gateway: the smallest real network a shaper can be measured on. Needs root.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

const IP = '/usr/sbin/ip';
const IPERF3 = '/usr/bin/iperf3';
export const GATEWAY_IP = '10.0.1.1';
export const CLIENT_IP = '10.0.1.180';
/** Interface names (at most 15 characters); each is alone in its namespace, so they need not be unique. */
export const GATEWAY_DEVICE = 'vgw';
export const CLIENT_DEVICE = 'vcl';
const IPERF_PORT = '5201';

export interface NetnsPair {
  gatewayNs: string;
  clientNs: string;
  /** What the client receives from the gateway over `seconds` (iperf3 -R: the gateway sends, so its egress shaping applies). */
  measureMbps(seconds: number): Promise<number>;
  destroy(): Promise<void>;
}

/** Why namespaces cannot be used here, or undefined when they can (root, `ip netns add` works, iperf3 present). */
export function netnsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root (creating network namespaces needs CAP_SYS_ADMIN)';
  if (!existsSync(IPERF3)) return `${IPERF3} is missing (scripts/setup.sh --browser installs it)`;
  if (!existsSync(IP)) return `${IP} is missing (install iproute2)`;
  const probe = `np-probe-${process.pid}`;
  try {
    execFileSync(IP, ['netns', 'add', probe], { stdio: 'pipe' });
  } catch (error) {
    return `ip netns add fails: ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
  }
  execFileSync(IP, ['netns', 'del', probe], { stdio: 'pipe' });
  return undefined;
}

export function canUseNetns(): boolean {
  return netnsUnavailableReason() === undefined;
}

export async function createNetnsPair(): Promise<NetnsPair> {
  const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const gatewayNs = `np-gw-${suffix}`;
  const clientNs = `np-cl-${suffix}`;
  let server: ChildProcess | undefined;
  const destroy = async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server!.once('exit', resolve));
      server.kill('SIGTERM');
      await exited;
    }
    // Deleting a namespace deletes the veth end in it, and with it the peer.
    for (const ns of [gatewayNs, clientNs]) await run(IP, ['netns', 'del', ns]).catch(() => undefined);
  };
  try {
    await run(IP, ['netns', 'add', gatewayNs]);
    await run(IP, ['netns', 'add', clientNs]);
    await run(IP, ['link', 'add', GATEWAY_DEVICE, 'netns', gatewayNs, 'type', 'veth', 'peer', 'name', CLIENT_DEVICE, 'netns', clientNs]);
    for (const [ns, dev, address] of [[gatewayNs, GATEWAY_DEVICE, GATEWAY_IP], [clientNs, CLIENT_DEVICE, CLIENT_IP]]) {
      await run(IP, ['-n', ns, 'addr', 'add', `${address}/24`, 'dev', dev]);
      await run(IP, ['-n', ns, 'link', 'set', dev, 'up']);
      await run(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    server = await startIperfServer(gatewayNs);
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    gatewayNs,
    clientNs,
    async measureMbps(seconds) {
      const out = await run(IP, ['netns', 'exec', clientNs, IPERF3, '-c', GATEWAY_IP, '-p', IPERF_PORT, '-R', '-J', '-t', String(seconds)]);
      return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received.bits_per_second / 1e6;
    },
    destroy,
  };
}

/**
 * `ip netns exec` execs iperf3 itself, so the child is the server and killing it stops it.
 * --forceflush: into a pipe, iperf3 buffers "Server listening" until it exits.
 */
function startIperfServer(ns: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(IP, ['netns', 'exec', ns, IPERF3, '-s', '-p', IPERF_PORT, '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const notListening = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`iperf3 -s in ${ns} not listening after 10 s: ${output.trim()}`));
    }, 10_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('Server listening')) {
        clearTimeout(notListening);
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`iperf3 -s in ${ns} exited (${code}) before listening: ${output.trim()}`)));
  });
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
      else resolve(stdout);
    });
  });
}

/** How many filters match exactly this IP (`tc -j`), how many classes they send to, and how many classes the device has. */
export function rulesFor(ns: string, ip: string): { filters: number; classes: number; allClasses: number } {
  const tcJson = (args: string[]) => JSON.parse(execFileSync('/usr/sbin/tc', ['-n', ns, '-j', ...args], { encoding: 'utf8' }));
  const hexIp = ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0).toString(16);
  const filters = (tcJson(['filter', 'show', 'dev', GATEWAY_DEVICE, 'parent', '1:']) as { options?: { flowid?: string; match?: { value: string; mask: string } } }[])
    .filter((f) => f.options?.match?.value === hexIp && f.options.match.mask === 'ffffffff');
  const classIds = new Set(filters.map((f) => f.options!.flowid));
  // `tc -j class show` prints text for htb in iproute2 6.1.
  const classLines = execFileSync('/usr/sbin/tc', ['-n', ns, 'class', 'show', 'dev', GATEWAY_DEVICE], { encoding: 'utf8' }).split('\n').filter((line) => line.startsWith('class htb '));
  return { filters: filters.length, classes: classLines.filter((line) => [...classIds].some((id) => line.startsWith(`class htb ${id} `))).length, allClasses: classLines.length };
}

/**
 * A test that needs network namespaces (root): it runs, or fails saying why it cannot; with
 * NETPULSE_SKIP_NETNS=1 it is skipped, said on the console. Never a silent pass.
 */
export function netnsTest(name: string, body: () => Promise<void>): void {
  const missing = netnsUnavailableReason();
  if (missing !== undefined && process.env.NETPULSE_SKIP_NETNS === '1') {
    console.warn(`[netns] skipping "${name}": ${missing} (NETPULSE_SKIP_NETNS=1)`);
    test.skip(name, body);
    return;
  }
  test(name, async () => {
    if (missing) throw new Error(`cannot create network namespaces: ${missing}. Run as root, or set NETPULSE_SKIP_NETNS=1 to skip this test`);
    await body();
  });
}
