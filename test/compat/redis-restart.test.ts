/**
 * Side by side with rtpengine 10.5: the same `--redis` restart on both. Each relay gets its own database of
 * one throwaway redis-server; a call is set up with media both ways, the relay is killed with SIGKILL and
 * started again with the same command line, and then both must answer `query` for the call with the same
 * tags and local ports as before, carry media both ways to those ports, and have the call's key in Redis
 * with a TTL. What the keys hold differs on purpose (rtpengine's JSON, ngrelay's state record): not compared.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import { ensureRtpengineInstalled, startRtpengine } from '../support/rtpengine';
import type { RelayOptions, RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { isDict, toPlain, type BDict, type BValue } from '../support/bencode';
import { Party, rtpPacket, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';
import { get, sdp, portOf } from '../support/ng-values';

let redis: TestRedis;
const running: RelayUnderTest[] = [];
const clients: NgRawClient[] = [];
const parties: Party[] = [];

type Starter = (options: RelayOptions) => Promise<RelayUnderTest>;

/** Per tag, the local RTP port of its first stream: what a restart must keep. */
async function localPorts(ng: NgRawClient, callId: string): Promise<Record<string, number>> {
  const q = (await ng.request({ command: 'query', 'call-id': callId })).dict;
  const tags = get(q, 'tags');
  if (!isDict(tags)) throw new Error(`query failed: ${JSON.stringify(toPlain(q))}`);
  const out: Record<string, number> = {};
  for (const [tag, t] of Object.entries(tags)) out[tag] = Number(get(t, 'medias', 0, 'streams', 0, 'local port'));
  return out;
}

async function bothWays(a: Party, toA: number, b: Party, toB: number, seq: number): Promise<boolean> {
  const aBefore = a.received.length;
  const bBefore = b.received.length;
  const until = Date.now() + 3000;
  let s = seq;
  while (Date.now() < until) {
    await a.send(rtpPacket({ seq: s, ssrc: 0xa1, payloadType: 0, payloadBytes: 60 }), toA, '127.0.0.1');
    await b.send(rtpPacket({ seq: s, ssrc: 0xb2, payloadType: 0, payloadBytes: 60 }), toB, '127.0.0.1');
    s++;
    if (await waitUntil(() => a.received.length > aBefore && b.received.length > bBefore, 20, 2)) return true;
  }
  return false;
}

interface Outcome {
  restoredOk: boolean;
  samePorts: boolean;
  mediaBefore: boolean;
  mediaAfter: boolean;
  keyWithTtl: boolean;
}

async function restartScenario(start: Starter, db: number): Promise<Outcome> {
  const options: RelayOptions = {
    ngPort: await freeUdpPort(),
    ...(await freeMediaRange(40)),
    deleteDelay: 0,
    extraArgs: [`--redis=${redis.url(db)}`],
  };
  let relay = await start(options);
  running.push(relay);
  let ng = await NgRawClient.open(options.ngPort);
  clients.push(ng);
  const a = await Party.open();
  const b = await Party.open();
  parties.push(a, b);
  const toB = portOf((await ng.request({ command: 'offer', 'call-id': 'restart-me', 'from-tag': 'A', sdp: sdp(a.port) })).dict);
  const toA = portOf((await ng.request({ command: 'answer', 'call-id': 'restart-me', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) })).dict);
  const mediaBefore = await bothWays(a, toA, b, toB, 1);
  const before = await localPorts(ng, 'restart-me');
  await new Promise((r) => setTimeout(r, 300));

  relay.process.killNow();
  await relay.process.exited;
  relay = await start(options);
  running.push(relay);
  ng = await NgRawClient.open(options.ngPort);
  clients.push(ng);
  // rtpengine restores before it answers ping too; a short grace for either.
  let after: Record<string, number> = {};
  const until = Date.now() + 5000;
  while (Date.now() < until) {
    try {
      after = await localPorts(ng, 'restart-me');
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const mediaAfter = await bothWays(a, toA, b, toB, 100);
  const client = redis.client(db);
  const ttl = await client.ttl('restart-me');
  client.disconnect();
  return {
    restoredOk: Object.keys(after).length === 2,
    samePorts: JSON.stringify(after) === JSON.stringify(before),
    mediaBefore,
    mediaAfter,
    keyWithTtl: ttl > 0,
  };
}

beforeAll(async () => {
  await ensureRtpengineInstalled();
  redis = await TestRedis.start();
}, 600_000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of running.splice(0)) await r.stop();
  for (const p of parties.splice(0)) await p.close();
});

afterAll(async () => {
  await redis?.stop();
});

describe('--redis restart, side by side with rtpengine 10.5', () => {
  it('kill -9 and restart: query finds the call with the same tags and ports, media flows to them, the key has a TTL', async () => {
    const rtpengine = await restartScenario(startRtpengine, 5);
    const ngrelay = await restartScenario(startNgrelay, 6);
    expect(rtpengine).toEqual({ restoredOk: true, samePorts: true, mediaBefore: true, mediaAfter: true, keyWithTtl: true });
    expect(ngrelay).toEqual(rtpengine);
  }, 90_000);
});
