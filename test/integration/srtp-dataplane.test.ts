/**
 * SRTP inside the native data plane (DataPlane contract, rule.crypto), below the control plane: what the
 * engine does with keys it is given. Packets are protected with the native core's test binding (the libsrtp2
 * interop of the same paths is test/integration/srtp-bridge.test.ts).
 * - the pcap recording holds the decrypted packets, also under pass-through;
 * - an update with unchanged keys keeps the context (replay window / ROC), new keys replace it;
 * - unusable keys make updateStream throw and leave the stream as it was;
 * - SRTCP under rtcp-mux; SRTP packets with the RTP padding bit are not judged by their (encrypted) last byte.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { loadSrtpTestBinding, type SrtpTestContext } from '../../src/dataplane/srtp-binding';
import type { DataPlane, Endpoint, SrtpKeys, StreamCrypto, StreamRule } from '../../src/dataplane/types';
import { Party, rtcpPacket, rtpPacket, waitUntil } from '../support/rtp-packets';
import { endpointOf, PortRuns, streamRule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const srtp = loadSrtpTestBinding();

let engine: DataPlane;
let parties: Party[] = [];
let workDir = '';

function keys(suite: SrtpKeys['suite'] = 'AES_CM_128_HMAC_SHA1_80'): SrtpKeys {
  const d = srtp.suites().find((s) => s.name === suite);
  if (!d) throw new Error(suite);
  return {
    suite,
    key: randomBytes(d.masterKeyLength),
    salt: randomBytes(d.masterSaltLength),
    unencryptedSrtp: false,
    unencryptedSrtcp: false,
    unauthenticatedSrtp: false,
  };
}

function ctx(k: SrtpKeys): SrtpTestContext {
  return new srtp.SrtpTestContext(k.suite, k.key, k.salt);
}

function ok(o: { result: string; packet: Buffer | null }): Buffer {
  if (o.result !== 'ok' || !o.packet) throw new Error(`SRTP ${o.result}`);
  return o.packet;
}

const ep = (p: Party): Endpoint => endpointOf({ address: LO, port: p.port });
const rule = (partial: Partial<StreamRule>): StreamRule => streamRule(partial, 'off');

function crypto(inbound: SrtpKeys | null, outbound: SrtpKeys | null): StreamCrypto {
  return { inbound, outbound, recrypt: false };
}

const relayPorts = new PortRuns(44400, 44499);
const freePorts = (count: number): Promise<number> => relayPorts.take(count, LO);

async function party(): Promise<Party> {
  const p = await Party.open();
  parties.push(p);
  return p;
}

/** UDP payloads of a LINKTYPE_RAW / IPv4 pcap written by the engine. */
function pcapPayloads(file: string): Buffer[] {
  const data = readFileSync(file);
  const out: Buffer[] = [];
  let off = 24;
  while (off + 16 <= data.length) {
    const incl = data.readUInt32LE(off + 8);
    const ip = data.subarray(off + 16, off + 16 + incl);
    const ihl = ((ip[0] as number) & 0x0f) * 4;
    out.push(Buffer.from(ip.subarray(ihl + 8)));
    off += 16 + incl;
  }
  return out;
}

beforeEach(() => {
  engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20 });
  workDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-srtp-dp-'));
});

afterEach(async () => {
  engine.close();
  await Promise.all(parties.map((p) => p.close()));
  parties = [];
  rmSync(workDir, { recursive: true, force: true });
});

/** A sends SRTP with `ka` to stream 1 (port), which decrypts and forwards out of stream 2 (port + 2) to B. */
async function srtpToPlain(suite?: SrtpKeys['suite']): Promise<{ a: Party; b: Party; port: number; ka: SrtpKeys; r1: StreamRule }> {
  const a = await party();
  const b = await party();
  const port = await freePorts(4);
  const ka = keys(suite);
  const r1 = rule({ expected: ep(a), sink: 2, crypto: crypto(ka, null) });
  engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, r1);
  engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }));
  return { a, b, port, ka, r1 };
}

async function send(from: Party, port: number, packets: Buffer[]): Promise<void> {
  for (const p of packets) await from.send(p, port, LO);
}

describe('SRTP in the native data plane', () => {
  it('records decrypted packets, for decrypt-and-forward and for pass-through alike', async () => {
    const { a, b, port, ka } = await srtpToPlain();
    const file = path.join(workDir, 'dec.pcap');
    engine.startRecording({ id: 1, path: file, format: 'raw', egress: false });
    engine.setRecordingStreams(1, [1]);
    const sender = ctx(ka);
    const plain = Array.from({ length: 10 }, (_, i) => rtpPacket({ seq: 100 + i, ssrc: 0xabc, payloadBytes: 60 + i }));
    const wire = plain.map((p) => ok(sender.protectRtp(p)));
    await send(a, port, wire);
    expect(await waitUntil(() => b.received.length === 10)).toBe(true);
    expect(b.received.map((r) => r.data.toString('hex'))).toEqual(plain.map((p) => p.toString('hex')));

    // Pass-through: the same keys both ways, B gets the SRTP bytes untouched, the pcap still shows plain RTP.
    engine.updateStream(1, rule({ expected: ep(a), sink: 2, crypto: crypto(ka, ka) }));
    const plain2 = Array.from({ length: 10 }, (_, i) => rtpPacket({ seq: 200 + i, ssrc: 0xabc, payloadBytes: 90 }));
    const wire2 = plain2.map((p) => ok(sender.protectRtp(p)));
    await send(a, port, wire2);
    expect(await waitUntil(() => b.received.length === 20)).toBe(true);
    expect(b.received.slice(10).map((r) => r.data.toString('hex'))).toEqual(wire2.map((p) => p.toString('hex')));

    const stopped = engine.stopRecording(1);
    expect(stopped?.written).toBe(20);
    expect(pcapPayloads(file).map((p) => p.toString('hex'))).toEqual([...plain, ...plain2].map((p) => p.toString('hex')));
  });

  it('keeps the SRTP state across an update with unchanged keys and switches on new keys', async () => {
    const { a, b, port, ka, r1 } = await srtpToPlain('AEAD_AES_128_GCM');
    const sender = ctx(ka);
    const wire = Array.from({ length: 5 }, (_, i) => ok(sender.protectRtp(rtpPacket({ seq: 10 + i, ssrc: 7 }))));
    await send(a, port, wire);
    expect(await waitUntil(() => b.received.length === 5)).toBe(true);

    // Same keys (fresh Buffers), new signalling generation: the replay window survives, so a replay is refused.
    engine.updateStream(1, { ...r1, signalGeneration: 2, crypto: crypto({ ...ka, key: Buffer.from(ka.key), salt: Buffer.from(ka.salt) }, null) });
    await send(a, port, [wire[2] as Buffer, ok(sender.protectRtp(rtpPacket({ seq: 15, ssrc: 7 })))]);
    expect(await waitUntil(() => b.received.length === 6)).toBe(true);
    let c = engine.readCounters([1]).get(1);
    expect(c?.srtpReplayed).toBe(1);
    expect(c?.errors).toBe(1);

    // New keys: packets under the old key now fail authentication, the new sender gets through.
    const kb = keys('AEAD_AES_128_GCM');
    engine.updateStream(1, { ...r1, signalGeneration: 3, crypto: crypto(kb, null) });
    const fresh = ctx(kb);
    await send(a, port, [ok(sender.protectRtp(rtpPacket({ seq: 16, ssrc: 7 }))), ok(fresh.protectRtp(rtpPacket({ seq: 17, ssrc: 7 })))]);
    expect(await waitUntil(() => b.received.length === 7)).toBe(true);
    c = engine.readCounters([1]).get(1);
    expect(c?.srtpAuthFailed).toBe(1);
    expect(c?.errors).toBe(2);
    expect(b.received[6]?.data.readUInt16BE(2)).toBe(17);
  });

  it('refuses unusable keys and leaves the stream as it was', async () => {
    const { a, b, port, ka, r1 } = await srtpToPlain();
    expect(() => engine.updateStream(1, { ...r1, crypto: crypto({ ...ka, key: Buffer.alloc(5) }, null) })).toThrow(/SRTP/);
    expect(() =>
      engine.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: port + 1 }, rule({ crypto: crypto(null, { ...ka, salt: Buffer.alloc(3) }) })),
    ).toThrow(/SRTP/);
    await send(a, port, [ok(ctx(ka).protectRtp(rtpPacket({ seq: 1, ssrc: 9 })))]);
    expect(await waitUntil(() => b.received.length === 1)).toBe(true);
  });

  it('decrypts SRTCP muxed on the RTP port and encrypts RTCP towards an SRTP party', async () => {
    const a = await party();
    const b = await party();
    const port = await freePorts(4);
    const ka = keys();
    const kb = keys('AES_CM_128_HMAC_SHA1_32');
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 3, crypto: crypto(ka, kb) }));
    engine.addStream({ id: 2, component: 'rtcp', localAddress: LO, localPort: port, muxedWith: 1 }, rule({ expected: ep(a), sink: 4, crypto: crypto(ka, kb) }));
    engine.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }));
    engine.addStream({ id: 4, component: 'rtcp', localAddress: LO, localPort: port + 2, muxedWith: 3 }, rule({ expected: ep(b), sink: 2 }));
    const sender = ctx(ka);
    const rtp = rtpPacket({ seq: 5, ssrc: 0x55 });
    const rtcp = rtcpPacket(0x55, 'sr');
    await send(a, port, [ok(sender.protectRtp(rtp)), ok(sender.protectRtcp(rtcp))]);
    expect(await waitUntil(() => b.received.length === 2)).toBe(true);
    const receiver = ctx(kb);
    const got = b.received.map((r) => r.data);
    const rtcpOut = got.find((p) => (p[1] as number) === 200) as Buffer;
    const rtpOut = got.find((p) => (p[1] as number) !== 200) as Buffer;
    expect(ok(receiver.unprotectRtp(rtpOut)).equals(rtp)).toBe(true);
    expect(ok(receiver.unprotectRtcp(rtcpOut)).equals(rtcp)).toBe(true);
    expect(engine.readCounters([2]).get(2)?.packets).toBe(1);
  });

  it('does not read the padding count of an SRTP packet before decrypting it', async () => {
    const { a, b, port, ka } = await srtpToPlain();
    const sender = ctx(ka);
    // Padded RTP: after protection the last byte is tag, usually larger than the packet would allow.
    const plain = Array.from({ length: 20 }, (_, i) => rtpPacket({ seq: 300 + i, ssrc: 0x66, payloadBytes: 20, padding: 4 }));
    await send(a, port, plain.map((p) => ok(sender.protectRtp(p))));
    expect(await waitUntil(() => b.received.length === 20)).toBe(true);
    expect(b.received.map((r) => r.data.toString('hex'))).toEqual(plain.map((p) => p.toString('hex')));
    expect(engine.readCounters([1]).get(1)?.errors).toBe(0);
  });
});
