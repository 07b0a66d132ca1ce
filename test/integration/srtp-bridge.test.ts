/**
 * SRTP through the real `ngrelay` binary, with libsrtp2 (test/support/libsrtp-helper.c, built here) as the
 * independent SRTP endpoint: keys come from the SDPs ngrelay returns over ng, packets cross the native engine.
 * - SRTP → RTP and RTP → SRTP (both directions of an SRTP offerer bridged to a plain answerer, and of a plain
 *   offerer bridged to an SRTP answerer), SRTCP ↔ RTCP;
 * - SRTP → SRTP with different keys (re-encrypt) and with shared keys (pass-through, bytes untouched);
 * - tampered, replayed and wrong-key packets counted in `query` and dropped while the good stream flows;
 * - `query` names each SRTP stream's `crypto suite`.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { isDict, toPlain, type BDict, type BInputDict, type BValue } from '../support/bencode';
import { Party, rtcpPacket, rtpPacket, waitUntil } from '../support/rtp-packets';
import { buildLibsrtpHelper, type LibsrtpHelper, type LibsrtpMode } from '../support/libsrtp';
import { get } from '../support/ng-values';

const NG_PORT = 22511;
const KEY_BYTES: Record<string, number> = {
  AES_CM_128_HMAC_SHA1_80: 30,
  AES_CM_128_HMAC_SHA1_32: 30,
  AES_256_CM_HMAC_SHA1_80: 46,
  AES_256_CM_HMAC_SHA1_32: 46,
  AEAD_AES_128_GCM: 28,
  AEAD_AES_256_GCM: 44,
};
type Suite = 'AES_CM_128_HMAC_SHA1_80' | 'AEAD_AES_128_GCM';
const SUITES: Suite[] = ['AES_CM_128_HMAC_SHA1_80', 'AEAD_AES_128_GCM'];

let relay: RelayUnderTest | undefined;
let ng: NgRawClient;
let libsrtpHelper: LibsrtpHelper | undefined;
let callSeq = 0;

type Mode = LibsrtpMode;

/** libsrtp2 over a whole stream (one session): packets out, or "ERR n" strings for refused ones. */
function libsrtp(mode: Mode, suite: string, keySalt: Buffer, packets: Buffer[]): Array<Buffer | string> {
  if (!libsrtpHelper) throw new Error('libsrtp helper not built');
  return libsrtpHelper.run(mode, suite, keySalt, packets);
}

function protect(mode: 'protect-rtp' | 'protect-rtcp', suite: string, keySalt: Buffer, packets: Buffer[]): Buffer[] {
  return libsrtp(mode, suite, keySalt, packets).map((p) => {
    if (typeof p === 'string') throw new Error(`libsrtp refused to protect: ${p}`);
    return p;
  });
}

/** Distinct payloads, so a mixed-up or corrupted packet cannot pass as another. */
function rtpStream(ssrc: number, count: number, firstSeq = 1000): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const p = rtpPacket({ seq: firstSeq + i, ssrc, payloadType: 0, payloadBytes: 80 + (i % 7) * 10 });
    p.fill(i & 0xff, 12);
    p.writeUInt32BE((ssrc ^ (i * 2654435761)) >>> 0, 12);
    return p;
  });
}

function rtcpStream(ssrc: number, count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const p = rtcpPacket(ssrc, 'sr');
    p.writeUInt32BE(0x10000 + i, 8); // NTP seconds: distinct per report
    return p;
  });
}

function sdp(party: { rtp: Party; rtcp: Party }, proto: string, cryptoLines: string[]): string {
  return [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${party.rtp.port} ${proto} 0`,
    'a=rtpmap:0 PCMU/8000',
    `a=rtcp:${party.rtcp.port}`,
    'a=sendrecv',
    ...cryptoLines,
    '',
  ].join('\r\n');
}

interface SdpInfo {
  body: string;
  proto: string;
  port: number;
  rtcpPort: number;
  crypto: Array<{ tag: number; suite: string; keySalt: Buffer }>;
}

function sdpInfo(reply: BDict): SdpInfo {
  if (!reply['sdp']) throw new Error(`offer/answer failed: ${JSON.stringify(toPlain(reply))}`);
  const body = (reply['sdp'] as Buffer).toString('latin1');
  const m = /^m=audio (\d+) (\S+)/m.exec(body);
  const r = /^a=rtcp:(\d+)/m.exec(body);
  if (!m || !r) throw new Error(`no m=/a=rtcp in ${body}`);
  const crypto = [...body.matchAll(/^a=crypto:(\d+) (\S+) inline:([A-Za-z0-9+/=]+)/gm)].map((c) => ({
    tag: Number(c[1]),
    suite: c[2] as string,
    keySalt: Buffer.from(c[3] as string, 'base64'),
  }));
  return { body, proto: m[2] as string, port: Number(m[1]), rtcpPort: Number(r[1]), crypto };
}

function keyLine(tag: number, suite: string, keySalt: Buffer): string {
  return `a=crypto:${tag} ${suite} inline:${keySalt.toString('base64').replace(/=+$/, '')}`;
}

function freshKey(suite: string): Buffer {
  return randomBytes(KEY_BYTES[suite] as number);
}

interface Leg {
  rtp: Party;
  rtcp: Party;
}

async function leg(): Promise<Leg> {
  return { rtp: await Party.open(), rtcp: await Party.open() };
}

async function closeLeg(l: Leg): Promise<void> {
  await l.rtp.close();
  await l.rtcp.close();
}

/** Two phones (caller a, callee b) for one test; their sockets are closed however the test ends. */
async function withLegs(body: (a: Leg, b: Leg) => Promise<void>): Promise<void> {
  const a = await leg();
  const b = await leg();
  try {
    await body(a, b);
  } finally {
    await closeLeg(a);
    await closeLeg(b);
  }
}

interface Call {
  callId: string;
  a: Leg;
  b: Leg;
  /** What A got back in the answer (A sends there and decrypts with its keys). */
  toA: SdpInfo;
  /** What B got in the offer. */
  toB: SdpInfo;
}

async function offerAnswer(
  a: Leg,
  b: Leg,
  offer: { proto: string; crypto: string[]; extra?: BInputDict },
  answer: (toB: SdpInfo) => { proto: string; crypto: string[] },
): Promise<Call> {
  const callId = `srtp-bridge-${process.pid}-${++callSeq}`;
  const o = await ng.request({
    command: 'offer',
    'call-id': callId,
    'from-tag': 'A',
    sdp: sdp(a, offer.proto, offer.crypto),
    ...(offer.extra ?? {}),
  });
  const toB = sdpInfo(o.dict);
  const ans = answer(toB);
  const r = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b, ans.proto, ans.crypto) });
  return { callId, a, b, toA: sdpInfo(r.dict), toB };
}

/** An SDES caller bridged to a plain RTP callee (`transport-protocol: RTP/AVP`): `crypto` is A's offer. */
function sdesToPlain(a: Leg, b: Leg, crypto: string[]): Promise<Call> {
  return offerAnswer(a, b, { proto: 'RTP/SAVP', crypto, extra: { 'transport-protocol': 'RTP/AVP' } }, () => ({
    proto: 'RTP/AVP',
    crypto: [],
  }));
}

/** Sends each packet (paced a little, so nothing is lost to socket buffers) and waits for `expected` arrivals. */
async function sendAll(from: Party, to: number, packets: Buffer[], receiver: Party, expected: number): Promise<void> {
  for (const p of packets) {
    await from.send(p, to, '127.0.0.1');
  }
  await waitUntil(() => receiver.received.length >= expected, 5000);
}

/** The streams of one party's first media in a query reply. */
async function queryStreams(callId: string, tag: string): Promise<BValue[]> {
  const q = await ng.request({ command: 'query', 'call-id': callId });
  const streams = get(q.dict, 'tags', tag, 'medias', 0, 'streams');
  if (!Array.isArray(streams)) throw new Error(`no streams for ${tag}: ${JSON.stringify(toPlain(q.dict))}`);
  return streams;
}

function num(v: BValue | undefined): number {
  if (typeof v !== 'number') throw new Error(`not a number: ${String(v)}`);
  return v;
}

function text(v: BValue | undefined): string | undefined {
  return Buffer.isBuffer(v) ? v.toString('latin1') : undefined;
}

beforeAll(async () => {
  libsrtpHelper = buildLibsrtpHelper();
  relay = await startNgrelay({ ngPort: NG_PORT, portMin: 44000, portMax: 44499, deleteDelay: 0 });
  ng = await NgRawClient.open(NG_PORT);
}, 600_000);

afterAll(async () => {
  await ng?.close();
  await relay?.stop();
  libsrtpHelper?.dispose();
});

describe.each(SUITES)('%s', (suite) => {
  it('bridges an SRTP offerer to a plain RTP answerer both ways, SRTCP ↔ RTCP included', async () => {
    await withLegs(async (a, b) => {
      const ka = freshKey(suite);
      const call = await sdesToPlain(a, b, [keyLine(1, 'AES_256_CM_HMAC_SHA1_32', freshKey('AES_256_CM_HMAC_SHA1_32')).replace(':1 ', ':7 '), keyLine(3, suite, ka)]);
      // The plain leg sees no crypto at all; the SRTP offerer is answered with the first usable suite it
      // offered (tag 7, AES_256_CM_HMAC_SHA1_32, is usable: so it must be the one chosen)...
      expect(call.toB.proto).toBe('RTP/AVP');
      expect(call.toB.crypto).toEqual([]);
      expect(call.toA.proto).toBe('RTP/SAVP');
      expect(call.toA.crypto.map((c) => [c.tag, c.suite])).toEqual([[7, 'AES_256_CM_HMAC_SHA1_32']]);
      await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });

      // ...so offer this suite alone for the media test.
      const call2 = await sdesToPlain(a, b, [keyLine(3, suite, ka)]);
      expect(call2.toA.crypto).toHaveLength(1);
      const kn = call2.toA.crypto[0] as { tag: number; suite: string; keySalt: Buffer };
      expect([kn.tag, kn.suite]).toEqual([3, suite]);
      expect(kn.keySalt.equals(ka)).toBe(false);

      // A → B: SRTP (libsrtp, A's key) in, exact plain RTP out.
      const plainAB = rtpStream(0x1111aaaa, 40);
      await sendAll(a.rtp, call2.toA.port, protect('protect-rtp', suite, ka, plainAB), b.rtp, plainAB.length);
      expect(b.rtp.received.map((r) => r.data.toString('hex'))).toEqual(plainAB.map((p) => p.toString('hex')));

      // B → A: plain in, SRTP out that libsrtp opens with the key ngrelay gave A.
      const plainBA = rtpStream(0x2222bbbb, 40, 65500); // crosses the sequence wrap (ROC 0 → 1)
      await sendAll(b.rtp, call2.toB.port, plainBA, a.rtp, plainBA.length);
      const opened = libsrtp('unprotect-rtp', suite, kn.keySalt, a.rtp.received.map((r) => r.data));
      expect(opened.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(plainBA.map((p) => p.toString('hex')));

      // RTCP: SRTCP from A arrives plain at B, plain RTCP from B arrives as SRTCP at A.
      const rtcpAB = rtcpStream(0x1111aaaa, 5);
      await sendAll(a.rtcp, call2.toA.rtcpPort, protect('protect-rtcp', suite, ka, rtcpAB), b.rtcp, rtcpAB.length);
      expect(b.rtcp.received.map((r) => r.data.toString('hex'))).toEqual(rtcpAB.map((p) => p.toString('hex')));
      const rtcpBA = rtcpStream(0x2222bbbb, 5);
      await sendAll(b.rtcp, call2.toB.rtcpPort, rtcpBA, a.rtcp, rtcpBA.length);
      const srtcp = a.rtcp.received.map((r) => r.data);
      expect(srtcp.every((p) => p.length > 28)).toBe(true); // index + tag appended
      const openedRtcp = libsrtp('unprotect-rtcp', suite, kn.keySalt, srtcp);
      expect(openedRtcp.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(rtcpBA.map((p) => p.toString('hex')));

      // query: the SRTP side names its suite on both streams, the plain side none; nothing counted as error.
      const aStreams = await queryStreams(call2.callId, 'A');
      expect(aStreams.map((s) => text(get(s, 'crypto suite')))).toEqual([suite, suite]);
      expect(aStreams.map((s) => num(get(s, 'stats', 'errors')))).toEqual([0, 0]);
      expect(num(get(aStreams[0], 'stats', 'packets'))).toBe(40);
      const bStreams = await queryStreams(call2.callId, 'B');
      expect(bStreams.map((s) => get(s, 'crypto suite'))).toEqual([undefined, undefined]);
      await ng.request({ command: 'delete', 'call-id': call2.callId, 'from-tag': 'A' });
    });
  });

  it('bridges a plain offerer to an SRTP answerer (transport-protocol RTP/SAVP) both ways', async () => {
    await withLegs(async (a, b) => {
      const kb = freshKey(suite);
      let chosen: { tag: number; suite: string; keySalt: Buffer } | undefined;
      const call = await offerAnswer(a, b, { proto: 'RTP/AVP', crypto: [], extra: { 'transport-protocol': 'RTP/SAVP' } }, (toB) => {
        chosen = toB.crypto.find((c) => c.suite === suite);
        if (!chosen) throw new Error(`${suite} not offered: ${toB.body}`);
        return { proto: 'RTP/SAVP', crypto: [keyLine(chosen.tag, suite, kb)] };
    });
    // Offered: every suite ngrelay implements, in rtpengine's preference order, fresh keys, tags 1..6.
    expect(call.toB.proto).toBe('RTP/SAVP');
    expect(call.toB.crypto.map((c) => `${c.tag} ${c.suite}`)).toEqual([
      '1 AEAD_AES_256_GCM',
      '2 AEAD_AES_128_GCM',
      '3 AES_256_CM_HMAC_SHA1_80',
      '4 AES_256_CM_HMAC_SHA1_32',
      '5 AES_CM_128_HMAC_SHA1_80',
      '6 AES_CM_128_HMAC_SHA1_32',
    ]);
    expect(new Set(call.toB.crypto.map((c) => c.keySalt.toString('hex'))).size).toBe(6);
    expect(call.toA.proto).toBe('RTP/AVP');
    expect(call.toA.crypto).toEqual([]);
    const offered = chosen as { tag: number; suite: string; keySalt: Buffer };

    const plainAB = rtpStream(0x3333cccc, 30);
    await sendAll(a.rtp, call.toA.port, plainAB, b.rtp, plainAB.length);
    const opened = libsrtp('unprotect-rtp', suite, offered.keySalt, b.rtp.received.map((r) => r.data));
    expect(opened.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(plainAB.map((p) => p.toString('hex')));

    const plainBA = rtpStream(0x4444dddd, 30);
    await sendAll(b.rtp, call.toB.port, protect('protect-rtp', suite, kb, plainBA), a.rtp, plainBA.length);
    expect(a.rtp.received.map((r) => r.data.toString('hex'))).toEqual(plainBA.map((p) => p.toString('hex')));

    const bStreams = await queryStreams(call.callId, 'B');
    expect(bStreams.map((s) => text(get(s, 'crypto suite')))).toEqual([suite, suite]);
    await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });
});

describe('SRTP to SRTP', () => {
  it('re-encrypts between different keys and suites (AES-CM on one side, GCM on the other)', async () => {
    await withLegs(async (a, b) => {
      const ka = freshKey('AES_CM_128_HMAC_SHA1_80');
      const kb = freshKey('AEAD_AES_128_GCM');
      let gcm: { tag: number; suite: string; keySalt: Buffer } | undefined;
      const call = await offerAnswer(a, b, { proto: 'RTP/SAVP', crypto: [keyLine(1, 'AES_CM_128_HMAC_SHA1_80', ka)] }, (toB) => {
        // A's own line comes first, unchanged (so B could share it); B takes ngrelay's GCM line instead.
        expect(toB.crypto[0]?.keySalt.equals(ka)).toBe(true);
        gcm = toB.crypto.find((c) => c.suite === 'AEAD_AES_128_GCM');
        if (!gcm) throw new Error('no GCM offered');
        return { proto: 'RTP/SAVP', crypto: [keyLine(gcm.tag, 'AEAD_AES_128_GCM', kb)] };
    });
    const toBKey = (gcm as { keySalt: Buffer }).keySalt;
    const toAKey = call.toA.crypto[0] as { tag: number; suite: string; keySalt: Buffer };
    expect([toAKey.tag, toAKey.suite]).toEqual([1, 'AES_CM_128_HMAC_SHA1_80']);
    expect(toAKey.keySalt.equals(ka)).toBe(false);

    const plainAB = rtpStream(0x5555eeee, 30);
    const sentAB = protect('protect-rtp', 'AES_CM_128_HMAC_SHA1_80', ka, plainAB);
    await sendAll(a.rtp, call.toA.port, sentAB, b.rtp, plainAB.length);
    const gotB = b.rtp.received.map((r) => r.data);
    expect(gotB[0]?.equals(sentAB[0] as Buffer)).toBe(false);
    const openedB = libsrtp('unprotect-rtp', 'AEAD_AES_128_GCM', toBKey, gotB);
    expect(openedB.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(plainAB.map((p) => p.toString('hex')));

    const plainBA = rtpStream(0x6666ffff, 30);
    await sendAll(b.rtp, call.toB.port, protect('protect-rtp', 'AEAD_AES_128_GCM', kb, plainBA), a.rtp, plainBA.length);
    const openedA = libsrtp('unprotect-rtp', 'AES_CM_128_HMAC_SHA1_80', toAKey.keySalt, a.rtp.received.map((r) => r.data));
    expect(openedA.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(plainBA.map((p) => p.toString('hex')));

    // SRTCP re-encrypted too.
    const rtcpAB = rtcpStream(0x5555eeee, 4);
    await sendAll(a.rtcp, call.toA.rtcpPort, protect('protect-rtcp', 'AES_CM_128_HMAC_SHA1_80', ka, rtcpAB), b.rtcp, rtcpAB.length);
    const openedRtcp = libsrtp('unprotect-rtcp', 'AEAD_AES_128_GCM', toBKey, b.rtcp.received.map((r) => r.data));
    expect(openedRtcp.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(rtcpAB.map((p) => p.toString('hex')));

    expect((await queryStreams(call.callId, 'A')).map((s) => text(get(s, 'crypto suite')))).toEqual([
      'AES_CM_128_HMAC_SHA1_80',
      'AES_CM_128_HMAC_SHA1_80',
    ]);
    expect((await queryStreams(call.callId, 'B')).map((s) => text(get(s, 'crypto suite')))).toEqual([
      'AEAD_AES_128_GCM',
      'AEAD_AES_128_GCM',
    ]);
    await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });

  it('passes packets through untouched when the answerer takes the offerer\'s own key', async () => {
    await withLegs(async (a, b) => {
      const ka = freshKey('AES_CM_128_HMAC_SHA1_80');
      const kb = freshKey('AES_CM_128_HMAC_SHA1_80');
      const call = await offerAnswer(a, b, { proto: 'RTP/SAVP', crypto: [keyLine(1, 'AES_CM_128_HMAC_SHA1_80', ka)] }, () => ({
        proto: 'RTP/SAVP',
        crypto: [keyLine(1, 'AES_CM_128_HMAC_SHA1_80', kb)],
      }));
      // As rtpengine: A hears B's own key, so neither direction needs crypto work.
      expect(call.toA.crypto.map((c) => [c.tag, c.suite, c.keySalt.toString('hex')])).toEqual([
        [1, 'AES_CM_128_HMAC_SHA1_80', kb.toString('hex')],
      ]);
      const sentAB = protect('protect-rtp', 'AES_CM_128_HMAC_SHA1_80', ka, rtpStream(0x7777aaaa, 20));
      await sendAll(a.rtp, call.toA.port, sentAB, b.rtp, sentAB.length);
      expect(b.rtp.received.map((r) => r.data.toString('hex'))).toEqual(sentAB.map((p) => p.toString('hex')));
      const sentBA = protect('protect-rtp', 'AES_CM_128_HMAC_SHA1_80', kb, rtpStream(0x8888bbbb, 20));
      await sendAll(b.rtp, call.toB.port, sentBA, a.rtp, sentBA.length);
      expect(a.rtp.received.map((r) => r.data.toString('hex'))).toEqual(sentBA.map((p) => p.toString('hex')));
      await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });
});

describe('re-INVITE', () => {
  it("a plain callee's re-offer keeps the SRTP caller on SRTP with the same ngrelay key, and media keeps flowing", async () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    await withLegs(async (a, b) => {
      const ka = freshKey(suite);
      const call = await sdesToPlain(a, b, [keyLine(1, suite, ka)]);
      const kn = (call.toA.crypto[0] as { keySalt: Buffer }).keySalt;
      const first = rtpStream(0x12121212, 10, 100);
      await sendAll(b.rtp, call.toB.port, first, a.rtp, 10);

      // B re-INVITEs with plain RTP and no flags: A is offered SRTP again, ngrelay's key for A unchanged.
      const re = await ng.request({ command: 'offer', 'call-id': call.callId, 'from-tag': 'B', sdp: sdp(b, 'RTP/AVP', []) });
      const toA = sdpInfo(re.dict);
      expect(toA.proto).toBe('RTP/SAVP');
      const same = toA.crypto.find((c) => c.suite === suite);
      expect(same?.keySalt.equals(kn)).toBe(true);
      const ans = await ng.request({
        command: 'answer',
        'call-id': call.callId,
        'from-tag': 'B',
        'to-tag': 'A',
        sdp: sdp(a, 'RTP/SAVP', [keyLine((same as { tag: number }).tag, suite, ka)]),
    });
    expect(sdpInfo(ans.dict).proto).toBe('RTP/AVP');
    expect(sdpInfo(ans.dict).crypto).toEqual([]);

    // One SRTP session across the re-INVITE on both ends: nothing is refused, nothing restarts.
    const second = rtpStream(0x12121212, 10, 110);
    await sendAll(b.rtp, call.toB.port, second, a.rtp, 20);
    const opened = libsrtp('unprotect-rtp', suite, kn, a.rtp.received.map((r) => r.data));
    expect(opened.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual([...first, ...second].map((p) => p.toString('hex')));
    const plainAB = rtpStream(0x34343434, 10);
    await sendAll(a.rtp, call.toA.port, protect('protect-rtp', suite, ka, plainAB), b.rtp, 10);
    expect(b.rtp.received.map((r) => r.data.toString('hex'))).toEqual(plainAB.map((p) => p.toString('hex')));
    await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });
});

describe('bad SRTP', () => {
  it('counts and drops tampered, replayed and wrong-key packets while the good stream flows', async () => {
    const suite = 'AES_CM_128_HMAC_SHA1_80';
    await withLegs(async (a, b) => {
      const ka = freshKey(suite);
      const call = await sdesToPlain(a, b, [keyLine(1, suite, ka)]);
      const plain = rtpStream(0x9999cccc, 30);
      const good = protect('protect-rtp', suite, ka, plain);
      const tampered = Buffer.from(good[10] as Buffer);
      tampered[20] = (tampered[20] as number) ^ 0x01;
      const wrongKey = protect('protect-rtp', suite, freshKey(suite), rtpStream(0x9999cccc, 1, 2000))[0] as Buffer;
      const tamperedTag = Buffer.from(good[12] as Buffer);
      tamperedTag[tamperedTag.length - 1] = (tamperedTag[tamperedTag.length - 1] as number) ^ 0x80;
      // Good 0..9, a tampered copy of 10 (then the real 10), replays of 3 and 5, a wrong-key packet, a tag
      // flipped copy of 12 (then the real one), the rest: only the 30 good ones may come out.
      const sequence = [
        ...good.slice(0, 10),
        tampered,
        good[10] as Buffer,
        good[3] as Buffer,
        good[5] as Buffer,
        wrongKey,
        good[11] as Buffer,
        tamperedTag,
        ...good.slice(12),
      ];
      await sendAll(a.rtp, call.toA.port, sequence, b.rtp, plain.length);
      const aStreams = await queryStreams(call.callId, 'A');
      expect(num(get(aStreams[0], 'stats', 'errors'))).toBe(5);
      expect(num(get(aStreams[0], 'stats', 'packets'))).toBe(30);
      expect(b.rtp.received.map((r) => r.data.toString('hex'))).toEqual(plain.map((p) => p.toString('hex')));

      // A replayed SRTCP packet and an unauthenticated (plain) RTCP packet are refused too.
      const rtcp = protect('protect-rtcp', suite, ka, rtcpStream(0x9999cccc, 3));
      await sendAll(a.rtcp, call.toA.rtcpPort, [rtcp[0] as Buffer, rtcp[0] as Buffer, rtcpPacket(0x9999cccc, 'sr'), rtcp[1] as Buffer, rtcp[2] as Buffer], b.rtcp, 3);
      const after = await queryStreams(call.callId, 'A');
      expect(num(get(after[1], 'stats', 'errors'))).toBe(2);
      expect(b.rtcp.received).toHaveLength(3);
      await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });

  it('answers an SRTP offer whose crypto lines are all unusable with plain RTP, never RTP/SAVP without keys', async () => {
    await withLegs(async (a, b) => {
      const call = await sdesToPlain(a, b, ['a=crypto:1 F8_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk', 'a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:QUJD']);
      expect(call.toB.crypto).toEqual([]);
      expect(call.toA.proto).toBe('RTP/AVP');
      expect(call.toA.body).not.toContain('a=crypto');
      await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'A' });
    });
  });
});
