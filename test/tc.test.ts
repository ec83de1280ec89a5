// The tc adapter on a real (namespaced) network: iperf3 measures the rate before, under and
// after a 100 Mbit/s limit, and tc's own read-back shows one class and one filter per client.
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tcAdapter } from '../activities/enforcement/tc';
import { closeTestResources, tempDir } from './helpers';
import { CLIENT_IP, createNetnsPair, GATEWAY_DEVICE, netnsTest, rulesFor, type NetnsPair } from './netns';

const LIMIT_MBPS = 100;
const MEASURE_SECONDS = 2;
const client = { client: `${CLIENT_IP}/Computador`, ip: CLIENT_IP };
const neighbour = { client: '10.0.1.181/Celular', ip: '10.0.1.181' };


let net: NetnsPair | undefined;
afterAll(async () => {
  await net?.destroy();
  await closeTestResources();
});

netnsTest('a 100 Mbit/s limit: one class and one filter however often applied, measured within 10 %, gone after lift', async () => {
  net = await createNetnsPair();
  const adapter = tcAdapter({ device: GATEWAY_DEVICE, netns: net.gatewayNs });
  const unshaped = await net.measureMbps(MEASURE_SECONDS);
  expect(await adapter.inForce(client)).toBeUndefined();

  await adapter.apply({ ...client, limitMbps: LIMIT_MBPS }, 'key-1');
  await adapter.apply({ ...client, limitMbps: LIMIT_MBPS }, 'key-1');
  expect(rulesFor(net.gatewayNs, CLIENT_IP)).toEqual({ filters: 1, classes: 1, allClasses: 2 }); // and the default class
  expect(await adapter.inForce(client)).toEqual({ limitMbps: LIMIT_MBPS, detail: expect.stringContaining(`dst ${CLIENT_IP}/32`) });
  const shaped = await net.measureMbps(MEASURE_SECONDS);

  await adapter.apply({ ...neighbour, limitMbps: 20 }, 'key-2');
  expect((await adapter.inForce(neighbour))?.limitMbps).toBe(20);
  expect((await adapter.inForce(client))?.limitMbps).toBe(LIMIT_MBPS);

  // Same low 16 bits, same class: refused, and the client's limit untouched.
  const lookalike = { client: '10.9.1.180/Computador', ip: '10.9.1.180' };
  await expect(adapter.apply({ ...lookalike, limitMbps: 5 }, 'key-4')).rejects.toThrow('refusing rather than throttle the wrong client');
  expect(await adapter.inForce(lookalike)).toBeUndefined();
  expect((await adapter.inForce(client))?.limitMbps).toBe(LIMIT_MBPS);

  await adapter.lift(lookalike, 'key-5'); // not its class: left alone
  expect((await adapter.inForce(client))?.limitMbps).toBe(LIMIT_MBPS);
  await adapter.lift(client, 'key-3');
  const lifted = await net.measureMbps(MEASURE_SECONDS);
  expect(await adapter.inForce(client)).toBeUndefined();
  expect(rulesFor(net.gatewayNs, CLIENT_IP)).toEqual({ filters: 0, classes: 0, allClasses: 2 }); // the default and the neighbour's
  expect(await adapter.lift(client, 'key-3')).toContain('no limit in force');
  expect((await adapter.inForce(neighbour))?.limitMbps).toBe(20);

  console.log(`[tc.test] iperf3 -R to ${CLIENT_IP}: unshaped ${unshaped.toFixed(0)} Mbit/s, shaped ${shaped.toFixed(1)} Mbit/s (limit ${LIMIT_MBPS}), after lift ${lifted.toFixed(0)} Mbit/s`);
  expect(unshaped).toBeGreaterThan(5 * LIMIT_MBPS); // else the limit proves nothing here
  expect(Math.abs(shaped - LIMIT_MBPS)).toBeLessThanOrEqual(0.1 * LIMIT_MBPS);
  expect(lifted).toBeGreaterThan(5 * LIMIT_MBPS);
});

test('hostile input is refused with a reason, and tc never runs', async () => {
  // A stand-in tc that leaves a mark if anything calls it.
  const dir = tempDir('tc-hostile');
  const mark = path.join(dir, 'tc-ran');
  const fakeTc = path.join(dir, 'tc');
  writeFileSync(fakeTc, `#!/bin/sh\ntouch '${mark}'\n`);
  chmodSync(fakeTc, 0o755);

  for (const [options, reason] of [
    [{ device: 'eth0 root', tcPath: fakeTc }, 'is not an interface name'],
    [{ device: 'eth0;reboot', tcPath: fakeTc }, 'is not an interface name'],
    [{ device: '-j', tcPath: fakeTc }, 'is not an interface name'],
    [{ device: 'averyveryverylongname', tcPath: fakeTc }, 'is not an interface name'],
    [{ device: 'vgw', netns: '../../etc', tcPath: fakeTc }, 'is not a namespace name'],
    [{ device: 'vgw', netns: 'gw ns', tcPath: fakeTc }, 'is not a namespace name'],
    [{ device: 'vgw', rootRateMbit: Number.NaN, tcPath: fakeTc }, 'is not a rate'],
  ] as const) {
    expect(() => tcAdapter(options)).toThrow(reason);
  }

  const adapter = tcAdapter({ device: 'vgw', tcPath: fakeTc });
  for (const ip of ['10.0.1.1; rm -rf /', '10.0.1.1 ', '10.0.1', '10.0.1.256', '010.0.1.1', '::1', '10.0.1.1/24', '$(reboot)', '']) {
    const target = { client: `${ip}/Computador`, ip };
    await expect(adapter.apply({ ...target, limitMbps: LIMIT_MBPS }, 'k')).rejects.toThrow('is not an IPv4 address');
    await expect(adapter.lift(target, 'k')).rejects.toThrow('is not an IPv4 address');
    await expect(adapter.inForce(target)).rejects.toThrow('is not an IPv4 address');
  }
  for (const limitMbps of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '100; reboot' as unknown as number]) {
    await expect(adapter.apply({ ...client, limitMbps }, 'k')).rejects.toThrow('is not a rate above 0');
  }
  // 10.0.0.0 and 10.0.255.255 would be the qdisc's own id and the default class.
  for (const ip of ['10.0.0.0', '10.1.255.255']) {
    await expect(adapter.apply({ client: ip, ip, limitMbps: LIMIT_MBPS }, 'k')).rejects.toThrow('cannot be shaped alone');
  }
  expect(existsSync(mark)).toBe(false);
});
