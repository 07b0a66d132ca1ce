/**
 * rtpengine's userspace/kernel split in `statistics`, `list totals` (HTTP /cli) and `/metrics`, with the real
 * `ngrelay --table=0` (the eBPF fast path) and one call on loopback: relayed packets/bytes per side, the
 * per-second rates, and the userspace-only / kernel-only / mixed media stream counts. The key names and
 * their order are rtpengine 10.5's, taken from a real `rtpengine --table=-1` side by side.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { relayArgs, LOOPBACK } from '../support/relay';
import { startNgProcess, type ManagedProcess } from '../support/process';
import { NgRawClient } from '../support/ng-client';
import { freeMediaRange, freeTcpPort } from '../support/free-ports';
import { isDict, type BDict, type BValue } from '../support/bencode';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { startRtpengine } from '../support/rtpengine';
import type { RelayUnderTest } from '../support/relay';

const stoppers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stoppers.splice(0).reverse()) await stop();
});

function sdp(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

function mPort(reply: BDict): number {
  const m = /m=audio (\d+) /.exec((reply['sdp'] as Buffer | undefined)?.toString('latin1') ?? '');
  if (!m) throw new Error('offer/answer without an m= line');
  return Number(m[1]);
}

function group(reply: BDict, name: string): BDict {
  const stats = reply['statistics'];
  const g = stats !== undefined && isDict(stats) ? stats[name] : undefined;
  if (g === undefined || !isDict(g)) throw new Error(`statistics without ${name}`);
  return g;
}

const num = (v: BValue | undefined): number => Number(v);

interface Relay {
  ng: NgRawClient;
  httpPort: number;
  proc: ManagedProcess;
}

async function startNgrelay(table: number): Promise<Relay> {
  const ngPort = await freeTcpPort();
  const httpPort = await freeTcpPort();
  const range = await freeMediaRange(40);
  const args = relayArgs({ ngPort, ...range, extraArgs: [`--listen-http=${LOOPBACK}:${httpPort}`] }).map((a) =>
    a === '--table=-1' ? `--table=${table}` : a,
  );
  const proc = await startNgProcess(
    { name: 'ngrelay', command: process.execPath, args: [NGRELAY_BIN, ...args], cwd: REPO_ROOT },
    { host: LOOPBACK, port: ngPort, deadlineMs: 15_000 },
  );
  const ng = await NgRawClient.open(ngPort);
  stoppers.push(async () => {
    ng.close();
    await proc.stop();
  });
  return { ng, httpPort, proc };
}

interface Call {
  a: Party;
  b: Party;
  portForA: number;
  portForB: number;
  sent: number;
}

async function call(ng: NgRawClient, callId: string): Promise<Call> {
  const a = await Party.open();
  const b = await Party.open();
  stoppers.push(async () => {
    await a.close();
    await b.close();
  });
  const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(a.port) });
  const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) });
  return { a, b, portForA: mPort(answer.dict), portForB: mPort(offer.dict), sent: 0 };
}

/** `count` packets each way, one every `gapMs`; resolves once both parties have everything sent so far. */
async function send(c: Call, count: number, gapMs = 2): Promise<void> {
  for (let i = 0; i < count; i++) {
    const seq = c.sent + i;
    c.a.sendNoWait(rtpPacket({ seq, ssrc: 0xa }), c.portForA, LOOPBACK);
    c.b.sendNoWait(rtpPacket({ seq, ssrc: 0xb }), c.portForB, LOOPBACK);
    await sleep(gapMs);
  }
  c.sent += count;
  expect(await waitUntil(() => c.a.count === c.sent && c.b.count === c.sent, 5000)).toBe(true);
}

async function httpText(port: number, path: string): Promise<string> {
  const res = await fetch(`http://${LOOPBACK}:${port}${path}`);
  expect(res.status).toBe(200);
  return res.text();
}

function metric(text: string, name: string, type: string): number {
  const m = new RegExp(`^${name}\\{type="${type}"\\} (\\S+)$`, 'm').exec(text);
  if (!m) throw new Error(`no ${name}{type="${type}"} in /metrics`);
  return Number(m[1]);
}

function cliStat(text: string, label: string): number {
  const escaped = label.replace(/[()/]/g, (c) => `\\${c}`);
  const m = new RegExp(`^ ${escaped}\\s*:\\s*(\\d+)`, 'm').exec(text);
  if (!m) throw new Error(`no "${label}" in list totals:\n${text}`);
  return Number(m[1]);
}

/** The keys of a group that carry the split (rtpengine's names contain rate, relayed or media_). */
const splitKeys = (g: BDict): string[] => Object.keys(g).filter((k) => /rate|^relayed|^media_/.test(k));

describe('statistics: userspace and kernel counted apart, as rtpengine does', () => {
  it('has rtpengine 10.5 key names and order for the split', async () => {
    const ngPort = await freeTcpPort();
    const range = await freeMediaRange(20);
    const rtpengine: RelayUnderTest = await startRtpengine({ ngPort, ...range });
    stoppers.push(() => rtpengine.stop());
    const refNg = await NgRawClient.open(ngPort);
    stoppers.push(async () => refNg.close());
    const reference = (await refNg.request({ command: 'statistics' })).dict;
    const relay = await startNgrelay(0);
    const candidate = (await relay.ng.request({ command: 'statistics' })).dict;
    for (const name of ['currentstatistics', 'totalstatistics']) {
      const keys = splitKeys(group(reference, name));
      expect(keys.length).toBeGreaterThan(5);
      expect(splitKeys(group(candidate, name))).toEqual(keys);
    }
  });

  it('a call in the kernel: relayed packets split, rates per side, media_mixed then media_kernel; list totals and /metrics agree', async () => {
    const relay = await startNgrelay(0);
    expect(relay.proc.stderrText + relay.proc.stdoutText).toMatch(/kernel fast path on/);
    const c = await call(relay.ng, 'ks-1');
    // Userspace forwards the first packets (learning), then the kernel: both within the last 2 s.
    await send(c, 100);
    let current = group((await relay.ng.request({ command: 'statistics' })).dict, 'currentstatistics');
    expect([num(current['media_userspace']), num(current['media_kernel']), num(current['media_mixed'])]).toEqual([0, 0, 2]);

    // Over 2 s later only the kernel has forwarded: kernel-only, and the rates are all the kernel's.
    await sleep(2100);
    await send(c, 600, 2);
    const reply = (await relay.ng.request({ command: 'statistics' })).dict;
    current = group(reply, 'currentstatistics');
    expect([num(current['media_userspace']), num(current['media_kernel']), num(current['media_mixed'])]).toEqual([0, 2, 0]);
    expect(num(current['packetrate_kernel'])).toBeGreaterThan(100);
    expect(num(current['packetrate_user'])).toBe(0);
    expect(num(current['packetrate'])).toBe(num(current['packetrate_kernel']));
    // Both rates are rounded from the same second: within one packet of each other.
    const size = rtpPacket({ seq: 0, ssrc: 0 }).length;
    expect(Math.abs(num(current['byterate_kernel']) - num(current['packetrate_kernel']) * size)).toBeLessThanOrEqual(size);

    const total = group(reply, 'totalstatistics');
    const kernel = num(total['relayedpackets_kernel']);
    const user = num(total['relayedpackets_user']);
    expect(user + kernel).toBe(2 * c.sent);
    expect(num(total['relayedpackets'])).toBe(2 * c.sent);
    expect(kernel).toBeGreaterThanOrEqual(2 * 600);
    expect(user).toBeGreaterThan(0);
    expect(num(total['relayedbytes_kernel']) + num(total['relayedbytes_user'])).toBe(num(total['relayedbytes']));
    expect(num(total['relayedpacketerrors_kernel'])).toBe(0);

    // The same figures in rtpengine-ctl's list totals (over HTTP) and in /metrics.
    const totals = await httpText(relay.httpPort, '/cli/list+totals');
    expect(cliStat(totals, 'Total relayed packets (kernel)')).toBe(kernel);
    expect(cliStat(totals, 'Total relayed packets (userspace)')).toBe(user);
    expect(cliStat(totals, 'Kernel-only media streams')).toBe(2);
    expect(cliStat(totals, 'Mixed kernel/userspace media streams')).toBe(0);
    const metrics = await httpText(relay.httpPort, '/metrics');
    expect(metric(metrics, 'rtpengine_packets_total', 'kernel')).toBe(kernel);
    expect(metric(metrics, 'rtpengine_packets_total', 'userspace')).toBe(user);
    expect(metric(metrics, 'rtpengine_mediastreams', 'kernel')).toBe(2);
    expect(metric(metrics, 'rtpengine_mediastreams', 'userspace')).toBe(0);
    expect(metric(metrics, 'rtpengine_mediastreams', 'mixed')).toBe(0);
  });

  it('without the kernel path every packet and stream is userspace', async () => {
    const relay = await startNgrelay(-1);
    const c = await call(relay.ng, 'ks-2');
    await send(c, 600, 2);
    const reply = (await relay.ng.request({ command: 'statistics' })).dict;
    const current = group(reply, 'currentstatistics');
    expect([num(current['media_userspace']), num(current['media_kernel']), num(current['media_mixed'])]).toEqual([2, 0, 0]);
    expect(num(current['packetrate_user'])).toBeGreaterThan(100);
    expect(num(current['packetrate_kernel'])).toBe(0);
    const total = group(reply, 'totalstatistics');
    expect(num(total['relayedpackets_user'])).toBe(2 * c.sent);
    expect(num(total['relayedpackets_kernel'])).toBe(0);
    const metrics = await httpText(relay.httpPort, '/metrics');
    expect(metric(metrics, 'rtpengine_mediastreams', 'userspace')).toBe(2);
  });
});
