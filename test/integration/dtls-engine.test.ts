/**
 * DTLS-SRTP in the native engine on real loopback sockets. The engine talks DTLS to itself: stream 2 (active)
 * and stream 3 (passive) are each other's party, so plain RTP from A (stream 1) is SRTP-encrypted with the
 * keys stream 2's handshake exported, decrypted by stream 3 with the keys of its own handshake, and reaches
 * B (stream 4) in the clear, and back. Streams are spread over two I/O threads, so keys cross threads.
 */
import * as dgram from 'node:dgram';
import { beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DtlsFingerprint, EngineEvent, StreamDtls, StreamIce, StreamRule } from '../../src/dataplane/types';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { LO, useEngineHarness } from '../support/engine-harness';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';

const TIMEOUT_MS = 1500;
const relayPorts = new PortRuns(46000, 46999);

const h = useEngineHarness({ threads: 2, env: { NGRELAY_DTLS_TIMEOUT_MS: String(TIMEOUT_MS) } });
const { events, party, counters } = h;
let fingerprint: DtlsFingerprint;
beforeAll(() => {
  fingerprint = h.engine.dtlsFingerprint!('sha-256');
});

function add(id: number, port: number, r: StreamRule): void {
  h.engine.addStream({ id, component: 'rtp', localAddress: LO, localPort: port }, r);
  h.track(id);
}

const endpoint = (port: number) => ({ family: 'IPv4' as const, address: LO, port });
const colons = (b: Buffer) => [...b].map((x) => x.toString(16).toUpperCase().padStart(2, '0')).join(':');

/** A ↔ 1 | 2 ⇄(DTLS-SRTP)⇄ 3 | 4 ↔ B; `dtls3` overrides stream 3's DTLS. */
async function dtlsCall(dtls3: Partial<StreamDtls> = {}) {
  const a = await party();
  const b = await party();
  const port = await relayPorts.take(4, LO);
  const [p1, p2, p3, p4] = [port, port + 1, port + 2, port + 3];
  add(1, p1, rule({ expected: ep(a), sink: 2, crypto: { inbound: null, outbound: { dtlsOf: 2 }, recrypt: false } }));
  add(2, p2, rule({ expected: endpoint(p3), sink: 1, dtls: { role: 'active', remoteFingerprint: fingerprint, generation: 1 }, crypto: { inbound: { dtlsOf: 2 }, outbound: null, recrypt: false } }));
  add(3, p3, rule({ expected: endpoint(p2), sink: 4, dtls: { role: 'passive', remoteFingerprint: fingerprint, generation: 1, ...dtls3 }, crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
  add(4, p4, rule({ expected: ep(b), sink: 3, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
  return { a, b, p1, p2, p3, p4 };
}

async function sendRtp(from: Party, port: number, count: number, ssrc: number, firstSeq = 1): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const pkt = rtpPacket({ seq: firstSeq + i, ssrc, payloadBytes: 80 });
    pkt.fill(0x10 + i, 12);
    sent.push(pkt);
    await from.send(pkt, port, LO);
  }
  return sent;
}

describe('native engine: DTLS-SRTP', () => {
  it('dtlsFingerprint: the certificate digest per hash; an unknown hash throws', () => {
    expect(fingerprint.hash).toBe('sha-256');
    expect(fingerprint.value).toHaveLength(32);
    expect(h.engine.dtlsFingerprint!('sha-1').value).toHaveLength(20);
    expect(h.engine.dtlsFingerprint!('sha-512').value).toHaveLength(64);
    expect(() => h.engine.dtlsFingerprint!('md5' as DtlsFingerprint['hash'])).toThrow(TypeError);
  });

  it('an RSA certificate signed with sha-1 can be asked for', () => {
    const rsa = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: { cipher: 'rsa', rsaKeyBits: 2048, signature: 'sha-1' } });
    try {
      expect(rsa.dtlsFingerprint!('sha-256').value).toHaveLength(32);
      expect(rsa.dtlsFingerprint!('sha-256').value.equals(fingerprint.value)).toBe(false);
    } finally {
      rsa.close();
    }
  });

  it('handshakes active ↔ passive, keys SRTP both ways, and media crosses the DTLS-SRTP hop intact', async () => {
    const { a, b, p1, p4 } = await dtlsCall();
    expect(await waitUntil(() => events.filter((e) => e.type === 'dtls').length === 2, 5000)).toBe(true);
    for (const id of [2, 3]) {
      const ev = events.find((e) => e.type === 'dtls' && e.id === id);
      expect(ev).toMatchObject({ ok: true, error: null });
      expect(counters(id).dtls).toMatchObject({ state: 'connected', role: id === 2 ? 'active' : 'passive', error: null, peerFingerprint: colons(fingerprint.value) });
    }
    const profile = counters(2).dtls!.profile;
    expect(profile).toMatch(/^SRTP_(AEAD_AES_(128|256)_GCM|AES128_CM_SHA1_(80|32))$/);
    expect(counters(3).dtls!.profile).toBe(profile);

    const toB = await sendRtp(a, p1, 5, 0xa1);
    expect(await waitUntil(() => b.received.length === 5)).toBe(true);
    expect(b.received.map((r) => r.data)).toEqual(toB);
    const toA = await sendRtp(b, p4, 4, 0xb1);
    expect(await waitUntil(() => a.received.length === 4)).toBe(true);
    expect(a.received.map((r) => r.data)).toEqual(toA);
    // The hop carried SRTP that authenticated (a wrong key would count here and deliver nothing).
    expect(counters(3)).toMatchObject({ packets: 5, srtpAuthFailed: 0 });
    expect(counters(2)).toMatchObject({ packets: 4, srtpAuthFailed: 0 });
  });

  it('a certificate that does not match a=fingerprint fails the handshake: no keys, no media, counted', async () => {
    const wrong: DtlsFingerprint = { hash: 'sha-256', value: Buffer.alloc(32, 0xab) };
    const { a, b, p1 } = await dtlsCall({ remoteFingerprint: wrong });
    expect(await waitUntil(() => events.some((e) => e.type === 'dtls' && e.id === 3), 5000)).toBe(true);
    expect(events.find((e) => e.type === 'dtls' && e.id === 3)).toMatchObject({ ok: false, profile: null, error: 'certificate fingerprint mismatch' });
    expect(counters(3).dtls).toMatchObject({ state: 'failed', error: 'certificate fingerprint mismatch' });
    await sendRtp(a, p1, 3, 0xa2);
    await sleep(200);
    expect(b.received).toHaveLength(0);
    expect(counters(3).errors).toBeGreaterThanOrEqual(3);
  });

  it('a handshake that never completes times out, while other streams keep forwarding', async () => {
    const silent = await party();
    const a = await party();
    const b = await party();
    const port = await relayPorts.take(4, LO);
    add(5, port, rule({ expected: ep(silent), sink: null, dtls: { role: 'active', remoteFingerprint: fingerprint, generation: 1 }, crypto: { inbound: { dtlsOf: 5 }, outbound: null, recrypt: false } }));
    add(6, port + 1, rule({ expected: ep(a), sink: 7 }));
    add(7, port + 2, rule({ expected: ep(b), sink: 6 }));
    // The ClientHello goes out (and is retransmitted) to the silent party.
    expect(await waitUntil(() => silent.received.length >= 1)).toBe(true);
    expect(silent.received[0]!.data[0]).toBe(22); // DTLS handshake record
    expect(counters(5).dtls!.state).toBe('connecting');
    await sendRtp(a, port + 1, 3, 0xa3);
    expect(await waitUntil(() => b.received.length === 3)).toBe(true);
    expect(await waitUntil(() => counters(5).dtls?.state === 'failed', TIMEOUT_MS + 3000)).toBe(true);
    expect(counters(5).dtls!.error).toBe('handshake timeout');
    // The counters change at once; the event follows in the I/O thread's next event flush.
    expect(await waitUntil(() => events.some((e) => e.type === 'dtls' && e.id === 5))).toBe(true);
    expect(events.find((e) => e.type === 'dtls' && e.id === 5)).toMatchObject({ ok: false, error: 'handshake timeout' });
    expect(silent.received.length).toBeGreaterThanOrEqual(2); // retransmitted before it gave up
  });

  it('a changed generation runs a new handshake; removeStream sends close_notify', async () => {
    const { p2, p3 } = await dtlsCall();
    // Only streams 2 and 3 count: a late event of an earlier test's stream may still arrive.
    const handshakes = (okOnly: boolean) => events.filter((e) => e.type === 'dtls' && (e.id === 2 || e.id === 3) && (!okOnly || e.ok)).length;
    expect(await waitUntil(() => handshakes(false) === 2, 5000)).toBe(true);
    h.clearEvents();
    // Both sides re-key (as after a new a=fingerprint or an ICE restart).
    h.engine.updateStream(3, rule({ expected: endpoint(p2), sink: 4, dtls: { role: 'passive', remoteFingerprint: fingerprint, generation: 2 }, crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
    h.engine.updateStream(2, rule({ expected: endpoint(p3), sink: 1, dtls: { role: 'active', remoteFingerprint: fingerprint, generation: 2 }, crypto: { inbound: { dtlsOf: 2 }, outbound: null, recrypt: false } }));
    expect(await waitUntil(() => handshakes(true) === 2, 5000)).toBe(true);
    h.engine.removeStream(2);
    h.untrack(2);
    expect(await waitUntil(() => counters(3).dtls?.state === 'closed')).toBe(true);
  });

  it('without rule.dtls DTLS records are dropped and counted as malformed', async () => {
    const a = await party();
    const port = await relayPorts.take(2, LO);
    add(8, port, rule({ expected: ep(a), sink: null }));
    const before = h.engine.totals().malformed;
    await a.send(Buffer.from([22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]), port, LO);
    expect(await waitUntil(() => h.engine.totals().malformed === before + 1)).toBe(true);
    expect(counters(8).dtls).toBeUndefined();
  });

  it('a large flight (RSA-3072 certificate) leaves as datagrams of whole records within the 1200-byte MTU', async () => {
    const rsa = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: { cipher: 'rsa', rsaKeyBits: 3072, signature: 'sha-256' } });
    const rsaEvents: EngineEvent[] = [];
    rsa.onEvents((batch) => rsaEvents.push(...batch));
    // A tap between the two streams: every datagram passes through the test, which notes its size.
    const towardsA = dgram.createSocket('udp4');
    const towardsB = dgram.createSocket('udp4');
    await Promise.all([towardsA, towardsB].map((sock) => new Promise<void>((r) => sock.bind(0, LO, () => r()))));
    const port = await relayPorts.take(2, LO);
    const sizes: number[] = [];
    towardsA.on('message', (m) => towardsB.send(m, port + 1, LO));
    towardsB.on('message', (m) => {
      sizes.push(m.length);
      towardsA.send(m, port, LO);
    });
    try {
      const fp = rsa.dtlsFingerprint!('sha-256');
      const tap = (sock: dgram.Socket) => endpoint(sock.address().port);
      rsa.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: tap(towardsA), sink: null, dtls: { role: 'active', remoteFingerprint: fp, generation: 1 } }));
      rsa.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 1 }, rule({ expected: tap(towardsB), sink: null, dtls: { role: 'passive', remoteFingerprint: fp, generation: 1 } }));
      expect(await waitUntil(() => rsaEvents.filter((e) => e.type === 'dtls' && e.ok).length === 2, 8000)).toBe(true);
      // The passive side's flight (ServerHello, ~1.3 kB certificate, key exchange, ...) needed several datagrams.
      expect(sizes.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...sizes)).toBeLessThanOrEqual(1200);
      expect(sizes.reduce((a, b) => a + b, 0)).toBeGreaterThan(1500);
    } finally {
      rsa.close();
      towardsA.close();
      towardsB.close();
    }
  });

  it('DTLS over ICE: the active side starts once ICE selected the pair, then media flows keyed by the handshake', async () => {
    const a = await party();
    const b = await party();
    const port = await relayPorts.take(4, LO);
    const [p1, p2, p3, p4] = [port, port + 1, port + 2, port + 3];
    const cand = (p: number) => [{ foundation: '1', component: 1, priority: 2130706431, type: 'host' as const, endpoint: endpoint(p) }];
    const base = { lite: false, tieBreaker: '7000000000000000' };
    const ice2: StreamIce = { ...base, localUfrag: 'Lf22', localPwd: 'left-password-0123456789', remoteUfrag: 'Rt33', remotePwd: 'right-password-0123456789', controlling: true, remoteCandidates: cand(p3) };
    const ice3: StreamIce = { ...base, localUfrag: 'Rt33', localPwd: 'right-password-0123456789', remoteUfrag: 'Lf22', remotePwd: 'left-password-0123456789', controlling: false, tieBreaker: '0100000000000000', remoteCandidates: cand(p2) };
    add(1, p1, rule({ expected: ep(a), sink: 2, crypto: { inbound: null, outbound: { dtlsOf: 2 }, recrypt: false } }));
    add(2, p2, rule({ expected: null, sink: 1, ice: ice2, dtls: { role: 'active', remoteFingerprint: fingerprint, generation: 1 }, crypto: { inbound: { dtlsOf: 2 }, outbound: null, recrypt: false } }));
    add(3, p3, rule({ expected: null, sink: 4, ice: ice3, dtls: { role: 'passive', remoteFingerprint: fingerprint, generation: 1 }, crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
    add(4, p4, rule({ expected: ep(b), sink: 3, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
    expect(await waitUntil(() => events.filter((e) => e.type === 'dtls' && e.ok).length === 2, 5000)).toBe(true);
    const selected = events.find((e) => e.type === 'ice-selected' && e.id === 2);
    const dtls = events.find((e) => e.type === 'dtls' && e.id === 2);
    expect(selected).toBeDefined();
    expect(dtls!.atMs).toBeGreaterThanOrEqual(selected!.atMs);
    expect(counters(2).ice).toMatchObject({ state: 'connected', selected: endpoint(p3) });
    expect(counters(3).ice).toMatchObject({ state: 'connected', selected: endpoint(p2) });
    const toB = await sendRtp(a, p1, 3, 0xa5);
    expect(await waitUntil(() => b.received.length === 3)).toBe(true);
    expect(b.received.map((r) => r.data)).toEqual(toB);
    const toA = await sendRtp(b, p4, 3, 0xb5);
    expect(await waitUntil(() => a.received.length === 3)).toBe(true);
    expect(a.received.map((r) => r.data)).toEqual(toA);
  });
});
