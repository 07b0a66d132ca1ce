/**
 * Interoperation of the native SRTP core with libsrtp2, an independent implementation (Debian libsrtp2-dev,
 * here built on NSS): a small C helper (test/support/libsrtp-helper.c), compiled by this test, protects a
 * stream of known RTP/RTCP packets and ngrelay unprotects it to the exact originals, and the reverse. Tampered,
 * replayed and wrong-key packets must be rejected with the right result while the good stream keeps flowing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSrtpTestBinding, type SrtpContextOptions, type SrtpSuiteName } from '../../src/dataplane/srtp-binding';
import { rtcpPacket, rtpPacket } from '../support/rtp-packets';
import { buildLibsrtpHelper, type LibsrtpHelper, type LibsrtpMode, type LibsrtpOutput } from '../support/libsrtp';

const srtp = loadSrtpTestBinding();
let libsrtpHelper: LibsrtpHelper | undefined;
type HelperOutput = LibsrtpOutput;

function libsrtp(mode: LibsrtpMode, suite: SrtpSuiteName, key: Buffer, salt: Buffer, packets: Buffer[], flags = ''): HelperOutput[] {
  if (!libsrtpHelper) throw new Error('libsrtp helper not built');
  return libsrtpHelper.run(mode, suite, Buffer.concat([key, salt]), packets, flags);
}

function packetOf(o: HelperOutput): Buffer {
  if (typeof o === 'string') throw new Error(`libsrtp refused a packet: ${o}`);
  return o;
}

function keyMaterial(suite: SrtpSuiteName, seed: number): { key: Buffer; salt: Buffer } {
  const d = srtp.suites().find((s) => s.name === suite);
  if (!d) throw new Error(`unknown suite ${suite}`);
  const bytes = (n: number, mul: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * mul + seed * 53 + 1) & 0xff));
  return { key: bytes(d.masterKeyLength, 29), salt: bytes(d.masterSaltLength, 11) };
}

/** 300 RTP packets crossing a sequence wrap (ROC 0 → 1), varied sizes and header shapes, distinct payloads. */
function rtpStream(ssrc: number): Buffer[] {
  return Array.from({ length: 300 }, (_, i) => {
    const seq = (65400 + i) & 0xffff;
    const shape = i % 5;
    const p = rtpPacket({
      seq,
      ssrc,
      payloadType: 8,
      marker: i === 0,
      timestamp: 1000 + i * 160,
      payloadBytes: 20 + ((i * 37) % 181),
      csrcs: shape === 1 ? [0xabc, 0xdef] : [],
      extensionWords: shape === 2 ? 1 : undefined,
      padding: shape === 3 ? 4 : 0,
    });
    const payloadStart = 12 + (shape === 1 ? 8 : 0) + (shape === 2 ? 8 : 0);
    const payloadEnd = p.length - (shape === 3 ? 4 : 0);
    for (let j = payloadStart; j < payloadEnd; j++) p[j] = (i * 7 + j * 13) & 0xff;
    return p;
  });
}

/** 20 RTCP packets: sender reports with distinct contents, and SR+RR compounds. */
function rtcpStream(ssrc: number): Buffer[] {
  return Array.from({ length: 20 }, (_, i) => {
    const sr = rtcpPacket(ssrc, 'sr');
    for (let j = 8; j < sr.length; j++) sr[j] = (i * 5 + j) & 0xff;
    return i % 2 ? Buffer.concat([sr, rtcpPacket(ssrc, 'rr')]) : sr;
  });
}

const SUITES: SrtpSuiteName[] = [
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
  'AES_256_CM_HMAC_SHA1_80',
  'AES_256_CM_HMAC_SHA1_32',
  'AEAD_AES_128_GCM',
  'AEAD_AES_256_GCM',
];

beforeAll(() => {
  libsrtpHelper = buildLibsrtpHelper();
});

afterAll(() => {
  libsrtpHelper?.dispose();
});

describe.each(SUITES)('%s with libsrtp2', (suite) => {
  const { key, salt } = keyMaterial(suite, 1);
  const ssrc = 0x5eed1234;

  it('libsrtp protects RTP across a rollover, ngrelay unprotects the exact originals', () => {
    const plain = rtpStream(ssrc);
    const sealed = libsrtp('protect-rtp', suite, key, salt, plain).map(packetOf);
    const rx = new srtp.SrtpTestContext(suite, key, salt);
    sealed.forEach((p, i) => {
      const out = rx.unprotectRtp(p);
      expect(out.result, `packet ${i}`).toBe('ok');
      expect(out.packet?.equals(plain[i] as Buffer), `packet ${i}`).toBe(true);
    });
    expect(rx.stats()).toEqual({ authFailed: 0, replayed: 0, malformed: 0, otherErrors: 0 });
  });

  it('ngrelay protects RTP byte-identically to libsrtp, and libsrtp unprotects it', () => {
    const plain = rtpStream(ssrc);
    const tx = new srtp.SrtpTestContext(suite, key, salt);
    const ours = plain.map((p) => {
      const out = tx.protectRtp(p);
      expect(out.result).toBe('ok');
      return out.packet as Buffer;
    });
    const theirs = libsrtp('protect-rtp', suite, key, salt, plain).map(packetOf);
    ours.forEach((p, i) => expect(p.toString('hex'), `packet ${i}`).toBe(theirs[i]?.toString('hex')));
    const back = libsrtp('unprotect-rtp', suite, key, salt, ours).map(packetOf);
    back.forEach((p, i) => expect(p.equals(plain[i] as Buffer), `packet ${i}`).toBe(true));
  });

  it('SRTCP both ways: libsrtp → ngrelay and ngrelay → libsrtp give the exact originals', () => {
    const plain = rtcpStream(ssrc);
    const rx = new srtp.SrtpTestContext(suite, key, salt);
    libsrtp('protect-rtcp', suite, key, salt, plain)
      .map(packetOf)
      .forEach((p, i) => {
        const out = rx.unprotectRtcp(p);
        expect(out.result, `rtcp ${i}`).toBe('ok');
        expect(out.packet?.equals(plain[i] as Buffer)).toBe(true);
      });
    const tx = new srtp.SrtpTestContext(suite, key, salt);
    const ours = plain.map((p) => tx.protectRtcp(p).packet as Buffer);
    libsrtp('unprotect-rtcp', suite, key, salt, ours)
      .map(packetOf)
      .forEach((p, i) => expect(p.equals(plain[i] as Buffer), `rtcp ${i}`).toBe(true));
  });

  it('drops tampered, replayed and wrong-key packets from libsrtp while the good stream flows', () => {
    const plain = rtpStream(ssrc).slice(0, 40);
    const sealed = libsrtp('protect-rtp', suite, key, salt, plain).map(packetOf);
    const stranger = keyMaterial(suite, 2);
    const foreign = libsrtp('protect-rtp', suite, stranger.key, stranger.salt, plain).map(packetOf);
    const rx = new srtp.SrtpTestContext(suite, key, salt);
    const expectOk = (i: number) => expect(rx.unprotectRtp(sealed[i] as Buffer).packet?.equals(plain[i] as Buffer), `packet ${i}`).toBe(true);

    for (let i = 0; i < 10; i++) expectOk(i);
    const tampered = Buffer.from(sealed[10] as Buffer);
    tampered[tampered.length - 20] = tampered.readUInt8(tampered.length - 20) ^ 0x01;
    expect(rx.unprotectRtp(tampered).result).toBe('auth-failed');
    expect(rx.unprotectRtp(foreign[10] as Buffer).result).toBe('auth-failed');
    expectOk(10);
    expect(rx.unprotectRtp(sealed[5] as Buffer).result).toBe('replayed');
    expect(rx.unprotectRtp(sealed[10] as Buffer).result).toBe('replayed');
    for (let i = 11; i < 40; i++) expectOk(i);
    expect(rx.stats()).toEqual({ authFailed: 2, replayed: 2, malformed: 0, otherErrors: 0 });

    const rtcpPlain = rtcpStream(ssrc).slice(0, 4);
    const rtcpSealed = libsrtp('protect-rtcp', suite, key, salt, rtcpPlain).map(packetOf);
    const rtcpForeign = libsrtp('protect-rtcp', suite, stranger.key, stranger.salt, rtcpPlain).map(packetOf);
    expect(rx.unprotectRtcp(rtcpSealed[0] as Buffer).result).toBe('ok');
    const badRtcp = Buffer.from(rtcpSealed[1] as Buffer);
    badRtcp[9] = badRtcp.readUInt8(9) ^ 0x80;
    expect(rx.unprotectRtcp(badRtcp).result).toBe('auth-failed');
    expect(rx.unprotectRtcp(rtcpForeign[1] as Buffer).result).toBe('auth-failed');
    expect(rx.unprotectRtcp(rtcpSealed[1] as Buffer).result).toBe('ok');
    expect(rx.unprotectRtcp(rtcpSealed[0] as Buffer).result).toBe('replayed');
    expect(rx.unprotectRtcp(rtcpSealed[2] as Buffer).result).toBe('ok');
  });

  it('libsrtp in turn rejects a tampered and a replayed packet from ngrelay (the oracle really checks)', () => {
    const plain = rtpStream(ssrc).slice(0, 3);
    const tx = new srtp.SrtpTestContext(suite, key, salt);
    const ours = plain.map((p) => tx.protectRtp(p).packet as Buffer);
    const tampered = Buffer.from(ours[1] as Buffer);
    tampered[14] = tampered.readUInt8(14) ^ 0x01;
    const out = libsrtp('unprotect-rtp', suite, key, salt, [ours[0] as Buffer, tampered, ours[1] as Buffer, ours[1] as Buffer, ours[2] as Buffer]);
    expect(out.map((o) => (typeof o === 'string' ? o : 'ok'))).toEqual(['ok', 'ERR 7', 'ok', 'ERR 9', 'ok']);
  });
});

describe('SDES session parameters with libsrtp2', () => {
  const cases: { name: string; suite: SrtpSuiteName; flags: string; options: SrtpContextOptions }[] = [
    { name: 'UNENCRYPTED_SRTP + UNENCRYPTED_SRTCP', suite: 'AES_CM_128_HMAC_SHA1_80', flags: 'noenc-rtp,noenc-rtcp', options: { encryptRtp: false, encryptRtcp: false } },
    { name: 'UNAUTHENTICATED_SRTP', suite: 'AES_256_CM_HMAC_SHA1_80', flags: 'noauth-rtp', options: { authRtp: false } },
  ];
  for (const c of cases) {
    it(`${c.name} (${c.suite}) interoperates both ways`, () => {
      const { key, salt } = keyMaterial(c.suite, 3);
      const plain = rtpStream(0x1234).slice(0, 50);
      const rx = new srtp.SrtpTestContext(c.suite, key, salt, c.options);
      libsrtp('protect-rtp', c.suite, key, salt, plain, c.flags)
        .map(packetOf)
        .forEach((p, i) => expect(rx.unprotectRtp(p).packet?.equals(plain[i] as Buffer), `packet ${i}`).toBe(true));
      const tx = new srtp.SrtpTestContext(c.suite, key, salt, c.options);
      const ours = plain.map((p) => tx.protectRtp(p).packet as Buffer);
      libsrtp('unprotect-rtp', c.suite, key, salt, ours, c.flags)
        .map(packetOf)
        .forEach((p, i) => expect(p.equals(plain[i] as Buffer), `packet ${i}`).toBe(true));

      const rtcpPlain = rtcpStream(0x1234);
      const rtcpRx = new srtp.SrtpTestContext(c.suite, key, salt, c.options);
      libsrtp('protect-rtcp', c.suite, key, salt, rtcpPlain, c.flags)
        .map(packetOf)
        .forEach((p, i) => expect(rtcpRx.unprotectRtcp(p).packet?.equals(rtcpPlain[i] as Buffer), `rtcp ${i}`).toBe(true));
      const rtcpOurs = rtcpPlain.map((p) => tx.protectRtcp(p).packet as Buffer);
      libsrtp('unprotect-rtcp', c.suite, key, salt, rtcpOurs, c.flags)
        .map(packetOf)
        .forEach((p, i) => expect(p.equals(rtcpPlain[i] as Buffer), `rtcp ${i}`).toBe(true));
    });
  }
});
