/**
 * The native engine's side of a DTLS-SRTP restore (src/dataplane/types.ts: DtlsCertificatePem,
 * DtlsSessionKeys, StreamDtls.restored): the certificate leaves as PEM and a second engine made from it has
 * the same fingerprint; a finished handshake's keys are read out and, given to a second engine as
 * `restored`, key both directions at once (state connected, no 'dtls' event, no handshake); bad saved input
 * is refused at the boundary with an error naming the field.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, DtlsSessionKeys, EngineEvent, StreamRule } from '../../src/dataplane/types';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { Party, rtpPacket, waitUntil } from '../support/rtp-packets';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(44000, 44999);
const DTLS_OPTIONS = { cipher: 'prime256v1' as const, rsaKeyBits: 2048, signature: 'sha-256' as const };

let first: DataPlane;
let second: DataPlane | undefined;
const events: EngineEvent[] = [];
const parties: Party[] = [];

beforeAll(() => {
  first = createNativeDataPlane({ threads: 2, receiveBufferBytes: 0, dtls: DTLS_OPTIONS });
  first.onEvents((batch) => events.push(...batch));
});
afterAll(async () => {
  first.close();
  await Promise.all(parties.map((p) => p.close()));
});
afterEach(() => {
  second?.close();
  second = undefined;
});

async function party(): Promise<Party> {
  const p = await Party.open(LO);
  parties.push(p);
  return p;
}

const endpoint = (port: number) => ({ family: 'IPv4' as const, address: LO, port });

describe('native engine: DTLS-SRTP restore', () => {
  it('dtlsCertificate gives PEM; an engine made from it presents the same fingerprint; a broken PEM is refused', () => {
    const pem = first.dtlsCertificate!();
    expect(pem.certificatePem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(pem.privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    second = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: { ...DTLS_OPTIONS, ...pem } });
    expect(second.dtlsFingerprint!('sha-256').value).toEqual(first.dtlsFingerprint!('sha-256').value);
    expect(() => createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: { ...DTLS_OPTIONS, certificatePem: pem.certificatePem, privateKeyPem: 'junk' } })).toThrow(/saved DTLS private key does not parse/);
    const other = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: DTLS_OPTIONS });
    const otherKey = other.dtlsCertificate!().privateKeyPem;
    other.close();
    expect(() => createNativeDataPlane({ threads: 1, receiveBufferBytes: 0, dtls: { ...DTLS_OPTIONS, certificatePem: pem.certificatePem, privateKeyPem: otherKey } })).toThrow(/does not match its certificate/);
  });

  it('keys read from a finished handshake, given to another engine as restored, key both ways at once without a handshake', async () => {
    // Engine one: relay streams 2 (active) and 3 (passive) handshake with each other; 1 and 4 face A and B.
    const fp = first.dtlsFingerprint!('sha-256');
    const a = await party();
    const b = await party();
    const port = await relayPorts.take(4, LO);
    const [p1, p2, p3, p4] = [port, port + 1, port + 2, port + 3];
    const r2: StreamRule = rule({ expected: endpoint(p3), sink: 1, dtls: { role: 'active', remoteFingerprint: fp, generation: 1 }, crypto: { inbound: { dtlsOf: 2 }, outbound: null, recrypt: false } });
    const r3: StreamRule = rule({ expected: endpoint(p2), sink: 4, dtls: { role: 'passive', remoteFingerprint: fp, generation: 1 }, crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } });
    first.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: p1 }, rule({ expected: ep(a), sink: 2, crypto: { inbound: null, outbound: { dtlsOf: 2 }, recrypt: false } }));
    first.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: p2 }, r2);
    first.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: p3 }, r3);
    first.addStream({ id: 4, component: 'rtp', localAddress: LO, localPort: p4 }, rule({ expected: ep(b), sink: 3, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
    expect(first.readDtlsKeys!([2, 3, 1, 99]).size).toBe(0); // nothing negotiated yet; unknown ids are left out
    expect(await waitUntil(() => events.filter((e) => e.type === 'dtls' && e.ok).length === 2, 5000)).toBe(true);
    const keys = first.readDtlsKeys!([2, 3]);
    const k2 = keys.get(2) as DtlsSessionKeys;
    const k3 = keys.get(3) as DtlsSessionKeys;
    expect(k2).toMatchObject({ relayIsClient: true, profile: expect.stringMatching(/^SRTP_/) });
    expect(k3.relayIsClient).toBe(false);
    expect(k2.clientKey).toEqual(k3.clientKey);
    expect(k3.peerFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    for (const id of [1, 2, 3, 4]) first.removeStream(id);

    // Engine two: the same streams, the handshakes' keys restored. Media A -> B crosses the DTLS-SRTP hop.
    second = createNativeDataPlane({ threads: 2, receiveBufferBytes: 0, dtls: { ...DTLS_OPTIONS, ...first.dtlsCertificate!() } });
    const secondEvents: EngineEvent[] = [];
    second.onEvents((batch) => secondEvents.push(...batch));
    second.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: p1 }, rule({ expected: ep(a), sink: 2, crypto: { inbound: null, outbound: { dtlsOf: 2 }, recrypt: false } }));
    second.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: p2 }, { ...r2, dtls: { ...r2.dtls!, restored: k2 } });
    second.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: p3 }, { ...r3, dtls: { ...r3.dtls!, restored: k3 } });
    second.addStream({ id: 4, component: 'rtp', localAddress: LO, localPort: p4 }, rule({ expected: ep(b), sink: 3, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
    expect(second.readCounters([2]).get(2)?.dtls).toMatchObject({ state: 'connected', role: 'active', profile: k2.profile });
    expect(second.readCounters([3]).get(3)?.dtls).toMatchObject({ state: 'connected', peerFingerprint: k3.peerFingerprint });
    const sent = rtpPacket({ seq: 1, ssrc: 0xabc, payloadBytes: 40 });
    await a.send(sent, p1, LO);
    expect(await waitUntil(() => b.received.length === 1, 2000)).toBe(true);
    expect(b.received[0]?.data).toEqual(sent);
    // The DTLS-keyed contexts publish their progress like SDES ones (the persistence tick reads it).
    expect(second.readSrtpProgress!([1]).get(1)?.outbound?.rtp).toMatchObject({ ssrc: 0xabc, seq: 1 });
    expect(secondEvents.filter((e) => e.type === 'dtls')).toEqual([]);
    expect(second.readDtlsKeys!([2]).get(2)?.clientKey).toEqual(k2.clientKey);
    for (const id of [1, 2, 3, 4]) second.removeStream(id);
  });

  it('restored keys of the wrong length or an unknown profile are refused, naming the field', async () => {
    const port = await relayPorts.take(1, LO);
    const bad = (restored: DtlsSessionKeys) =>
      first.addStream({ id: 50, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: null, sink: null, dtls: { role: 'passive', remoteFingerprint: null, generation: 1, restored }, crypto: { inbound: { dtlsOf: 50 }, outbound: null, recrypt: false } }));
    const good: DtlsSessionKeys = { profile: 'SRTP_AES128_CM_SHA1_80', clientKey: Buffer.alloc(16), clientSalt: Buffer.alloc(14), serverKey: Buffer.alloc(16), serverSalt: Buffer.alloc(14), relayIsClient: false, peerFingerprint: null };
    expect(() => bad({ ...good, clientKey: Buffer.alloc(15) })).toThrow(/rule\.dtls\.restored\.clientKey must be keys and salts of the profile's lengths/);
    expect(() => bad({ ...good, profile: 'SRTP_NULL' })).toThrow(/rule\.dtls\.restored\.profile must be a use_srtp profile/);
  });
});
