/**
 * Call-quality figures of the native engine on real loopback sockets: what the relay measures from RTP
 * (loss, duplicates, reordering, jitter), RTCP read after arrival (SR/RR, LSR/DLSR round trip across the two
 * parties' streams, also rtcp-mux), and bad RTCP counted and dropped without touching forwarding or any
 * other stream's figures. Relay streams use ports 38000-38999; parties use ephemeral ports.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { loadSrtpTestBinding } from '../../src/dataplane/srtp-binding';
import type { DataPlane, SrtpKeys, StreamQuality, StreamRule } from '../../src/dataplane/types';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { rr, sdes, sr } from '../support/rtcp-builders';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(38000, 38999);

let engine: DataPlane;
let parties: Party[] = [];
let ids: number[] = [];

beforeEach(() => {
  engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20 });
});

afterEach(async () => {
  for (const id of ids) engine.removeStream(id);
  engine.close();
  await Promise.all(parties.map((p) => p.close()));
  parties = [];
  ids = [];
});

async function party(): Promise<Party> {
  const p = await Party.open(LO);
  parties.push(p);
  return p;
}

function add(id: number, port: number, r: StreamRule, component: 'rtp' | 'rtcp' = 'rtp', muxedWith?: number): void {
  engine.addStream({ id, component, localAddress: LO, localPort: port, muxedWith }, r);
  ids.push(id);
}

async function quality(id: number): Promise<StreamQuality> {
  const q = (await engine.readQualities([id])).get(id);
  if (!q) throw new Error(`no quality for stream ${id}`);
  return q;
}

/** A and B with RTP streams 1/2 and RTCP streams 3/4 (own ports, or B's muxed onto its RTP socket). */
async function call(bRtcp: 'own-port' | 'muxed' = 'own-port') {
  const a = await party();
  const b = await party();
  const aRtcp = await party();
  const bRtcpParty = bRtcp === 'muxed' ? b : await party();
  const port = await relayPorts.take(4);
  add(1, port, rule({ expected: ep(a), sink: 2, clockRate: 8000 }));
  add(2, port + 2, rule({ expected: ep(b), sink: 1, clockRate: 8000 }));
  add(3, port + 1, rule({ expected: ep(aRtcp), sink: 4 }), 'rtcp');
  if (bRtcp === 'own-port') add(4, port + 3, rule({ expected: ep(bRtcpParty), sink: 3 }), 'rtcp');
  else add(4, 0, rule({ expected: ep(b), sink: 3 }), 'rtcp', 2);
  return { a, b, aRtcp, bRtcp: bRtcpParty, port, bRtcpPort: bRtcp === 'muxed' ? port + 2 : port + 3 };
}

describe('RTP-derived figures', () => {
  it('counts loss, duplicates and reordering from sequence numbers exactly', async () => {
    const { a, b, port } = await call();
    // 1000..1019 with 1005 and 1012 missing, 1007 sent twice, 1010 sent after 1011.
    const order = [1000, 1001, 1002, 1003, 1004, 1006, 1007, 1007, 1008, 1009, 1011, 1010, 1013, 1014, 1015, 1016, 1017, 1018, 1019];
    for (const seq of order) await a.send(rtpPacket({ seq, ssrc: 0xabc }), port, LO);
    expect(await waitUntil(() => b.count === order.length)).toBe(true);
    const r = (await quality(1)).rtp;
    expect(r).toMatchObject({ ssrc: 0xabc, received: 18, expected: 20, lost: 2, duplicates: 1, reordered: 1, lastSeq: 1019 });
    // Forwarding is untouched by measuring: every packet (the duplicate too) reached B.
    expect((await quality(2)).rtp).toBeNull();
  });

  it('measures jitter from timestamps and arrival times: steady 20 ms is ~0, late packets raise it', async () => {
    const { a, b, port } = await call();
    for (let i = 0; i < 15; ++i) {
      await a.send(rtpPacket({ seq: i, ssrc: 1, timestamp: i * 160 }), port, LO);
      await sleep(20);
    }
    await waitUntil(() => b.count === 15);
    const steady = (await quality(1)).rtp?.jitterMs ?? -1;
    expect(steady).toBeGreaterThanOrEqual(0);
    expect(steady).toBeLessThan(5);
    // Alternating 0 ms and 40 ms gaps for 20 ms of media: |D| = 20 ms each time, the estimate climbs to ~10 ms+.
    for (let i = 15; i < 45; ++i) {
      await a.send(rtpPacket({ seq: i, ssrc: 1, timestamp: i * 160 }), port, LO);
      await sleep(i % 2 ? 40 : 0);
    }
    await waitUntil(() => b.count === 45);
    expect((await quality(1)).rtp?.jitterMs ?? 0).toBeGreaterThan(8);
  });

  it('starts afresh on a new SSRC and counts the change', async () => {
    const { a, b, port } = await call();
    for (let seq = 0; seq < 5; ++seq) await a.send(rtpPacket({ seq, ssrc: 1 }), port, LO);
    for (let seq = 500; seq < 503; ++seq) await a.send(rtpPacket({ seq, ssrc: 2 }), port, LO);
    await waitUntil(() => b.count === 8);
    expect((await quality(1)).rtp).toMatchObject({ ssrc: 2, received: 3, lost: 0, ssrcChanges: 1 });
  });
});

describe('RTCP figures', () => {
  for (const mode of ['own-port', 'muxed'] as const) {
    it(`takes the round trip from LSR/DLSR across both parties' streams (${mode} RTCP on B)`, async () => {
      const c = await call(mode);
      // A's SR through the relay to B.
      await c.aRtcp.send(Buffer.concat([sr(0xa, 0x0001abcd, 0x12340000), sdes(0xa, 'a')]), c.port + 1, LO);
      expect(await waitUntil(() => c.bRtcp.count === 1)).toBe(true);
      const lsr = ((0xabcd << 16) | 0x1234) >>> 0;
      // B answers 80 ms later and says it held the SR 30 ms: the relay <-> B leg is then ~50 ms.
      await sleep(80);
      const dlsr = Math.round(0.03 * 65536);
      await c.bRtcp.send(rr(0xb, [{ ssrc: 0xa, fractionLost: 51, cumulativeLost: 7, jitter: 160, lsr, dlsr }]), c.bRtcpPort, LO);
      expect(await waitUntil(() => c.aRtcp.count === 1)).toBe(true);
      const q = (await quality(4)).rtcp;
      expect(q).toMatchObject({ parsed: 1, malformed: 0, receiverReports: 1, reporterSsrc: 0xb, cumulativeLost: 7, fractionLost: 51, jitter: 160 });
      expect(q.rttLegUs).toBeGreaterThan(45_000);
      expect(q.rttLegUs).toBeLessThan(80_000);
      // One sample; no MOS until A's leg is known too (rtpengine's MOS-CQ needs the end-to-end RTT).
      expect(q.samples).toHaveLength(1);
      expect(q.samples[0]).toMatchObject({ mos: 0, rttUs: 0, jitterMs: 20, packetLoss: 19 });
      expect((await quality(3)).rtcp).toMatchObject({ parsed: 1, senderReports: 1, receiverReports: 0, reporterSsrc: null });
    });
  }

  it('drops and counts bad RTCP (truncated, lying count, looping) without stopping forwarding or touching other streams', async () => {
    const c = await call();
    const good = Buffer.concat([rr(0xa, [{ ssrc: 0xb, fractionLost: 10 }]), sdes(0xa, 'a')]);
    const truncated = Buffer.concat([rr(0xa, [{ ssrc: 0xb }]), sdes(0xa, 'a').subarray(0, 6)]);
    const lyingCount = Buffer.from(good);
    lyingCount[0] = 0x80 | 5;
    const looping = Buffer.concat(Array.from({ length: 40 }, () => rr(0xa)));
    for (const bad of [truncated, lyingCount, looping]) await c.aRtcp.send(bad, c.port + 1, LO);
    await c.aRtcp.send(good, c.port + 1, LO);
    await c.a.send(rtpPacket({ seq: 1, ssrc: 0xa }), c.port, LO);
    expect(await waitUntil(() => c.bRtcp.count === 1 && c.b.count === 1)).toBe(true);
    await sleep(50);
    expect(c.bRtcp.received.map((r) => r.data.length)).toEqual([good.length]);
    expect((await quality(3)).rtcp).toMatchObject({ parsed: 1, malformed: 3, reporterSsrc: 0xa, fractionLost: 10 });
    expect(engine.readCounters([3]).get(3)?.errors).toBe(3);
    expect((await quality(4)).rtcp).toMatchObject({ parsed: 0, malformed: 0 });
    expect(engine.totals().malformed).toBeGreaterThanOrEqual(3);
  });
});

describe('SRTCP', () => {
  const srtp = loadSrtpTestBinding();
  const keys = (): SrtpKeys => ({
    suite: 'AES_CM_128_HMAC_SHA1_80',
    key: randomBytes(16),
    salt: randomBytes(14),
    unencryptedSrtp: false,
    unencryptedSrtcp: false,
    unauthenticatedSrtp: false,
  });

  it('reads SRTCP after decryption (rtcp-mux), and pass-through SRTCP from a decrypted copy, forwarded as it came', async () => {
    const a = await party();
    const b = await party();
    const port = await relayPorts.take(4);
    const ka = keys();
    const kb = keys();
    const decrypting = { crypto: { inbound: ka, outbound: null, recrypt: false } };
    add(1, port, rule({ expected: ep(a), sink: 3, ...decrypting }));
    add(2, 0, rule({ expected: ep(a), sink: 4, ...decrypting }), 'rtcp', 1);
    const passing = { crypto: { inbound: kb, outbound: kb, recrypt: false } };
    add(3, port + 2, rule({ expected: ep(b), sink: 1, ...passing }));
    add(4, 0, rule({ expected: ep(b), sink: 2, ...passing }), 'rtcp', 3);
    const fromA = new srtp.SrtpTestContext(ka.suite, ka.key, ka.salt);
    const report = Buffer.concat([rr(0xa, [{ ssrc: 0xb, fractionLost: 64, cumulativeLost: 12 }]), sdes(0xa, 'a')]);
    const sealed = fromA.protectRtcp(report).packet;
    if (!sealed) throw new Error('protectRtcp failed');
    await a.send(sealed, port, LO);
    expect(await waitUntil(() => b.count === 1)).toBe(true);
    expect((await quality(2)).rtcp).toMatchObject({ parsed: 1, malformed: 0, reporterSsrc: 0xa, fractionLost: 64, cumulativeLost: 12 });
    const fromB = new srtp.SrtpTestContext(kb.suite, kb.key, kb.salt);
    const sealedB = fromB.protectRtcp(rr(0xb, [{ ssrc: 0xa }])).packet;
    if (!sealedB) throw new Error('protectRtcp failed');
    await b.send(sealedB, port + 2, LO);
    expect(await waitUntil(() => a.count === 1)).toBe(true);
    expect(a.received[0]?.data.equals(sealedB)).toBe(true); // passed through: the same bytes
    expect((await quality(4)).rtcp).toMatchObject({ parsed: 1, malformed: 0, reporterSsrc: 0xb });
  });
});

describe('readQualities: copies taken without blocking the JS thread', () => {
  it.each([false, true])('returns the figures of streams removed right after the request (batchChanges %s)', async (batchChanges) => {
    engine.close();
    engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20, batchChanges });
    const { a, b, port } = await call();
    await engine.settled();
    for (let seq = 500; seq < 510; seq++) await a.send(rtpPacket({ seq, ssrc: 0x77 }), port, LO);
    expect(await waitUntil(() => b.count === 10)).toBe(true);
    const pending = engine.readQualities([1, 2, 999]);
    // delete: the streams go in the same turn; the copies were queued before the removals and still arrive.
    for (const id of ids) engine.removeStream(id);
    ids = [];
    const q = await pending;
    expect(q.get(1)?.rtp).toMatchObject({ ssrc: 0x77, received: 10, lost: 0, lastSeq: 509 });
    expect(q.get(2)?.rtp).toBeNull();
    expect(q.has(999)).toBe(false);
  });
});
