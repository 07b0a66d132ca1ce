/**
 * The kernel fast path (`--table=0`, native/bpf/fastpath.bpf.c) on loopback: confirmed streams are handed to
 * the eBPF program, which forwards their RTP without the engine seeing it; the engine's counters include
 * what the kernel forwarded; every rule change brings a stream back to userspace. Needs root (CAP_BPF +
 * CAP_NET_ADMIN) and a build with clang + libbpf (scripts/install-test-deps.sh installs them).
 * Relay streams use ports 38100-38999; test parties use ephemeral ports.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, StreamCounters, StreamRule } from '../../src/dataplane/types';
import { Party, rtpPacket, rtcpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(38100, 38999);

let engine: DataPlane | null = null;
let parties: Party[] = [];

afterEach(async () => {
  engine?.close();
  engine = null;
  for (const p of parties) await p.close();
  parties = [];
});

function start(table = 0): DataPlane {
  engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 4 << 20, table, kernelAddresses: [LO] });
  return engine;
}

async function party(address = LO): Promise<Party> {
  const p = await Party.open(address);
  parties.push(p);
  return p;
}

function counters(dp: DataPlane, id: number): StreamCounters {
  const c = dp.readCounters([id]).get(id);
  if (!c) throw new Error(`no counters for stream ${id}`);
  return c;
}

/** A and B on `address`, relay streams 1 (A's side, forwards to B) and 2 (B's side). */
async function call(dp: DataPlane, address = LO, ruleA: Partial<StreamRule> = {}) {
  const a = await party(address);
  const b = await party(address);
  const port = await relayPorts.take(4, address);
  const spec = (id: number, localPort: number) => ({ id, component: 'rtp' as const, localAddress: address, localPort });
  dp.addStream(spec(1, port), rule({ expected: ep(a), sink: 2, ...ruleA }));
  dp.addStream(spec(2, port + 2), rule({ expected: ep(b), sink: 1 }));
  await dp.settled();
  return { a, b, portA: port, portB: port + 2 };
}

/** Each party sends `count` RTP packets (seq from `first`), paced so nothing queues. */
async function exchange(c: { a: Party; b: Party; portA: number; portB: number }, first: number, count: number, address = LO) {
  for (let i = first; i < first + count; i++) {
    await c.a.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portA, address);
    await c.b.send(rtpPacket({ seq: i, ssrc: 0xb }), c.portB, address);
    await sleep(1);
  }
}

const seqsOf = (p: Party) => p.received.map((r) => r.data.readUInt16BE(2));

describe('kernel fast path (--table=0)', () => {
  it('starts: the program is attached with a bpf_link (tcx) to lo', () => {
    const dp = start();
    expect(dp.info().kernelPath).toMatchObject({ active: true, attach: 'tcx', reason: '' });
    expect(dp.info().kernelPath?.interfaces).toContain('lo');
  });

  it('forwards a confirmed call in the kernel: counters include it, in order, from the relay socket', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 200);
    expect(await waitUntil(() => c.b.count === 200 && c.a.count === 200)).toBe(true);
    const one = counters(dp, 1);
    expect(one.inKernel).toBe(true);
    expect(one.packets).toBe(200);
    expect(one.bytes).toBe(200 * 172);
    // Most went through the kernel (the first ones confirmed the endpoints in userspace).
    expect(one.kernelPackets).toBeGreaterThan(150);
    expect(counters(dp, 2).kernelPackets).toBeGreaterThan(150);
    expect(seqsOf(c.b)).toEqual([...Array(200).keys()]);
    // What B receives comes from B's relay socket, the address in B's SDP.
    expect(new Set(c.b.received.map((r) => `${r.address}:${r.port}`))).toEqual(new Set([`${LO}:${c.portB}`]));
    expect(c.b.received.every((r) => r.data.equals(rtpPacket({ seq: r.data.readUInt16BE(2), ssrc: 0xa })))).toBe(true);
    const totals = dp.totals();
    expect(totals.kernelPackets).toBe(one.kernelPackets! + counters(dp, 2).kernelPackets!);
    expect(totals.packets).toBe(400);
  });

  it('RTCP stays in userspace; an updateStream takes the stream back, and it goes down again', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 50);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    const kernelBefore = counters(dp, 1).kernelPackets!;
    // RTCP to the RTP port (rtcp-mux style) is not RTP: the program hands it up, the engine counts it as a
    // stray (no muxed stream here) and it never reaches B.
    await c.a.send(rtcpPacket(0xa), c.portA, LO);
    await sleep(50);
    expect(counters(dp, 1).kernelPackets).toBe(kernelBefore);
    expect(counters(dp, 1).errors).toBe(1);
    dp.updateStream(1, rule({ expected: ep(c.a), sink: 2, signalGeneration: 2 }));
    await dp.settled();
    expect(counters(dp, 1).inKernel).toBe(false);
    await exchange(c, 50, 50);
    expect(await waitUntil(() => c.b.count === 100)).toBe(true);
    expect(counters(dp, 1).inKernel).toBe(true);
    expect(seqsOf(c.b)).toEqual([...Array(100).keys()]);
    expect(counters(dp, 1).packets).toBe(100);
  });

  it('a packet from a new source goes up, and userspace (not the kernel) decides: strict-source drops it', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    const stranger = await party();
    await stranger.send(rtpPacket({ seq: 999, ssrc: 0xdead }), c.portA, LO);
    // Not strict: userspace forwards it (as without the kernel path), and the stream stays in the kernel.
    expect(await waitUntil(() => c.b.count === 31)).toBe(true);
    expect(counters(dp, 1).inKernel).toBe(true);
    // strict-source: the rule change brings it up, and it stays up (a strict stream checks every source).
    dp.updateStream(1, rule({ expected: ep(c.a), sink: 2, strictSource: true }));
    await dp.settled();
    await stranger.send(rtpPacket({ seq: 1000, ssrc: 0xdead }), c.portA, LO);
    await exchange(c, 30, 20);
    expect(await waitUntil(() => c.b.count === 51)).toBe(true);
    await sleep(50);
    expect(c.b.count).toBe(51);
    expect(counters(dp, 1).inKernel).toBe(false);
    expect(seqsOf(c.b).filter((s) => s !== 999)).toEqual([...Array(50).keys()]);
  });

  it('a re-INVITE of the sink (new endpoint) takes the sender back and forwards to the new address', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    const b2 = await party();
    dp.updateStream(2, rule({ expected: ep(b2), sink: 1, signalGeneration: 2 }));
    await dp.settled();
    expect(counters(dp, 1).inKernel).toBe(false);
    for (let i = 30; i < 60; i++) {
      await c.a.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portA, LO);
      await b2.send(rtpPacket({ seq: i, ssrc: 0xb }), c.portB, LO);
      await sleep(1);
    }
    expect(await waitUntil(() => b2.count === 30)).toBe(true);
    expect(c.b.count).toBe(30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    expect(seqsOf(b2)).toEqual([...Array(30).keys()].map((i) => i + 30));
  });

  it('DTMF detection in the kernel path: telephone-event packets go up (events reported, in order; blocked ones dropped)', async () => {
    const dp = start();
    const dtmf: number[] = [];
    dp.onEvents((batch) => {
      for (const e of batch) if (e.type === 'dtmf' && e.id === 1) dtmf.push(e.event);
    });
    const c = await call(dp, LO, { dtmfPayloadType: 101 });
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    const kernelBefore = counters(dp, 1).kernelPackets!;
    /** RFC 4733 event 5: 3 packets in progress, then 3 end packets (one event), with seq from `first`. */
    const sendEvent = async (first: number) => {
      for (let i = 0; i < 6; i++) {
        const p = rtpPacket({ seq: first + i, ssrc: 0xa, payloadType: 101, payloadBytes: 4, timestamp: first * 160 });
        p[12] = 5;
        p[13] = (i >= 3 ? 0x80 : 0) | 10;
        p.writeUInt16BE(160 * (i + 1), 14);
        await c.a.send(p, c.portA, LO);
        await sleep(1);
      }
    };
    await sendEvent(30);
    for (let i = 36; i < 60; i++) await c.a.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portA, LO);
    expect(await waitUntil(() => c.b.count === 60 && dtmf.length === 1)).toBe(true);
    expect(dtmf).toEqual([5]);
    expect(seqsOf(c.b)).toEqual([...Array(60).keys()]);
    expect(counters(dp, 1).kernelPackets).toBeGreaterThan(kernelBefore);  // voice went on in the kernel
    expect(counters(dp, 1).inKernel).toBe(true);
    // block DTMF: the events are still reported, and never reach B.
    dp.updateStream(1, rule({ expected: ep(c.a), sink: 2, dtmfPayloadType: 101, blockDtmf: true }));
    await dp.settled();
    for (let i = 60; i < 70; i++) await c.a.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portA, LO);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    await sendEvent(70);
    for (let i = 76; i < 90; i++) await c.a.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portA, LO);
    expect(await waitUntil(() => c.b.count === 84 && dtmf.length === 2)).toBe(true);
    await sleep(50);
    expect(seqsOf(c.b)).toEqual([...Array(90).keys()].filter((s) => s < 70 || s >= 76));
  });

  it('block media and ICE keep a stream in userspace', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true && counters(dp, 2).inKernel === true)).toBe(true);
    dp.updateStream(1, rule({ expected: ep(c.a), sink: 2, blockMedia: true }));
    dp.updateStream(2, rule({ expected: ep(c.b), sink: 1, ice: { localUfrag: 'uuuu', localPwd: 'p'.repeat(22), remoteUfrag: null, remotePwd: null, controlling: false, lite: true, tieBreaker: '0123456789abcdef', remoteCandidates: [] } }));
    await dp.settled();
    await exchange(c, 30, 20);
    await sleep(50);
    expect(counters(dp, 1).inKernel).toBe(false);
    expect(counters(dp, 2).inKernel).toBe(false);
  });

  it('recording start takes a stream back (every packet recorded), recording stop lets it go down again', async () => {
    const dp = start();
    const c = await call(dp);
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true && counters(dp, 2).inKernel === true)).toBe(true);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-kernel-rec-'));
    try {
      dp.startRecording({ id: 7, path: path.join(dir, 'call.pcap'), format: 'raw', egress: false });
      dp.setRecordingStreams(7, [1, 2]);
      await dp.settled();
      expect(counters(dp, 1).inKernel).toBe(false);
      expect(counters(dp, 2).inKernel).toBe(false);
      await exchange(c, 30, 40);
      expect(await waitUntil(() => c.b.count === 70 && c.a.count === 70)).toBe(true);
      expect(counters(dp, 1).inKernel).toBe(false);
      const rec = dp.stopRecording(7)!;
      expect(rec.queued).toBe(80);  // both directions, every packet since the start: none went past userspace
      await exchange(c, 70, 30);
      expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
      expect(seqsOf(c.b)).toEqual([...Array(100).keys()]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stream whose media stops goes back to userspace when it is reported idle, and down again on resume', async () => {
    const dp = start();
    const events: string[] = [];
    dp.onEvents((batch) => events.push(...batch.filter((e) => e.id === 1).map((e) => e.type)));
    const c = await call(dp);
    await exchange(c, 0, 30);
    expect(await waitUntil(() => counters(dp, 1).inKernel === true)).toBe(true);
    // The engine's idle detection sees the kernel's last-packet time: not idle while the kernel forwards.
    for (let i = 0; i < 30; i++) {
      await exchange(c, 30 + i * 5, 5);
      await sleep(200);
    }
    expect(events).not.toContain('idle');
    expect(await waitUntil(() => events.includes('idle'), 9000, 50)).toBe(true);
    expect(counters(dp, 1).inKernel).toBe(false);
    await exchange(c, 200, 20);
    expect(await waitUntil(() => events.includes('resumed') && counters(dp, 1).inKernel === true)).toBe(true);
  }, 30_000);

  it('IPv6: forwards in the kernel with a correct checksum', async () => {
    const dp = start();
    engine = dp;
    const c = await call(dp, '::1');
    await exchange(c, 0, 100, '::1');
    expect(await waitUntil(() => c.b.count === 100 && c.a.count === 100)).toBe(true);
    expect(counters(dp, 1).kernelPackets).toBeGreaterThan(50);
    expect(seqsOf(c.b)).toEqual([...Array(100).keys()]);
  });

  it('--table=-1: nothing is asked of the kernel', async () => {
    const dp = start(-1);
    expect(dp.info().kernelPath).toBeUndefined();
    const c = await call(dp);
    await exchange(c, 0, 20);
    expect(await waitUntil(() => c.b.count === 20)).toBe(true);
    expect(counters(dp, 1).inKernel).toBeUndefined();
  });
});
