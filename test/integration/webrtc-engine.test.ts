/**
 * ICE in the native engine on real loopback sockets: the ICE-lite responder answers checks from an
 * independent test client (test/support/ice-client.ts), selects the party's address only on an
 * authenticated nominating check, counts and drops bad STUN, keeps the pair over an ICE restart, and stops
 * sending when consent expires (RFC 7675; shortened here with NGRELAY_ICE_CONSENT_MS).
 */
import { describe, expect, it } from 'vitest';
import type { StreamIce } from '../../src/dataplane/types';
import { bindingRequest, bindingSuccess, parseResponse, type CheckOptions } from '../support/ice-client';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { LO, useEngineHarness } from '../support/engine-harness';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';

const CONSENT_MS = 1500;
const relayPorts = new PortRuns(45000, 45999);

const h = useEngineHarness({ threads: 2, env: { NGRELAY_ICE_CONSENT_MS: String(CONSENT_MS) } });
const { events, party, counters } = h;

const ICE: StreamIce = {
  localUfrag: 'rLy1',
  localPwd: 'relay-pwd-0123456789abcdef',
  remoteUfrag: 'brW5',
  remotePwd: 'browser-pwd-0123456789abcd',
  controlling: false,
  lite: true,
  tieBreaker: '00000000000000ff',
  remoteCandidates: [],
};

/**
 * Stream 1: the WebRTC party (ICE; expected at `sdp`, which never sends), stream 2: a plain party `b`.
 * Media from b goes out of stream 1's socket to whatever stream 1's endpoint is.
 */
async function webrtcCall(ice: StreamIce = ICE) {
  const sdp = await party();
  const b = await party();
  const port = await relayPorts.take(4, LO);
  h.engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(sdp), sink: 2, ice }));
  h.engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }));
  h.track(1, 2);
  lastIcePort = port;
  return { sdp, b, portIce: port, portPlain: port + 2 };
}

async function check(from: Party, port: number, o: Partial<CheckOptions> = {}): Promise<Buffer> {
  const { packet } = bindingRequest({ username: `${ICE.localUfrag}:${ICE.remoteUfrag}`, password: ICE.localPwd, useCandidate: true, ...o });
  await from.send(packet, port, LO);
  return packet;
}

async function sendRtp(from: Party, port: number, count: number, ssrc: number): Promise<void> {
  for (let i = 0; i < count; i++) await from.send(rtpPacket({ seq: i + 1, ssrc }), port, LO);
}

let lastIcePort = 0;
const portIceOf = (): number => lastIcePort;

async function waitFor<T>(get: () => T | undefined, timeoutMs = 3000): Promise<T | undefined> {
  let value: T | undefined;
  await waitUntil(() => (value = get()) !== undefined, timeoutMs);
  return value;
}

const rtpOf = (p: Party) => p.received.filter((r) => r.data[0]! >= 128);
const stunOf = (p: Party) => p.received.filter((r) => r.data[0]! < 4);

describe('native engine: ICE-lite responder', () => {
  it('answers a valid nominating check (XOR-MAPPED-ADDRESS, integrity, fingerprint) and moves media to its source', async () => {
    const { sdp, b, portIce, portPlain } = await webrtcCall();
    // Before ICE: media to the party goes to the SDP address; nothing has been checked.
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(sdp).length === 2)).toBe(true);
    expect(counters(1).ice).toMatchObject({ state: 'waiting', selected: null, checksReceived: 0, stunRejected: 0 });

    const browser = await party();
    const req = await check(browser, portIce);
    expect(await waitUntil(() => stunOf(browser).length === 1)).toBe(true);
    const res = parseResponse(stunOf(browser)[0]!.data, ICE.localPwd);
    expect(res).toMatchObject({ type: 0x0101, xorMapped: { address: LO, port: browser.port }, integrityOk: true, fingerprintOk: true });
    expect(res!.transactionId).toEqual(req.subarray(8, 20));
    expect(await waitUntil(() => events.some((e) => e.type === 'ice-selected'))).toBe(true);
    expect(events.find((e) => e.type === 'ice-selected')).toMatchObject({ id: 1, endpoint: ep(browser) });
    expect(counters(1)).toMatchObject({ endpoint: ep(browser), confirmed: true });
    expect(counters(1).ice).toMatchObject({ state: 'connected', selected: ep(browser), checksReceived: 1, stunRejected: 0 });
    expect(counters(1).ice!.lastConsentMs).toBeGreaterThan(Date.now() - 5000);

    await sendRtp(b, portPlain, 3, 0xb0);
    expect(await waitUntil(() => rtpOf(browser).length === 3)).toBe(true);
    expect(rtpOf(sdp)).toHaveLength(2);
    // And the browser's media reaches b.
    await sendRtp(browser, portIce, 2, 0xa0);
    expect(await waitUntil(() => rtpOf(b).length === 2)).toBe(true);
  });

  it('a valid check without USE-CANDIDATE is answered but selects nothing', async () => {
    const { sdp, portIce } = await webrtcCall();
    const browser = await party();
    await check(browser, portIce, { useCandidate: false });
    expect(await waitUntil(() => stunOf(browser).length === 1)).toBe(true);
    expect(counters(1)).toMatchObject({ endpoint: ep(sdp) });
    expect(counters(1).ice).toMatchObject({ state: 'checking', selected: null, checksReceived: 1 });
  });

  it('bad integrity, wrong ufrag, bad fingerprint, truncated, oversized and garbage STUN are counted, unanswered, and move nothing', async () => {
    const { sdp, b, portIce, portPlain } = await webrtcCall();
    const browser = await party();
    await check(browser, portIce);
    expect(await waitUntil(() => counters(1).ice?.state === 'connected')).toBe(true);

    const stranger = await party();
    const bad: Buffer[] = [
      bindingRequest({ username: `${ICE.localUfrag}:${ICE.remoteUfrag}`, password: 'not-the-password', useCandidate: true }).packet,
      bindingRequest({ username: `other:${ICE.remoteUfrag}`, password: ICE.localPwd, useCandidate: true }).packet,
      bindingRequest({ username: `${ICE.localUfrag}:someone`, password: ICE.localPwd, useCandidate: true }).packet,
      bindingRequest({ username: `${ICE.localUfrag}:${ICE.remoteUfrag}`, password: null, useCandidate: true }).packet,
      bindingRequest({ username: `${ICE.localUfrag}:${ICE.remoteUfrag}`, password: ICE.localPwd, useCandidate: true, badFingerprint: true }).packet,
    ];
    const good = bindingRequest({ username: `${ICE.localUfrag}:${ICE.remoteUfrag}`, password: ICE.localPwd, useCandidate: true }).packet;
    bad.push(good.subarray(0, good.length - 10)); // truncated
    const oversized = Buffer.alloc(1400, 0);
    good.copy(oversized, 0, 0, 20);
    oversized.writeUInt16BE(1380, 2);
    bad.push(oversized);
    bad.push(Buffer.from([0x00, 0x01, 0x02])); // too short
    bad.push(Buffer.alloc(5000, 0x01)); // larger than the receive slot: truncated by the kernel
    for (const pkt of bad) await stranger.send(pkt, portIce, LO);
    expect(await waitUntil(() => counters(1).ice?.stunRejected === bad.length)).toBe(true);
    await sleep(100);
    expect(stunOf(stranger)).toHaveLength(0);
    // Stranger's RTP does not move media either (with ICE the engine does not learn).
    await sendRtp(stranger, portIce, 3, 0xcc);
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(browser).length === 2)).toBe(true);
    expect(rtpOf(stranger)).toHaveLength(0);
    expect(rtpOf(sdp)).toHaveLength(0);
    expect(counters(1)).toMatchObject({ endpoint: ep(browser) });
    expect(counters(1).ice).toMatchObject({ selected: ep(browser), checksReceived: 1, stunRejected: bad.length });
    expect(counters(1).errors).toBeGreaterThanOrEqual(bad.length);
  });

  it('with ICE, media does not learn from RTP sources before a check either', async () => {
    const { sdp, b, portIce, portPlain } = await webrtcCall();
    const other = await party();
    await sendRtp(other, portIce, 3, 0xdd);
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(sdp).length === 2)).toBe(true);
    expect(rtpOf(other)).toHaveLength(0);
    expect(counters(1)).toMatchObject({ endpoint: ep(sdp), confirmed: false });
  });

  it('a stream without ICE answers no STUN and counts it as malformed', async () => {
    const { b, portPlain } = await webrtcCall();
    const before = h.engine.totals().malformed;
    await check(b, portPlain);
    expect(await waitUntil(() => h.engine.totals().malformed === before + 1)).toBe(true);
    expect(stunOf(b)).toHaveLength(0);
    expect(counters(2).ice).toBeUndefined();
  });

  it('ICE restart: new credentials keep the selected pair until a new one is nominated', async () => {
    const { b, portIce, portPlain } = await webrtcCall();
    const first = await party();
    await check(first, portIce);
    expect(await waitUntil(() => counters(1).ice?.state === 'connected')).toBe(true);
    const restarted: StreamIce = { ...ICE, localUfrag: 'rLy2', localPwd: 'relay-pwd-restart-9876543210' };
    h.engine.updateStream(1, rule({ expected: counters(1).endpoint, sink: 2, ice: restarted, signalGeneration: 2 }));
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(first).length === 2)).toBe(true);
    // The old credentials no longer pass; the new ones nominate a new address.
    const second = await party();
    await check(second, portIce);
    expect(await waitUntil(() => counters(1).ice?.stunRejected === 1)).toBe(true);
    expect(counters(1).ice!.selected).toEqual(ep(first));
    await check(second, portIce, { username: `${restarted.localUfrag}:${ICE.remoteUfrag}`, password: restarted.localPwd });
    expect(await waitUntil(() => counters(1).ice?.selected?.port === second.port)).toBe(true);
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(second).length === 2)).toBe(true);
    expect(rtpOf(first)).toHaveLength(2);
  });

  it('consent (RFC 7675): without valid checks from the selected address media stops, until a new nomination', async () => {
    const { b, portIce, portPlain } = await webrtcCall();
    const browser = await party();
    await check(browser, portIce);
    expect(await waitUntil(() => counters(1).ice?.state === 'connected')).toBe(true);
    // Consent checks (no USE-CANDIDATE) keep it alive past the timeout.
    for (let i = 0; i < 4; i++) {
      await sleep(CONSENT_MS / 2);
      await check(browser, portIce, { useCandidate: false });
    }
    expect(counters(1).ice).toMatchObject({ state: 'connected', consentExpired: 0 });
    // Then silence: consent expires and nothing more is sent to the browser.
    expect(await waitUntil(() => counters(1).ice?.state === 'failed', CONSENT_MS + 3000)).toBe(true);
    expect(counters(1)).toMatchObject({ endpoint: null });
    expect(counters(1).ice!.consentExpired).toBe(1);
    const before = rtpOf(browser).length;
    await sendRtp(b, portPlain, 3, 0xb0);
    await sleep(200);
    expect(rtpOf(browser)).toHaveLength(before);
    // A plain consent check does not bring it back; a nomination does.
    await check(browser, portIce, { useCandidate: false });
    await sleep(100);
    expect(counters(1).ice!.state).toBe('failed');
    await check(browser, portIce);
    expect(await waitUntil(() => counters(1).ice?.state === 'connected')).toBe(true);
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(browser).length === before + 2)).toBe(true);
  });

  it('role conflict (RFC 8445 §7.3.1.1): a controlling full agent with the larger tie-breaker answers 487', async () => {
    const ice: StreamIce = { ...ICE, controlling: true, lite: false, tieBreaker: 'ff00000000000000' };
    const { portIce } = await webrtcCall(ice);
    const browser = await party();
    await check(browser, portIce, { role: 'controlling', tieBreaker: '0000000000000001' });
    expect(await waitUntil(() => stunOf(browser).length === 1)).toBe(true);
    expect(parseResponse(stunOf(browser)[0]!.data, ICE.localPwd)).toMatchObject({ type: 0x0111, errorCode: 487, integrityOk: true, fingerprintOk: true });
    expect(counters(1).ice).toMatchObject({ selected: null, checksReceived: 0 });
    // The peer with the larger tie-breaker wins: the relay becomes controlled and takes the nomination.
    await check(browser, portIce, { role: 'controlling', tieBreaker: 'ffffffffffffffff' });
    expect(await waitUntil(() => counters(1).ice?.state === 'connected' && stunOf(browser).length === 2)).toBe(true);
    expect(parseResponse(stunOf(browser)[1]!.data, ICE.localPwd)).toMatchObject({ type: 0x0101, integrityOk: true });
  });
});

describe('native engine: full ICE agent (lite false)', () => {
  const full: StreamIce = { ...ICE, lite: false, controlling: true, tieBreaker: '7000000000000000' };

  it('controlling: checks the party (independent peer), retransmits, then nominates the pair that answered', async () => {
    const peer = await party();
    const { b, portPlain } = await webrtcCall({ ...full, remoteCandidates: [{ foundation: '1', component: 1, priority: 2130706431, type: 'host', endpoint: ep(peer) }] });
    // The check: USERNAME remoteUfrag:localUfrag, integrity with the party's password, ICE-CONTROLLING.
    expect(await waitUntil(() => stunOf(peer).length >= 2, 2000)).toBe(true);
    const first = parseResponse(stunOf(peer)[0]!.data, ICE.remotePwd!);
    expect(first).toMatchObject({ type: 0x0001, username: `${ICE.remoteUfrag}:${ICE.localUfrag}`, integrityOk: true, fingerprintOk: true, controlling: true, useCandidate: false });
    // Unanswered, it is retransmitted with the same transaction id.
    expect(stunOf(peer)[1]!.data.subarray(8, 20)).toEqual(first!.transactionId);
    expect(counters(1).ice).toMatchObject({ state: 'checking', selected: null });
    // An answer signed with the wrong password is refused; the right one lets the agent nominate.
    await peer.send(bindingSuccess(first!.transactionId, 'wrong-password', { address: LO, port: 1 }), portIceOf(), LO);
    expect(await waitUntil(() => counters(1).ice?.stunRejected === 1)).toBe(true);
    await peer.send(bindingSuccess(first!.transactionId, ICE.remotePwd!, { address: LO, port: 1 }), portIceOf(), LO);
    const nomination = await waitFor(() => stunOf(peer).map((r) => parseResponse(r.data, ICE.remotePwd!)).find((m) => m?.useCandidate));
    expect(nomination).toMatchObject({ integrityOk: true, controlling: true });
    expect(counters(1).ice!.selected).toBeNull(); // selected only once the nomination is answered
    await peer.send(bindingSuccess(nomination!.transactionId, ICE.remotePwd!, { address: LO, port: 1 }), portIceOf(), LO);
    expect(await waitUntil(() => counters(1).ice?.state === 'connected')).toBe(true);
    expect(counters(1).ice!.selected).toEqual(ep(peer));
    expect(counters(1).ice!.checksSent).toBeGreaterThanOrEqual(3);
    // (Matched by address: a late event batch of the previous test may still arrive.)
    expect(await waitUntil(() => events.some((e) => e.type === 'ice-selected' && e.id === 1 && e.endpoint.port === peer.port))).toBe(true);
    await sendRtp(b, portPlain, 2, 0xb0);
    expect(await waitUntil(() => rtpOf(peer).length === 2)).toBe(true);
  });

  it('two full agents of the engine find each other: the controlling one nominates, both select', async () => {
    const port = await relayPorts.take(4, LO);
    const cand = (p: number) => [{ foundation: '1', component: 1, priority: 2130706431, type: 'host' as const, endpoint: { family: 'IPv4' as const, address: LO, port: p } }];
    const left: StreamIce = { ...full, localUfrag: 'LfL1', localPwd: 'left-password-0123456789', remoteUfrag: 'RtR1', remotePwd: 'right-password-0123456789', controlling: true, remoteCandidates: cand(port + 2) };
    const right: StreamIce = { ...full, localUfrag: 'RtR1', localPwd: 'right-password-0123456789', remoteUfrag: 'LfL1', remotePwd: 'left-password-0123456789', controlling: false, tieBreaker: '0100000000000000', remoteCandidates: cand(port) };
    h.engine.addStream({ id: 11, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: null, sink: null, ice: left }));
    h.engine.addStream({ id: 12, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: null, sink: null, ice: right }));
    h.track(11, 12);
    expect(await waitUntil(() => counters(11).ice?.state === 'connected' && counters(12).ice?.state === 'connected')).toBe(true);
    expect(counters(11).ice!.selected).toEqual({ family: 'IPv4', address: LO, port: port + 2 });
    expect(counters(12).ice!.selected).toEqual({ family: 'IPv4', address: LO, port });
    expect(counters(11).ice!.checksSent).toBeGreaterThanOrEqual(2);
    expect(counters(12).ice!.checksReceived).toBeGreaterThanOrEqual(2);
    expect(counters(11).ice!.stunRejected + counters(12).ice!.stunRejected).toBe(0);
  });
});
