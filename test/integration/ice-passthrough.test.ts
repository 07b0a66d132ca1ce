/**
 * ICE=optional / ICE=force-relay with a browser's offer (rtpengine 10.5's pass-through): the parties run ICE and
 * DTLS-SRTP with each other through the relay, so the real ngrelay binary must forward their STUN and DTLS
 * unchanged between the two sides (the SDP shape is checked against rtpengine 10.5 in
 * test/compat/webrtc-sdp.test.ts). With ICE=force the relay terminates ICE itself: a check made with the other
 * party's credentials is refused and nothing reaches the other side.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import type { RelayUnderTest } from '../support/relay';
import { startNgrelay } from '../support/ngrelay';
import { Party, sleep, waitUntil } from '../support/rtp-packets';

const LO = '127.0.0.1';
const FIXTURES = path.join(__dirname, '..', 'fixtures', 'sdp', 'webrtc');
const fixture = (name: string): string => readFileSync(path.join(FIXTURES, name), 'latin1');

/** A browser's SDP with its media at `party` (as if its host candidate had been chosen for m=/c=). */
function at(sdp: string, party: Party): string {
  return sdp.replace(/^m=audio 9 /m, `m=audio ${party.port} `).replace(/^c=IN IP4 0\.0\.0\.0/m, `c=IN IP4 ${LO}`);
}

/** A STUN binding request (RFC 5389 header, one USERNAME attribute): what a browser's check starts with. */
function stunRequest(tag: number): Buffer {
  const username = Buffer.from('8hhY:Ab12');
  const b = Buffer.alloc(20 + 4 + 12);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(4 + 12, 2);
  b.writeUInt32BE(0x2112a442, 4);
  b.writeUInt32BE(tag, 8);
  b.writeUInt16BE(0x0006, 20);
  b.writeUInt16BE(username.length, 22);
  username.copy(b, 24);
  return b;
}

/** A DTLS handshake record header and a few bytes (content type 22, DTLS 1.2). */
function dtlsRecord(tag: number): Buffer {
  const b = Buffer.alloc(13 + 8, tag & 0xff);
  b[0] = 22;
  b.writeUInt16BE(0xfefd, 1);
  b.writeUInt16BE(8, 11);
  return b;
}

let relay: RelayUnderTest;
const parties: Party[] = [];

beforeAll(async () => {
  const base = 36000 + Math.floor(Math.random() * 40) * 100;
  relay = await startNgrelay({ ngPort: 25000 + Math.floor(Math.random() * 900), portMin: base, portMax: base + 99, deleteDelay: 0 });
}, 60_000);
afterAll(async () => {
  await relay?.stop();
  await Promise.all(parties.map((p) => p.close()));
});

/** The port of the relay's own RTP candidate in an SDP (the browsers' candidates spell the transport `udp`). */
function relayCandidatePort(sdp: string | undefined): number {
  return Number(/^a=candidate:\S+ 1 UDP \d+ \S+ (\d+) typ/m.exec(sdp ?? '')?.[1] ?? 0);
}

/** Offer from browser a, answer from browser b, both with `ice`; the relay ports each side must send to. */
async function call(ice: string, a: Party, b: Party): Promise<{ toRelayFromA: number; toRelayFromB: number }> {
  const client = await NgRawClient.open(relay.ngPort, relay.ngHost);
  const callId = `h2-passthrough-${ice}-${Date.now()}`;
  try {
    const offer = await client.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: at(fixture('chromium-audio-offer.sdp'), a), ICE: ice, SDES: ['off'] });
    const answerSdp = at(fixture('chromium-audio-answer.sdp'), b).replace('SAVPF 0 101', 'SAVPF 0 126').replace('a=rtpmap:101 ', 'a=rtpmap:126 ');
    const answer = await client.request({ command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: answerSdp, ICE: ice, SDES: ['off'] });
    return { toRelayFromB: relayCandidatePort(textOf(offer.dict, 'sdp')), toRelayFromA: relayCandidatePort(textOf(answer.dict, 'sdp')) };
  } finally {
    client.close();
  }
}

describe('ICE pass-through through the real ngrelay binary', () => {
  it.each(['optional', 'force-relay'])('ICE=%s: STUN and DTLS reach the other browser unchanged, both ways', async (ice) => {
    const a = await Party.open(LO);
    const b = await Party.open(LO);
    parties.push(a, b);
    // The browsers reach the relay through its candidate (under force-relay the m= ports stay theirs).
    const ports = await call(ice, a, b);
    expect(ports.toRelayFromA).toBeGreaterThan(0);
    expect(ports.toRelayFromB).toBeGreaterThan(0);
    const check = stunRequest(1);
    const reply = dtlsRecord(2);
    await a.send(check, ports.toRelayFromA, LO);
    await b.send(reply, ports.toRelayFromB, LO);
    expect(await waitUntil(() => b.received.length > 0 && a.received.length > 0)).toBe(true);
    expect(b.received[0]!.data).toEqual(check);
    expect(a.received[0]!.data).toEqual(reply);
  });

  it('ICE=force: the relay terminates ICE, a check meant for the other browser does not reach it', async () => {
    const a = await Party.open(LO);
    const b = await Party.open(LO);
    parties.push(a, b);
    const ports = await call('force', a, b);
    expect(ports.toRelayFromA).toBeGreaterThan(0);
    await a.send(stunRequest(3), ports.toRelayFromA, LO);
    await a.send(dtlsRecord(4), ports.toRelayFromA, LO);
    await sleep(300);
    expect(b.received).toEqual([]);
  });
});
