/**
 * The native STUN codec and ICE-lite decisions (native/src/stun.cpp, ice.cpp through `stunTest`): RFC 5769's
 * test vectors, bounds checks, and the requests an independent client (test/support/ice-client.ts) builds.
 */
import { describe, expect, it } from 'vitest';
import { loadStunTestBinding, type StunIceConfig } from '../../src/dataplane/stun-binding';
import { bindingRequest, finish, parseResponse } from '../support/ice-client';

const stun = loadStunTestBinding();
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// RFC 5769 §2.1-2.3 (the USERNAME/SOFTWARE padding bytes are 0x20 in the RFC on purpose).
const PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
const SAMPLE_REQUEST = hex(`00 01 00 58 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 10 53 54 55 4e 20 74 65 73 74 20 63 6c 69 65 6e 74 00 24 00 04 6e 00 01 ff
  80 29 00 08 93 2f f9 b1 51 26 3b 36 00 06 00 09 65 76 74 6a 3a 68 36 76 59 20 20 20
  00 08 00 14 9a ea a7 0c bf d8 cb 56 78 1e f2 b5 b2 d3 f2 49 c1 b5 71 a2 80 28 00 04 e5 7a 3b cf`);
const SAMPLE_IPV4_RESPONSE = hex(`01 01 00 3c 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20 00 20 00 08 00 01 a1 47 e1 12 a6 43
  00 08 00 14 2b 91 f5 99 fd 9e 90 c3 8c 74 89 f9 2a f9 ba 53 f0 6b e7 d7 80 28 00 04 c0 7d 4c 96`);
const SAMPLE_IPV6_RESPONSE = hex(`01 01 00 48 21 12 a4 42 b7 e7 a7 01 bc 34 d6 86 fa 87 df ae
  80 22 00 0b 74 65 73 74 20 76 65 63 74 6f 72 20 00 20 00 14 00 02 a1 47
  01 13 a9 fa a5 d3 f1 79 bc 25 f4 b5 be d2 b9 d9
  00 08 00 14 a3 82 95 4e 4b e6 7b f1 17 84 c9 7c 82 92 c2 75 bf e3 ed 41 80 28 00 04 c8 fb 0b 4c`);

describe('STUN codec: RFC 5769 test vectors', () => {
  it('§2.1 sample request: attributes, MESSAGE-INTEGRITY with the short-term password, FINGERPRINT', () => {
    const m = stun.parse(SAMPLE_REQUEST);
    expect(m).toMatchObject({
      error: null,
      type: 0x0001,
      username: 'evtj:h6vY',
      priority: 0x6e0001ff,
      controlled: true,
      controlling: false,
      tieBreaker: '932ff9b151263b36',
      useCandidate: false,
      hasIntegrity: true,
      hasFingerprint: true,
    });
    expect(m.transactionId).toEqual(hex('b7e7a701bc34d686fa87dfae'));
    expect(stun.integrityOk(SAMPLE_REQUEST, PASSWORD)).toBe(true);
    expect(stun.integrityOk(SAMPLE_REQUEST, PASSWORD + 'x')).toBe(false);
  });

  it('§2.2 IPv4 response: XOR-MAPPED-ADDRESS 192.0.2.1:32853', () => {
    expect(stun.parse(SAMPLE_IPV4_RESPONSE)).toMatchObject({
      error: null,
      type: 0x0101,
      xorMapped: { family: 'IPv4', address: '192.0.2.1', port: 32853 },
    });
    expect(stun.integrityOk(SAMPLE_IPV4_RESPONSE, PASSWORD)).toBe(true);
  });

  it('§2.3 IPv6 response: XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]:32853', () => {
    expect(stun.parse(SAMPLE_IPV6_RESPONSE)).toMatchObject({
      error: null,
      xorMapped: { family: 'IPv6', address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 },
    });
    expect(stun.integrityOk(SAMPLE_IPV6_RESPONSE, PASSWORD)).toBe(true);
  });

  it('CRC-32 is the ISO-HDLC one (check value of "123456789")', () => {
    expect(stun.crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('a flipped bit anywhere but the FINGERPRINT attribute header fails FINGERPRINT or MESSAGE-INTEGRITY', () => {
    // (A changed FINGERPRINT type is an unknown attribute after MESSAGE-INTEGRITY, which RFC 8489 §14.5 ignores.)
    for (let i = 0; i < SAMPLE_REQUEST.length; i++) {
      if (i >= SAMPLE_REQUEST.length - 8 && i < SAMPLE_REQUEST.length - 4) continue;
      const b = Buffer.from(SAMPLE_REQUEST);
      b[i] = b[i]! ^ 0x01;
      const m = stun.parse(b);
      const accepted = m.error === null && stun.integrityOk(b, PASSWORD);
      expect(accepted, `byte ${i}`).toBe(false);
    }
  });
});

describe('STUN codec: bounds checks', () => {
  it('refuses truncated, oversized, mis-sized and non-STUN datagrams by name', () => {
    expect(stun.parse(SAMPLE_REQUEST.subarray(0, 19)).error).toBe('too-short');
    expect(stun.parse(SAMPLE_REQUEST.subarray(0, 60)).error).toBe('bad-length');
    expect(stun.parse(Buffer.alloc(1400)).error).toBe('too-long');
    const cookie = Buffer.from(SAMPLE_REQUEST);
    cookie[4] = 0;
    expect(stun.parse(cookie).error).toBe('not-stun');
    const top = Buffer.from(SAMPLE_REQUEST);
    top[0] = 0x80;
    expect(stun.parse(top).error).toBe('not-stun');
    // An attribute whose length runs past the message (header length kept consistent).
    const overrun = Buffer.from(SAMPLE_REQUEST.subarray(0, 28));
    overrun.writeUInt16BE(8, 2);
    overrun.writeUInt16BE(0x0006, 20);
    overrun.writeUInt16BE(200, 22);
    expect(stun.parse(overrun).error).toBe('bad-attribute');
    // FINGERPRINT that is wrong.
    const fp = Buffer.from(SAMPLE_REQUEST);
    fp[fp.length - 1] = fp[fp.length - 1]! ^ 1;
    expect(stun.parse(fp).error).toBe('bad-fingerprint');
  });

  it('a request built by the independent client parses, and its integrity verifies', () => {
    const { packet, transactionId } = bindingRequest({ username: 'relay:peer', password: 'pw-0123456789abcdefghij', useCandidate: true });
    expect(stun.parse(packet)).toMatchObject({ error: null, username: 'relay:peer', useCandidate: true, controlling: true, hasFingerprint: true });
    expect(stun.parse(packet).transactionId).toEqual(transactionId);
    expect(stun.integrityOk(packet, 'pw-0123456789abcdefghij')).toBe(true);
  });
});

describe('ICE-lite decisions and answers', () => {
  const config: StunIceConfig = { localUfrag: 'relay', localPwd: 'relay-password-0123456789', remoteUfrag: 'peer', controlling: false, lite: true, tieBreaker: '8000000000000000' };
  const check = (o: Partial<Parameters<typeof bindingRequest>[0]> = {}) =>
    bindingRequest({ username: 'relay:peer', password: config.localPwd, useCandidate: true, ...o }).packet;

  it('answers a valid nominating check; the answer carries XOR-MAPPED-ADDRESS, integrity and fingerprint', () => {
    const req = check();
    expect(stun.decide(req, config, false)).toEqual({ verdict: 'answer', nominate: true, switchRole: false });
    const res = parseResponse(stun.answer(req, config, { family: 'IPv4', address: '127.0.0.7', port: 40123 }, false), config.localPwd);
    expect(res).toMatchObject({ type: 0x0101, xorMapped: { address: '127.0.0.7', port: 40123 }, integrityOk: true, fingerprintOk: true });
    expect(res!.transactionId).toEqual(stun.parse(req).transactionId);
  });

  it('rejects wrong ufrag, wrong remote ufrag, bad integrity and no integrity', () => {
    expect(stun.decide(check({ username: 'other:peer' }), config, false).verdict).toBe('reject');
    expect(stun.decide(check({ username: 'relay:stranger' }), config, false).verdict).toBe('reject');
    expect(stun.decide(check({ username: 'relayx:peer' }), config, false).verdict).toBe('reject');
    expect(stun.decide(check({ password: 'wrong' }), config, false).verdict).toBe('reject');
    expect(stun.decide(check({ password: null }), config, false).verdict).toBe('reject');
  });

  it('a check without USE-CANDIDATE is answered and nominates nothing', () => {
    expect(stun.decide(check({ useCandidate: false }), config, false)).toEqual({ verdict: 'answer', nominate: false, switchRole: false });
  });

  it('role conflicts follow RFC 8445 §7.3.1.1 with the tie-breaker', () => {
    const full = { ...config, lite: false };
    // Both controlling: the larger tie-breaker keeps the role; the smaller one switches.
    const controllingLow = check({ role: 'controlling', tieBreaker: '0000000000000001' });
    const controllingHigh = check({ role: 'controlling', tieBreaker: 'ffffffffffffffff' });
    expect(stun.decide(controllingLow, { ...full, controlling: true }, true).verdict).toBe('role-conflict');
    expect(stun.decide(controllingHigh, { ...full, controlling: true }, true)).toMatchObject({ verdict: 'answer', switchRole: true, nominate: true });
    // Both controlled: the larger tie-breaker switches to controlling; the smaller answers 487.
    const controlledLow = check({ role: 'controlled', tieBreaker: '0000000000000001', useCandidate: false });
    const controlledHigh = check({ role: 'controlled', tieBreaker: 'ffffffffffffffff', useCandidate: false });
    expect(stun.decide(controlledLow, full, false)).toMatchObject({ verdict: 'answer', switchRole: true });
    expect(stun.decide(controlledHigh, full, false).verdict).toBe('role-conflict');
    const res = parseResponse(stun.answer(controlledHigh, full, { family: 'IPv4', address: '127.0.0.1', port: 9 }, true), full.localPwd);
    expect(res).toMatchObject({ type: 0x0111, errorCode: 487, integrityOk: true, fingerprintOk: true });
  });

  it('the answer of a check built with finish() over extra attributes still verifies (unknown attributes skipped)', () => {
    const header = Buffer.alloc(20);
    header.writeUInt16BE(1, 0);
    header.writeUInt32BE(0x2112a442, 4);
    const software = Buffer.alloc(8);
    software.writeUInt16BE(0x8022, 0);
    software.writeUInt16BE(4, 2);
    software.write('test', 4);
    const user = Buffer.alloc(16);
    user.writeUInt16BE(0x0006, 0);
    user.writeUInt16BE(10, 2);
    user.write('relay:peer', 4);
    const req = finish(header, [software, user], config.localPwd, true);
    expect(stun.decide(req, config, false).verdict).toBe('answer');
  });
});
