import { describe, expect, it } from 'vitest';
import {
  SDES_SUITES,
  cryptoUsable,
  formatCrypto,
  generateCrypto,
  offerableSuites,
  parseCrypto,
  sdesSuite,
  type SdesCrypto,
} from '../../src/sdp/crypto';

/** 30 bytes 0..29 → the 40-character inline key of an AES_CM_128 line. */
const KEY30 = Buffer.from(Array.from({ length: 30 }, (_, i) => i));
const B64_30 = KEY30.toString('base64');

function parsed(value: string): SdesCrypto {
  const r = parseCrypto(value);
  if (!r.ok) throw new Error(`expected a valid crypto line, got: ${r.reason}`);
  return r.crypto;
}

describe('parseCrypto', () => {
  it('parses the common line with lifetime and MKI', () => {
    const c = parsed(`a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|2^31|1:1`);
    expect(c.tag).toBe(1);
    expect(c.suite.name).toBe('AES_CM_128_HMAC_SHA1_80');
    expect(c.keys).toHaveLength(1);
    expect(c.keys[0]?.key.equals(KEY30.subarray(0, 16))).toBe(true);
    expect(c.keys[0]?.salt.equals(KEY30.subarray(16))).toBe(true);
    expect(c.keys[0]?.lifetime).toBe('2^31');
    expect(c.keys[0]?.mki).toEqual({ value: 1n, length: 1 });
    expect(c.params).toEqual({ unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, other: [] });
  });

  it('accepts the value without prefix, no lifetime, only MKI, decimal lifetime', () => {
    const plain = parsed(`7 AES_CM_128_HMAC_SHA1_32 inline:${B64_30}`);
    expect(plain.tag).toBe(7);
    expect(plain.keys[0]?.lifetime).toBeUndefined();
    expect(plain.keys[0]?.mki).toBeUndefined();
    expect(parsed(`2 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|3:4`).keys[0]?.mki).toEqual({ value: 3n, length: 4 });
    expect(parsed(`2 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|1048576`).keys[0]?.lifetime).toBe('1048576');
  });

  it('decodes keys with and without base64 padding (46-byte AES-256 material)', () => {
    const material = Buffer.from(Array.from({ length: 46 }, (_, i) => 255 - i));
    const padded = material.toString('base64');
    expect(padded.endsWith('==')).toBe(true);
    for (const b64 of [padded, padded.replace(/=+$/, '')]) {
      const c = parsed(`3 AES_256_CM_HMAC_SHA1_80 inline:${b64}`);
      expect(Buffer.concat([c.keys[0]?.key ?? Buffer.alloc(0), c.keys[0]?.salt ?? Buffer.alloc(0)]).equals(material)).toBe(true);
      expect(c.keys[0]?.key).toHaveLength(32);
    }
  });

  it('reads session parameters', () => {
    const c = parsed(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30} UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP KDR=0 WSH=128 FEC_ORDER=FEC_SRTP`);
    expect(c.params).toEqual({
      unencryptedSrtp: false,
      unencryptedSrtcp: true,
      unauthenticatedSrtp: true,
      kdr: 0,
      wsh: 128,
      other: ['FEC_ORDER=FEC_SRTP'],
    });
    expect(cryptoUsable(c)).toBe(true);
    expect(cryptoUsable(parsed(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30} KDR=10`))).toBe(false);
  });

  it('parses several keys when each carries an MKI', () => {
    const other = Buffer.alloc(30, 7).toString('base64');
    const c = parsed(`1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|2^20|1:4;inline:${other}|2^20|2:4`);
    expect(c.keys.map((k) => k.mki?.value)).toEqual([1n, 2n]);
  });

  it('parses GCM lines (28 / 44 bytes of key+salt)', () => {
    const g128 = Buffer.alloc(28, 1).toString('base64');
    const g256 = Buffer.alloc(44, 2).toString('base64');
    expect(parsed(`1 AEAD_AES_128_GCM inline:${g128}`).keys[0]?.salt).toHaveLength(12);
    expect(parsed(`2 AEAD_AES_256_GCM inline:${g256}`).keys[0]?.key).toHaveLength(32);
  });

  it.each([
    ['missing tag', `AES_CM_128_HMAC_SHA1_80 inline:${B64_30}`],
    ['non-numeric tag', `x AES_CM_128_HMAC_SHA1_80 inline:${B64_30}`],
    ['unknown suite', `1 F8_128_HMAC_SHA1_80 inline:${B64_30}`],
    ['missing key', '1 AES_CM_128_HMAC_SHA1_80'],
    ['other key method', `1 AES_CM_128_HMAC_SHA1_80 uri:${B64_30}`],
    ['short key', `1 AES_CM_128_HMAC_SHA1_80 inline:${KEY30.subarray(0, 29).toString('base64')}`],
    ['long key (AES-256 material on a 128 suite)', `1 AES_CM_128_HMAC_SHA1_80 inline:${Buffer.alloc(46).toString('base64')}`],
    ['not base64', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30.slice(0, 39)}!`],
    ['bad lifetime', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|2^x`],
    ['MKI before lifetime', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|1:1|2^31`],
    ['MKI length 0', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|1:0`],
    ['MKI value too big', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|256:1`],
    ['two keys without MKI', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30};inline:${B64_30}`],
    ['KDR out of range', `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30} KDR=25`],
    ['unencrypted GCM', `1 AEAD_AES_128_GCM inline:${Buffer.alloc(28).toString('base64')} UNENCRYPTED_SRTP`],
  ])('rejects %s', (_name, line) => {
    const r = parseCrypto(line);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason.length).toBeGreaterThan(0);
  });
});

describe('formatCrypto', () => {
  it('round-trips lines exactly, base64 unpadded by default', () => {
    for (const line of [
      `1 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|2^31|1:1`,
      `5 AES_CM_128_HMAC_SHA1_32 inline:${B64_30} UNENCRYPTED_SRTCP`,
      `9 AES_CM_128_HMAC_SHA1_80 inline:${B64_30}|2^20|1:4;inline:${B64_30}|2^20|2:4 KDR=0 WSH=64`,
    ]) {
      expect(formatCrypto(parsed(line))).toBe(line);
    }
    const material = Buffer.alloc(46, 9).toString('base64');
    const c = parsed(`3 AES_256_CM_HMAC_SHA1_32 inline:${material}`);
    expect(formatCrypto(c)).toBe(`3 AES_256_CM_HMAC_SHA1_32 inline:${material.replace(/=+$/, '')}`);
    expect(formatCrypto(c, { pad: true })).toBe(`3 AES_256_CM_HMAC_SHA1_32 inline:${material}`);
  });
});

describe('generateCrypto', () => {
  it.each(SDES_SUITES.map((s) => [s.name, s] as const))('%s: key and salt lengths, fresh randomness, parseable', (_name, suite) => {
    const a = generateCrypto(1, suite);
    const b = generateCrypto(1, suite);
    expect(a.keys[0]?.key).toHaveLength(suite.masterKeyLength);
    expect(a.keys[0]?.salt).toHaveLength(suite.masterSaltLength);
    expect(Buffer.concat([a.keys[0]?.key ?? Buffer.alloc(0), a.keys[0]?.salt ?? Buffer.alloc(0)]).equals(
      Buffer.concat([b.keys[0]?.key ?? Buffer.alloc(0), b.keys[0]?.salt ?? Buffer.alloc(0)]),
    )).toBe(false);
    const line = formatCrypto(a);
    expect(line).not.toContain('=');
    const back = parsed(line);
    expect(back.keys[0]?.key.equals(a.keys[0]?.key ?? Buffer.alloc(0))).toBe(true);
    expect(back.suite).toBe(suite);
  });

  it('carries session options, never unencrypted/unauthenticated SRTP on AEAD', () => {
    const cm = generateCrypto(2, sdesSuite('AES_CM_128_HMAC_SHA1_80') ?? SDES_SUITES[0]!, { unencryptedSrtcp: true, unauthenticatedSrtp: true });
    expect(formatCrypto(cm)).toMatch(/^2 AES_CM_128_HMAC_SHA1_80 inline:[A-Za-z0-9+/]{40} UNENCRYPTED_SRTCP UNAUTHENTICATED_SRTP$/);
    const gcm = generateCrypto(3, sdesSuite('AEAD_AES_128_GCM') ?? SDES_SUITES[0]!, { unencryptedSrtp: true });
    expect(gcm.params.unencryptedSrtp).toBe(false);
  });
});

describe('suites', () => {
  it('are in rtpengine preference order and filtered by no-/only- flags', () => {
    expect(SDES_SUITES.map((s) => s.name)).toEqual([
      'AEAD_AES_256_GCM',
      'AEAD_AES_128_GCM',
      'AES_256_CM_HMAC_SHA1_80',
      'AES_256_CM_HMAC_SHA1_32',
      'AES_CM_128_HMAC_SHA1_80',
      'AES_CM_128_HMAC_SHA1_32',
    ]);
    expect(offerableSuites(['no-AEAD_AES_256_GCM', 'no-AES_CM_128_HMAC_SHA1_32']).map((s) => s.name)).toEqual([
      'AEAD_AES_128_GCM',
      'AES_256_CM_HMAC_SHA1_80',
      'AES_256_CM_HMAC_SHA1_32',
      'AES_CM_128_HMAC_SHA1_80',
    ]);
    expect(offerableSuites(['only-AES_CM_128_HMAC_SHA1_80', 'only-AEAD_AES_128_GCM']).map((s) => s.name)).toEqual([
      'AEAD_AES_128_GCM',
      'AES_CM_128_HMAC_SHA1_80',
    ]);
    expect(sdesSuite('AES_CM_128_HMAC_SHA1_32')).toMatchObject({ srtpTagLength: 4, srtcpTagLength: 10 });
    expect(sdesSuite('NULL_HMAC_SHA1_80')).toBeUndefined();
  });
});
