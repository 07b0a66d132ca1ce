/**
 * ICE on an interface name with two addresses (127.0.0.1 and 127.0.0.2, both "default"), through the real
 * ngrelay binary: the relay's answer to an ICE caller carries a host candidate per address (same port, local
 * preference one lower per address, a foundation each, as rtpengine 10.5 writes them); a check to each socket
 * is answered from that socket; after the caller nominates the pair on the second address, media flows both
 * ways and leaves the relay from that address; `query` names it; delete frees the ports on both addresses; a
 * restart with --state-dir (kill -9) binds every socket again and keeps sending from the nominated one.
 */
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import type { BDict, BValue } from '../support/bencode';
import { isDict } from '../support/bencode';
import type { RelayUnderTest } from '../support/relay';
import { startNgrelay } from '../support/ngrelay';
import { bindingRequest, parseResponse } from '../support/ice-client';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';

const LO = '127.0.0.1';
const LO2 = '127.0.0.2';
const CALLER_UFRAG = 'cAl1';
const CALLER_PWD = 'caller-pwd-0123456789abcdef';

let relay: RelayUnderTest;
let client: NgRawClient;
const parties: Party[] = [];

beforeAll(async () => {
  relay = await startNgrelay({
    ngPort: await freeUdpPort(),
    ...(await freeMediaRange(100)),
    deleteDelay: 0,
    extraArgs: [`--interface=${LO2}`],
  });
  client = await NgRawClient.open(relay.ngPort, relay.ngHost);
}, 60_000);
afterAll(async () => {
  client?.close();
  await relay?.stop();
  await Promise.all(parties.map((p) => p.close()));
});

async function party(): Promise<Party> {
  const p = await Party.open(LO);
  parties.push(p);
  return p;
}

/** An ICE caller's plain-RTP offer (its host candidate at `caller`), with separate RTCP. */
function callerSdp(caller: Party): string {
  return [
    'v=0',
    `o=- 1 1 IN IP4 ${LO}`,
    's=-',
    `c=IN IP4 ${LO}`,
    't=0 0',
    `m=audio ${caller.port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000',
    `a=ice-ufrag:${CALLER_UFRAG}`,
    `a=ice-pwd:${CALLER_PWD}`,
    `a=candidate:1 1 UDP 2130706431 ${LO} ${caller.port} typ host`,
    '',
  ].join('\r\n');
}

function calleeSdp(callee: Party): string {
  return ['v=0', `o=- 2 2 IN IP4 ${LO}`, 's=-', `c=IN IP4 ${LO}`, 't=0 0', `m=audio ${callee.port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

interface Candidate {
  foundation: string;
  component: number;
  priority: number;
  address: string;
  port: number;
}

function candidatesOf(sdp: string): Candidate[] {
  return [...sdp.matchAll(/^a=candidate:(\S+) (\d) UDP (\d+) (\S+) (\d+) typ host\r?$/gm)].map((m) => ({
    foundation: m[1]!,
    component: Number(m[2]),
    priority: Number(m[3]),
    address: m[4]!,
    port: Number(m[5]),
  }));
}

function attribute(sdp: string, name: string): string {
  return new RegExp(`^a=${name}:(\\S+)\\r?$`, 'm').exec(sdp)?.[1] ?? '';
}

/** Every dict under `v` whose key `key` holds a dict (depth first). */
function dictsUnder(v: BValue, key: string, out: BDict[] = []): BDict[] {
  if (Array.isArray(v)) for (const x of v) dictsUnder(x, key, out);
  else if (isDict(v)) {
    const hit = v[key];
    if (hit !== undefined && isDict(hit)) out.push(hit);
    for (const x of Object.values(v)) dictsUnder(x, key, out);
  }
  return out;
}

/** The UDP port can be bound again: the relay holds no socket on it. */
function portIsFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, address, () => s.close(() => resolve(true)));
  });
}

describe('ICE with several addresses on one interface name (real ngrelay)', () => {
  it('offers a candidate per address, answers each socket from itself, and sends from the nominated one', async () => {
    const caller = await party();
    const callee = await party();
    const callId = `h1-multi-${Date.now()}`;
    const offer = await client.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerSdp(caller), ICE: 'remove' });
    const toCallee = textOf(offer.dict, 'sdp') ?? '';
    // The plain callee gets no ICE, and one address.
    expect(toCallee).not.toContain('a=candidate');
    const calleePort = Number(/^m=audio (\d+) /m.exec(toCallee)?.[1]);
    const answer = await client.request({ command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeSdp(callee) });
    const toCaller = textOf(answer.dict, 'sdp') ?? '';
    const relayUfrag = attribute(toCaller, 'ice-ufrag');
    const relayPwd = attribute(toCaller, 'ice-pwd');
    expect(relayUfrag).not.toBe('');

    // One host candidate per address and component: the same port, RTP first, rtpengine 10.5's priorities.
    const cands = candidatesOf(toCaller);
    const rtpPort = Number(/^m=audio (\d+) /m.exec(toCaller)?.[1]);
    expect(cands.filter((c) => c.component === 1)).toEqual([
      expect.objectContaining({ address: LO, port: rtpPort, priority: 2130706431 }),
      expect.objectContaining({ address: LO2, port: rtpPort, priority: 2130706175 }),
    ]);
    expect(cands.filter((c) => c.component === 2).map((c) => [c.address, c.priority])).toEqual([
      [LO, 2130706430],
      [LO2, 2130706174],
    ]);
    expect(cands[0]!.foundation).not.toBe(cands[1]!.foundation);
    expect(cands.map((c) => c.component)).toEqual([1, 1, 2, 2]);
    // The m= line and c= stay on the primary address.
    expect(toCaller).toMatch(new RegExp(`^c=IN IP4 ${LO.replace(/\./g, '\\.')}\\r?$`, 'm'));

    // A check (no nomination) to each socket is answered from that very socket.
    const username = `${relayUfrag}:${CALLER_UFRAG}`;
    // (The relay, a full agent, also sends checks of its own to the caller: the answer is found by transaction.)
    const answerTo = (transactionId: Buffer) => caller.received.find((r) => r.data.length >= 20 && r.data.subarray(8, 20).equals(transactionId));
    for (const address of [LO, LO2]) {
      const { transactionId, packet } = bindingRequest({ username, password: relayPwd, useCandidate: false });
      await caller.send(packet, rtpPort, address);
      expect(await waitUntil(() => answerTo(transactionId) !== undefined)).toBe(true);
      const reply = answerTo(transactionId)!;
      expect({ address: reply.address, port: reply.port }).toEqual({ address, port: rtpPort });
      const res = parseResponse(reply.data, relayPwd);
      expect(res).toMatchObject({ type: 0x0101, integrityOk: true, fingerprintOk: true, xorMapped: { address: LO, port: caller.port } });
    }

    // The caller nominates the pair on the second address.
    const nominate = bindingRequest({ username, password: relayPwd, useCandidate: true });
    await caller.send(nominate.packet, rtpPort, LO2);
    expect(await waitUntil(() => answerTo(nominate.transactionId) !== undefined)).toBe(true);
    expect(answerTo(nominate.transactionId)!.address).toBe(LO2);

    // Media from the callee reaches the caller from 127.0.0.2 (after the relay switched its sending socket).
    const rtpAtCaller = () => caller.received.filter((r) => r.data[0]! >= 128);
    let seq = 1;
    expect(
      await waitUntil(() => {
        callee.sendNoWait(rtpPacket({ seq: seq++, ssrc: 0xb0 }), calleePort, LO);
        return rtpAtCaller().length >= 3;
      }, 3000, 20),
    ).toBe(true);
    expect(rtpAtCaller().every((r) => r.address === LO2 && r.port === rtpPort)).toBe(true);
    // And the caller's media sent to 127.0.0.2 reaches the callee.
    for (let i = 0; i < 5; i++) await caller.send(rtpPacket({ seq: 100 + i, ssrc: 0xa0 }), rtpPort, LO2);
    expect(await waitUntil(() => callee.received.filter((r) => r.data[0]! >= 128).length === 5)).toBe(true);

    // query names the socket of the selected pair.
    const query = await client.request({ command: 'query', 'call-id': callId });
    const ice = dictsUnder(query.dict, 'ICE');
    expect(ice.length).toBeGreaterThan(0);
    const selectedLocal = ice.map((d) => d['selected local']).find((v) => v !== undefined);
    expect(isDict(selectedLocal!) ? textOf(selectedLocal, 'address') : undefined).toBe(LO2);
    expect(isDict(selectedLocal!) ? selectedLocal['port'] : undefined).toBe(rtpPort);
    // The caller's RTP stream counts what arrived on either socket (5 RTP packets, all on the second one).
    const callerStats = query.plain as { tags: Record<string, { medias: Array<{ streams: Array<{ stats: { packets: number } }> }> }> };
    expect(callerStats.tags['a']!.medias[0]!.streams[0]!.stats.packets).toBeGreaterThanOrEqual(5);

    // Delete returns every port on both addresses.
    await client.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' });
    await sleep(100);
    for (const address of [LO, LO2]) {
      expect(await portIsFree(address, rtpPort)).toBe(true);
      expect(await portIsFree(address, rtpPort + 1)).toBe(true);
    }
  });

  it('a restart with --state-dir keeps every socket and the nominated one (kill -9)', async () => {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'h1-ice-multi-'));
    const options = { ngPort: await freeUdpPort(), ...(await freeMediaRange(100)), deleteDelay: 0, extraArgs: [`--interface=${LO2}`, `--state-dir=${stateDir}`] };
    let restarted: RelayUnderTest | undefined = await startNgrelay(options);
    let ng = await NgRawClient.open(options.ngPort, LO);
    try {
      const caller = await party();
      const callee = await party();
      const callId = `h1-restore-${Date.now()}`;
      const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerSdp(caller), ICE: 'remove' });
      const calleePort = Number(/^m=audio (\d+) /m.exec(textOf(offer.dict, 'sdp') ?? '')?.[1]);
      const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeSdp(callee) });
      const toCaller = textOf(answer.dict, 'sdp') ?? '';
      const rtpPort = Number(/^m=audio (\d+) /m.exec(toCaller)?.[1]);
      const username = `${attribute(toCaller, 'ice-ufrag')}:${CALLER_UFRAG}`;
      const nominate = bindingRequest({ username, password: attribute(toCaller, 'ice-pwd'), useCandidate: true });
      await caller.send(nominate.packet, rtpPort, LO2);
      const rtpAtCaller = () => caller.received.filter((r) => r.data[0]! >= 128);
      let seq = 1;
      const calleeMediaArrives = (count: number) =>
        waitUntil(() => {
          callee.sendNoWait(rtpPacket({ seq: seq++, ssrc: 0xb0 }), calleePort, LO);
          return rtpAtCaller().length >= count;
        }, 3000, 20);
      expect(await calleeMediaArrives(3)).toBe(true);
      // The nominated address is written with the next progress tick (500 ms).
      await sleep(1200);
      restarted.process.killNow();
      await restarted.process.exited;
      restarted = await startNgrelay(options);
      ng.close();
      ng = await NgRawClient.open(options.ngPort, LO);
      const before = rtpAtCaller().length;
      expect(await calleeMediaArrives(before + 3)).toBe(true);
      expect(rtpAtCaller().slice(before).every((r) => r.address === LO2 && r.port === rtpPort)).toBe(true);
      // The caller still reaches the callee through the second socket, and a check there is answered.
      const got = callee.received.filter((r) => r.data[0]! >= 128).length;
      for (let i = 0; i < 3; i++) await caller.send(rtpPacket({ seq: 200 + i, ssrc: 0xa0 }), rtpPort, LO2);
      expect(await waitUntil(() => callee.received.filter((r) => r.data[0]! >= 128).length === got + 3)).toBe(true);
      await ng.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' });
      await sleep(100);
      expect(await portIsFree(LO2, rtpPort)).toBe(true);
    } finally {
      ng.close();
      await restarted?.stop();
      rmSync(stateDir, { recursive: true, force: true });
    }
  }, 30_000);

  it('without ICE a media keeps one socket and one address', async () => {
    const callee = await party();
    const callId = `h1-plain-${Date.now()}`;
    const offer = await client.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: calleeSdp(callee) });
    const sdp = textOf(offer.dict, 'sdp') ?? '';
    expect(sdp).not.toContain('a=candidate');
    const port = Number(/^m=audio (\d+) /m.exec(sdp)?.[1]);
    // Nothing bound on the second address for this media.
    expect(await portIsFree(LO2, port)).toBe(true);
    await client.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' });
  });
});
