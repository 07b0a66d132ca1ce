/**
 * The native SRTP core (native/src/srtp.cpp) against published test vectors — RFC 3711 appendix B (AES-CM
 * keystream, key derivation), RFC 6188 §7 (AES-256), RFC 7714 §16/§17 (AES-GCM SRTP and SRTCP) — and the
 * behaviour around them: rollover counter, replay window, tamper/wrong-key rejection, MKI, session options.
 */
import { describe, expect, it } from 'vitest';
import { loadSrtpTestBinding, type SrtpSuiteName, type SrtpTestContext } from '../../src/dataplane/srtp-binding';
import { rtcpPacket, rtpPacket } from '../support/rtp-packets';

const srtp = loadSrtpTestBinding();
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

const ALL_SUITES: SrtpSuiteName[] = [
  'AES_CM_128_HMAC_SHA1_80',
  'AES_CM_128_HMAC_SHA1_32',
  'AES_256_CM_HMAC_SHA1_80',
  'AES_256_CM_HMAC_SHA1_32',
  'AEAD_AES_128_GCM',
  'AEAD_AES_256_GCM',
];

/** Deterministic key material of the suite's lengths (distinct per seed). */
function material(suite: SrtpSuiteName, seed: number): { key: Buffer; salt: Buffer } {
  const d = srtp.suites().find((s) => s.name === suite);
  if (!d) throw new Error(`suite ${suite} missing`);
  const key = Buffer.alloc(d.masterKeyLength, 0).map((_, i) => (i * 31 + seed * 17 + 3) & 0xff);
  const salt = Buffer.alloc(d.masterSaltLength, 0).map((_, i) => (i * 7 + seed * 101 + 9) & 0xff);
  return { key: Buffer.from(key), salt: Buffer.from(salt) };
}

function pair(suite: SrtpSuiteName, seed = 1): { tx: SrtpTestContext; rx: SrtpTestContext } {
  const { key, salt } = material(suite, seed);
  return { tx: new srtp.SrtpTestContext(suite, key, salt), rx: new srtp.SrtpTestContext(suite, key, salt) };
}

function ok(outcome: { result: string; packet: Buffer | null }): Buffer {
  expect(outcome.result).toBe('ok');
  if (!outcome.packet) throw new Error('ok without packet');
  return outcome.packet;
}

describe('suite table', () => {
  it('lists the six SDES suites with RFC 4568 / 6188 / 7714 lengths', () => {
    const byName = new Map(srtp.suites().map((s) => [s.name, s]));
    expect([...byName.keys()]).toEqual(ALL_SUITES);
    expect(byName.get('AES_CM_128_HMAC_SHA1_80')).toMatchObject({ masterKeyLength: 16, masterSaltLength: 14, srtpTagLength: 10, srtcpTagLength: 10 });
    expect(byName.get('AES_CM_128_HMAC_SHA1_32')).toMatchObject({ srtpTagLength: 4, srtcpTagLength: 10 });
    expect(byName.get('AES_256_CM_HMAC_SHA1_32')).toMatchObject({ masterKeyLength: 32, masterSaltLength: 14, srtpTagLength: 4 });
    expect(byName.get('AEAD_AES_256_GCM')).toMatchObject({ masterKeyLength: 32, masterSaltLength: 12, srtpTagLength: 16, aead: true });
  });
});

describe('RFC 3711 appendix B', () => {
  it('B.2 AES-CM keystream: first and last three blocks of 65282', () => {
    const ks = srtp.aesCmKeystream(hex('2B7E151628AED2A6ABF7158809CF4F3C'), hex('F0F1F2F3F4F5F6F7F8F9FAFBFCFD0000'), 65282 * 16);
    expect(ks.subarray(0, 48).toString('hex')).toBe(
      'e03ead0935c95e80e166b16dd92b4eb4d23513162b02d0f72a43a2fe4a5f97ab41e95b3bb0a2e8dd477901e4fca894c0',
    );
    expect(ks.subarray(ks.length - 48).toString('hex')).toBe(
      'ec8cdf7398607cb0f2d21675ea9ea1e4362b7c3c6773516318a077d7fc5073ae6a2cc3787889374fbeb4c81b17ba6c44',
    );
  });

  it('B.3 key derivation (KDR 0)', () => {
    const k = srtp.deriveKeys('AES_CM_128_HMAC_SHA1_80', hex('E1F97A0D3E018BE0D64FA32C06DE4139'), hex('0EC675AD498AFEEBB6960B3AABE6'));
    expect(k.rtpKey.toString('hex')).toBe('c61e7a93744f39ee10734afe3ff7a087');
    expect(k.rtpSalt.toString('hex')).toBe('30cbbc08863d8c85d49db34a9ae1');
    // B.3 prints 94 bytes of the auth-key keystream; HMAC-SHA1 uses the first 160 bits.
    expect(k.rtpAuth.toString('hex')).toBe('cebe321f6ff7716b6fd4ab49af256a156d38baa4');
    // SRTCP keys come from labels 3..5 and must differ from the SRTP ones.
    expect(k.rtcpKey.equals(k.rtpKey)).toBe(false);
    expect(k.rtcpSalt.equals(k.rtpSalt)).toBe(false);
    expect(k.rtcpAuth.equals(k.rtpAuth)).toBe(false);
  });
});

describe('RFC 6188 §7 (AES-256)', () => {
  it('7.1 AES-256-CM keystream', () => {
    const key = hex('57f82fe3613fd170a85ec93c40b1f0922ec4cb0dc025b58272147cc438944a98');
    const ks = srtp.aesCmKeystream(key, hex('f0f1f2f3f4f5f6f7f8f9fafbfcfd0000'), 65282 * 16);
    expect(ks.subarray(0, 48).toString('hex')).toBe(
      '92bdd28a93c3f52511c677d08b5515a49da71b2378a854f67050756ded165bac63c4868b7096d88421b563b8c94c9a31',
    );
    expect(ks.subarray(ks.length - 48).toString('hex')).toBe(
      'cea518c90fd91ced9cbb18c078a547113dbc4814f4da5f00a08772b63c6a046d6eb246913062a16891433e97dd01a57f',
    );
  });

  it('7.2 AES-256 key derivation', () => {
    const k = srtp.deriveKeys(
      'AES_256_CM_HMAC_SHA1_80',
      hex('f0f04914b513f2763a1b1fa130f10e2998f6f6e43e4309d1e622a0e332b9f1b6'),
      hex('3b04803de51ee7c96423ab5b78d2'),
    );
    expect(k.rtpKey.toString('hex')).toBe('5ba1064e30ec51613cad926c5a28ef731ec7fb397f70a960653caf06554cd8c4');
    expect(k.rtpSalt.toString('hex')).toBe('fa31791685ca444a9e07c6c64e93');
    expect(k.rtpAuth.toString('hex')).toBe('fd9c32d39ed5fbb5a9dc96b30818454d1313dc05');
  });
});

describe('RFC 7714 AES-GCM examples (session keys as published)', () => {
  const salt = hex('517569642070726f2071756f');
  const key128 = hex('000102030405060708090a0b0c0d0e0f');
  const key256 = hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
  const rtp = hex('8040f17b8041f8d35501a0b247616c6c696120657374206f6d6e697320646976697361 20696e2070617274657320747265 73');
  const rtcp = hex('81c8000d4d6172734e5450314e54503252545020 0000042a0000e9304c756e61 deadbeefdeadbeefdeadbeefdeadbeefdeadbeef');
  const cases = [
    {
      suite: 'AEAD_AES_128_GCM' as const,
      key: key128,
      srtp: hex('8040f17b8041f8d35501a0b2f24de3a3fb34de6cacba861c9d7e4bcabe633bd50d294e6f42a5f47a51c7d19b36de3adf8833899d7f27beb16a9152cf765ee4390cce'),
      srtcp: hex(
        '81c8000d4d61727363e94885dcdab67ca727d7662f6b7e997ff5c0f76c06f32dc676a5f1730d6fda4ce09b4686303ded0bb9275bc84aa45896cf4d2fc5abf87245d9eade800005d4',
      ),
    },
    {
      suite: 'AEAD_AES_256_GCM' as const,
      key: key256,
      srtp: hex('8040f17b8041f8d35501a0b232b1de78a822fe12ef9f78fa332e33aab18012389a58e2f3b50b2a0276ffae0f1ba63799b87b7aa3db36dfffd6b0f9bb7878d7a76c13'),
      srtcp: hex(
        '81c8000d4d617273d50ae4d1f5ce5d304ba297e47d470c282c3ece5dbffe0a50a2eaa5c1110555be8415f658c61de0476f1b6fad1d1eb30c4446839f57ff6f6cb26ac3be800005d4',
      ),
    },
  ];

  for (const c of cases) {
    it(`${c.suite}: §16 SRTP encryption and decryption`, () => {
      const tx = new srtp.SrtpTestContext(c.suite, c.key, salt, { testUseAsSessionKeys: true });
      expect(ok(tx.protectRtp(rtp)).toString('hex')).toBe(c.srtp.toString('hex'));
      const rx = new srtp.SrtpTestContext(c.suite, c.key, salt, { testUseAsSessionKeys: true });
      expect(ok(rx.unprotectRtp(c.srtp)).toString('hex')).toBe(rtp.toString('hex'));
    });

    it(`${c.suite}: §17 SRTCP encryption (index 0x5d4) and decryption`, () => {
      const tx = new srtp.SrtpTestContext(c.suite, c.key, salt, { testUseAsSessionKeys: true, initialSrtcpIndex: 0x5d4 });
      expect(ok(tx.protectRtcp(rtcp)).toString('hex')).toBe(c.srtcp.toString('hex'));
      const rx = new srtp.SrtpTestContext(c.suite, c.key, salt, { testUseAsSessionKeys: true });
      expect(ok(rx.unprotectRtcp(c.srtcp)).toString('hex')).toBe(rtcp.toString('hex'));
    });

    it(`${c.suite}: a flipped bit in the vector fails authentication`, () => {
      const rx = new srtp.SrtpTestContext(c.suite, c.key, salt, { testUseAsSessionKeys: true });
      const bad = Buffer.from(c.srtp);
      bad[20] = bad.readUInt8(20) ^ 0x01;
      expect(rx.unprotectRtp(bad)).toEqual({ result: 'auth-failed', packet: null });
      const badRtcp = Buffer.from(c.srtcp);
      badRtcp[30] = badRtcp.readUInt8(30) ^ 0x08;
      expect(rx.unprotectRtcp(badRtcp).result).toBe('auth-failed');
    });
  }

  it('AEAD_AES_128_GCM: §17.1 authenticated-only SRTCP (E=0) is accepted and produced', () => {
    const tagged = Buffer.concat([rtcp, hex('841dd9683dd78ec92ae58790125f62b3'), hex('000005d4')]);
    const rx = new srtp.SrtpTestContext('AEAD_AES_128_GCM', key128, salt, { testUseAsSessionKeys: true });
    expect(ok(rx.unprotectRtcp(tagged)).toString('hex')).toBe(rtcp.toString('hex'));
    const tx = new srtp.SrtpTestContext('AEAD_AES_128_GCM', key128, salt, {
      testUseAsSessionKeys: true,
      initialSrtcpIndex: 0x5d4,
      encryptRtcp: false,
    });
    expect(ok(tx.protectRtcp(rtcp)).toString('hex')).toBe(tagged.toString('hex'));
  });
});

describe.each(ALL_SUITES)('%s protect/unprotect', (suite) => {
  it('round-trips RTP (CSRCs, extension, padding) and RTCP, adding exactly the suite overhead', () => {
    const { tx, rx } = pair(suite);
    const d = srtp.suites().find((s) => s.name === suite);
    const shapes = [
      rtpPacket({ seq: 100, ssrc: 0x11223344 }),
      rtpPacket({ seq: 101, ssrc: 0x11223344, csrcs: [1, 2], extensionWords: 2, payloadBytes: 33 }),
      rtpPacket({ seq: 102, ssrc: 0x11223344, padding: 4, payloadBytes: 0 }),
    ];
    for (const plain of shapes) {
      const sealed = ok(tx.protectRtp(plain));
      expect(sealed.length).toBe(plain.length + (d?.srtpTagLength ?? -1));
      expect(sealed.subarray(0, 12).equals(plain.subarray(0, 12))).toBe(true);
      if (plain.length > 24) expect(sealed.subarray(12, plain.length).equals(plain.subarray(12))).toBe(false);
      expect(ok(rx.unprotectRtp(sealed)).equals(plain)).toBe(true);
    }
    const sr = rtcpPacket(0x11223344, 'sr');
    const sealedRtcp = ok(tx.protectRtcp(sr));
    expect(sealedRtcp.length).toBe(sr.length + 4 + (d?.srtcpTagLength ?? -1));
    expect(sealedRtcp.readUInt32BE(sealedRtcp.length - (d?.aead ? 4 : 4 + (d?.srtcpTagLength ?? 0))) >>> 31).toBe(1);
    expect(ok(rx.unprotectRtcp(sealedRtcp)).equals(sr)).toBe(true);
  });

  it('follows the rollover counter across a sequence wrap, including a late packet from before it', () => {
    const { tx, rx } = pair(suite);
    const seqs = [65530, 65531, 65532, 65533, 65534, 65535, 0, 1, 2, 3];
    const sealed = seqs.map((seq) => ok(tx.protectRtp(rtpPacket({ seq, ssrc: 7 }))));
    // Deliver 65534 late (after 2): the receiver must use ROC-1 for it.
    const order = [0, 1, 2, 3, 5, 6, 7, 8, 4, 9];
    for (const i of order) {
      const plain = ok(rx.unprotectRtp(sealed[i] as Buffer));
      expect(plain.readUInt16BE(2)).toBe(seqs[i]);
    }
    // A receiver that starts after the wrap needs the ROC signalled to it.
    const { key, salt } = material(suite, 1);
    const late = new srtp.SrtpTestContext(suite, key, salt, { initialRoc: 1 });
    expect(ok(late.unprotectRtp(sealed[9] as Buffer)).readUInt16BE(2)).toBe(3);
    const wrongRoc = new srtp.SrtpTestContext(suite, key, salt);
    expect(wrongRoc.unprotectRtp(sealed[9] as Buffer).result).toBe('auth-failed');
  });

  it('rejects replays and packets older than the 64-packet window, accepts reordering inside it', () => {
    const { tx, rx } = pair(suite);
    const sealed = Array.from({ length: 80 }, (_, i) => ok(tx.protectRtp(rtpPacket({ seq: 1000 + i, ssrc: 9 }))));
    ok(rx.unprotectRtp(sealed[0] as Buffer));
    expect(rx.unprotectRtp(sealed[0] as Buffer).result).toBe('replayed');
    ok(rx.unprotectRtp(sealed[70] as Buffer));
    ok(rx.unprotectRtp(sealed[20] as Buffer)); // 50 behind the top: inside the window
    expect(rx.unprotectRtp(sealed[20] as Buffer).result).toBe('replayed');
    expect(rx.unprotectRtp(sealed[5] as Buffer).result).toBe('replayed'); // 65 behind: too old
    ok(rx.unprotectRtp(sealed[79] as Buffer));
    expect(rx.stats()).toEqual({ authFailed: 0, replayed: 3, malformed: 0, otherErrors: 0 });

    const rtcp = [1, 2, 3].map(() => ok(tx.protectRtcp(rtcpPacket(9))));
    ok(rx.unprotectRtcp(rtcp[1] as Buffer));
    expect(rx.unprotectRtcp(rtcp[1] as Buffer).result).toBe('replayed');
    ok(rx.unprotectRtcp(rtcp[0] as Buffer));
    ok(rx.unprotectRtcp(rtcp[2] as Buffer));
  });

  it('rejects tampered and wrong-key packets without disturbing the good stream', () => {
    const { tx, rx } = pair(suite);
    const other = material(suite, 2);
    const stranger = new srtp.SrtpTestContext(suite, other.key, other.salt);
    const good1 = ok(tx.protectRtp(rtpPacket({ seq: 5, ssrc: 1 })));
    const good2 = ok(tx.protectRtp(rtpPacket({ seq: 6, ssrc: 1 })));
    const tampered = Buffer.from(good2);
    tampered[tampered.length - 1] = tampered.readUInt8(tampered.length - 1) ^ 0x40;
    const tamperedHeader = Buffer.from(good2);
    tamperedHeader[1] = tamperedHeader.readUInt8(1) ^ 0x01; // payload type is authenticated, not encrypted
    const forged = ok(stranger.protectRtp(rtpPacket({ seq: 6, ssrc: 1 })));
    ok(rx.unprotectRtp(good1));
    expect(rx.unprotectRtp(tampered).result).toBe('auth-failed');
    expect(rx.unprotectRtp(tamperedHeader).result).toBe('auth-failed');
    expect(rx.unprotectRtp(forged).result).toBe('auth-failed');
    expect(ok(rx.unprotectRtp(good2)).readUInt16BE(2)).toBe(6);

    const r1 = ok(tx.protectRtcp(rtcpPacket(1, 'sr')));
    const badRtcp = Buffer.from(r1);
    badRtcp[12] = badRtcp.readUInt8(12) ^ 0xff;
    expect(rx.unprotectRtcp(badRtcp).result).toBe('auth-failed');
    expect(rx.unprotectRtcp(ok(stranger.protectRtcp(rtcpPacket(1, 'sr')))).result).toBe('auth-failed');
    ok(rx.unprotectRtcp(r1));
    expect(rx.stats()).toEqual({ authFailed: 5, replayed: 0, malformed: 0, otherErrors: 0 });
  });

  it('forged packets for unknown SSRCs do not evict the state of known ones', () => {
    const { tx, rx } = pair(suite);
    const other = material(suite, 3);
    const stranger = new srtp.SrtpTestContext(suite, other.key, other.salt);
    // Move the real stream past a wrap so that losing its state would lose the ROC.
    for (let i = 0; i < 70; i++) ok(rx.unprotectRtp(ok(tx.protectRtp(rtpPacket({ seq: (65500 + i) & 0xffff, ssrc: 42 })))));
    for (let ssrc = 1000; ssrc < 1040; ssrc++) {
      expect(rx.unprotectRtp(ok(stranger.protectRtp(rtpPacket({ seq: 1, ssrc })))).result).toBe('auth-failed');
    }
    ok(rx.unprotectRtp(ok(tx.protectRtp(rtpPacket({ seq: 34, ssrc: 42 })))));
  });

  it('refuses malformed input', () => {
    const { tx, rx } = pair(suite);
    expect(tx.protectRtp(Buffer.alloc(8)).result).toBe('malformed');
    const v1 = rtpPacket({ seq: 1, ssrc: 1 });
    v1[0] = 0x40;
    expect(tx.protectRtp(v1).result).toBe('malformed');
    const ext = rtpPacket({ seq: 1, ssrc: 1, extensionWords: 1, payloadBytes: 0 });
    ext.writeUInt16BE(50, 14); // extension claims 200 bytes
    expect(tx.protectRtp(ext).result).toBe('malformed');
    expect(rx.unprotectRtp(Buffer.alloc(12, 0x80)).result).toBe('malformed');
    expect(rx.unprotectRtcp(rtcpPacket(1)).result).toBe('malformed');
    expect(rx.stats().malformed).toBe(2);
  });
});

describe('session options and helpers', () => {
  it('UNENCRYPTED_SRTP / UNENCRYPTED_SRTCP leave payloads in clear but authenticated', () => {
    const { key, salt } = material('AES_CM_128_HMAC_SHA1_80', 4);
    const opts = { encryptRtp: false, encryptRtcp: false };
    const tx = new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', key, salt, opts);
    const rx = new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', key, salt, opts);
    const plain = rtpPacket({ seq: 1, ssrc: 5 });
    const sealed = ok(tx.protectRtp(plain));
    expect(sealed.subarray(0, plain.length).equals(plain)).toBe(true);
    expect(sealed.length).toBe(plain.length + 10);
    expect(ok(rx.unprotectRtp(sealed)).equals(plain)).toBe(true);
    const rr = rtcpPacket(5, 'sr');
    const sealedRtcp = ok(tx.protectRtcp(rr));
    expect(sealedRtcp.subarray(0, rr.length).equals(rr)).toBe(true);
    expect(sealedRtcp.readUInt32BE(rr.length) >>> 31).toBe(0);
    expect(ok(rx.unprotectRtcp(sealedRtcp)).equals(rr)).toBe(true);
    const next = ok(tx.protectRtp(rtpPacket({ seq: 2, ssrc: 5 })));
    next[20] = next.readUInt8(20) ^ 1;
    expect(rx.unprotectRtp(next).result).toBe('auth-failed');
  });

  it('UNAUTHENTICATED_SRTP adds no tag to SRTP but keeps SRTCP authenticated', () => {
    const { key, salt } = material('AES_256_CM_HMAC_SHA1_80', 5);
    const tx = new srtp.SrtpTestContext('AES_256_CM_HMAC_SHA1_80', key, salt, { authRtp: false });
    const rx = new srtp.SrtpTestContext('AES_256_CM_HMAC_SHA1_80', key, salt, { authRtp: false });
    expect(tx.overhead()).toEqual({ rtp: 0, rtcp: 14 });
    const plain = rtpPacket({ seq: 1, ssrc: 5 });
    const sealed = ok(tx.protectRtp(plain));
    expect(sealed.length).toBe(plain.length);
    expect(sealed.equals(plain)).toBe(false);
    expect(ok(rx.unprotectRtp(sealed)).equals(plain)).toBe(true);
    expect(() => new srtp.SrtpTestContext('AEAD_AES_128_GCM', Buffer.alloc(16), Buffer.alloc(12), { authRtp: false })).toThrow();
  });

  it.each(['AES_CM_128_HMAC_SHA1_32', 'AEAD_AES_256_GCM'] as const)('%s carries an MKI and rejects a foreign one', (suite) => {
    const { key, salt } = material(suite, 6);
    const tx = new srtp.SrtpTestContext(suite, key, salt, { mki: hex('00000001') });
    const rx = new srtp.SrtpTestContext(suite, key, salt, { mki: hex('00000001') });
    const rxOther = new srtp.SrtpTestContext(suite, key, salt, { mki: hex('00000002') });
    const plain = rtpPacket({ seq: 1, ssrc: 5 });
    const sealed = ok(tx.protectRtp(plain));
    expect(sealed.length).toBe(plain.length + tx.overhead().rtp);
    expect(tx.overhead().rtp).toBe(4 + (suite.startsWith('AEAD') ? 16 : 4));
    expect(ok(rx.unprotectRtp(sealed)).equals(plain)).toBe(true);
    expect(rxOther.unprotectRtp(sealed).result).toBe('mki-mismatch');
    const sr = rtcpPacket(5, 'sr');
    expect(ok(rx.unprotectRtcp(ok(tx.protectRtcp(sr)))).equals(sr)).toBe(true);
  });

  it('rejects key material of the wrong length', () => {
    expect(() => new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', Buffer.alloc(32), Buffer.alloc(14))).toThrow(/key length/);
    expect(() => new srtp.SrtpTestContext('AEAD_AES_128_GCM', Buffer.alloc(16), Buffer.alloc(14))).toThrow(/salt length/);
  });

  it('pass-through check: identical keys and options match, anything else does not', () => {
    const a = material('AES_CM_128_HMAC_SHA1_80', 7);
    const b = material('AES_CM_128_HMAC_SHA1_80', 8);
    const x = new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', a.key, a.salt);
    expect(x.sameKeysAs(new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', a.key, a.salt))).toBe(true);
    expect(x.sameKeysAs(new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', b.key, a.salt))).toBe(false);
    expect(x.sameKeysAs(new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', a.key, b.salt))).toBe(false);
    expect(x.sameKeysAs(new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_32', a.key, a.salt))).toBe(false);
    expect(x.sameKeysAs(new srtp.SrtpTestContext('AES_CM_128_HMAC_SHA1_80', a.key, a.salt, { encryptRtcp: false }))).toBe(false);
  });
});
