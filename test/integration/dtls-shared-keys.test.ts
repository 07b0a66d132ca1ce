/**
 * DTLS-SRTP keys shared across the sockets of one media (ICE with several addresses, src/call/ice-sockets.ts):
 * crypto {dtlsOf} naming a stream other than the usual one (inbound: the stream's own socket; outbound: its
 * sink) makes the engine take that stream's handshake keys. The engine talks DTLS to itself (stream 2 active,
 * stream 3 passive); stream 5 is a second socket of stream 3's party that never handshakes, and still
 * decrypts with stream 3's keys, and SRTP towards that party leaves from it with them. When the key source
 * goes, the streams that took keys from it drop what they cannot protect (counted), and nothing breaks.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { DtlsFingerprint, StreamRule } from '../../src/dataplane/types';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { LO, useEngineHarness } from '../support/engine-harness';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';

const relayPorts = new PortRuns(46000, 46999);
const h = useEngineHarness({ threads: 2 });
const { events, party, counters } = h;
let fingerprint: DtlsFingerprint;
beforeAll(() => {
  fingerprint = h.engine.dtlsFingerprint!('sha-256');
});

const endpoint = (port: number) => ({ family: 'IPv4' as const, address: LO, port });

function add(id: number, port: number, r: StreamRule): void {
  h.engine.addStream({ id, component: 'rtp', localAddress: LO, localPort: port }, r);
  h.track(id);
}

async function sendRtp(from: Party, port: number, count: number, ssrc: number, firstSeq = 1): Promise<Buffer[]> {
  const sent: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const pkt = rtpPacket({ seq: firstSeq + i, ssrc, payloadBytes: 80 });
    pkt.fill(0x20 + i, 12);
    sent.push(pkt);
    await from.send(pkt, port, LO);
  }
  return sent;
}

describe('native engine: DTLS-SRTP keys of another stream (crypto {dtlsOf})', () => {
  it('a second socket decrypts and encrypts with the keys of the handshake its media ran on another socket', async () => {
    const a = await party();
    const b = await party();
    const port = await relayPorts.take(5, LO);
    const [p1, p2, p3, p4, p5] = [port, port + 1, port + 2, port + 3, port + 4];
    const dtls = (role: 'active' | 'passive') => ({ role, remoteFingerprint: fingerprint, generation: 1 });
    // A ↔ 1 | 2 ⇄(DTLS-SRTP)⇄ 3 (+ 5, the same party's second socket) | 4 ↔ B.
    add(1, p1, rule({ expected: ep(a), sink: 2, crypto: { inbound: null, outbound: { dtlsOf: 2 }, recrypt: false } }));
    const rule2 = rule({ expected: endpoint(p3), sink: 1, dtls: dtls('active'), crypto: { inbound: { dtlsOf: 2 }, outbound: null, recrypt: false } });
    add(2, p2, rule2);
    add(3, p3, rule({ expected: endpoint(p2), sink: 4, dtls: dtls('passive'), crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
    add(4, p4, rule({ expected: ep(b), sink: 3, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
    add(5, p5, rule({ expected: endpoint(p2), sink: 4, dtls: dtls('passive'), crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
    expect(await waitUntil(() => events.filter((e) => e.type === 'dtls' && e.ok).length === 2, 5000)).toBe(true);

    // Stream 2's party now sends to (and is sent to from) the second socket: SRTP from 2 arrives on 5.
    h.engine.updateStream(2, { ...rule2, expected: endpoint(p5) });
    h.engine.updateStream(4, rule({ expected: ep(b), sink: 5, crypto: { inbound: null, outbound: { dtlsOf: 3 }, recrypt: false } }));
    await sleep(50);
    const toB = await sendRtp(a, p1, 5, 0xa1);
    expect(await waitUntil(() => b.received.length === 5)).toBe(true);
    expect(b.received.map((r) => r.data)).toEqual(toB);
    expect(counters(5)).toMatchObject({ packets: 5, srtpAuthFailed: 0 });
    expect(counters(5).dtls?.state).not.toBe('connected');  // its own session never ran
    const toA = await sendRtp(b, p4, 4, 0xb1);
    expect(await waitUntil(() => a.received.length === 4)).toBe(true);
    expect(a.received.map((r) => r.data)).toEqual(toA);
    // It left from socket 5 (stream 2 learned or saw it there) and authenticated with stream 3's keys.
    expect(counters(2)).toMatchObject({ packets: 4, srtpAuthFailed: 0 });

    // The key source goes: streams 4 and 5 have no keys any more, drop and count, and keep running.
    h.engine.removeStream(3);
    h.untrack(3);
    await sleep(50);
    const errors4 = counters(4).errors;
    const errors5 = counters(5).errors;
    await sendRtp(b, p4, 3, 0xb1, 10);
    await sendRtp(a, p1, 3, 0xa1, 10);
    expect(await waitUntil(() => counters(4).errors >= errors4 + 3 && counters(5).errors >= errors5 + 3)).toBe(true);
    await sleep(100);
    expect(a.received).toHaveLength(4);
    expect(b.received).toHaveLength(5);
  });
});
