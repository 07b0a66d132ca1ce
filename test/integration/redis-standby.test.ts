/**
 * Active/standby and active/active with `--subscribe-keyspace`, on loopback: two real `ngrelay`s on the same
 * service address (127.0.0.1) and media port range, each writing its own Redis database and subscribed to
 * the other's. While A lives its ports are A's, so B holds A's calls as foreign calls waiting for them; after
 * `kill -9` of A the ports are free, B binds them within RETRY_BIND_MS and media goes on to the same ports.
 * (On two hosts with a moving VIP and `ip_nonlocal_bind`, B binds at once, as rtpengine does.) The proxy's
 * next commands for those calls then go to B (the service address "moved") and succeed there.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { isDict, toPlain, type BDict, type BInputDict, type BValue } from '../support/bencode';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';
import { get, sdp, portOf } from '../support/ng-values';

let redis: TestRedis;
const relays: RelayUnderTest[] = [];
const clients: NgRawClient[] = [];
const parties: Party[] = [];

interface Node {
  relay: RelayUnderTest;
  ng: NgRawClient;
}

async function node(ngPort: number, media: { portMin: number; portMax: number }, ownDb: number, otherDb: number): Promise<Node> {
  const relay = await startNgrelay({
    ngPort,
    ...media,
    deleteDelay: 0,
    extraArgs: [`--redis=${redis.url(ownDb)}`, `--subscribe-keyspace=${otherDb}`],
  });
  relays.push(relay);
  const ng = await NgRawClient.open(ngPort);
  clients.push(ng);
  return { relay, ng };
}

async function party(): Promise<Party> {
  const p = await Party.open();
  parties.push(p);
  return p;
}

async function request(n: Node, body: BInputDict): Promise<BDict> {
  return (await n.ng.request(body)).dict;
}

interface Call {
  a: Party;
  b: Party;
  toA: number;
  toB: number;
}

async function call(n: Node, callId: string): Promise<Call> {
  const a = await party();
  const b = await party();
  const toB = portOf(await request(n, { command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(a.port) }));
  const toA = portOf(await request(n, { command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) }));
  return { a, b, toA, toB };
}

function rtp(seq: number, ssrc: number): Buffer {
  return rtpPacket({ seq: seq & 0xffff, ssrc, payloadType: 0, payloadBytes: 60 });
}

/** Sends both ways every 10 ms until a packet arrived each way; the time that took (ms). */
async function bothWays(c: Call, seq: number, timeoutMs = 2000): Promise<number> {
  const t0 = Date.now();
  const aBefore = c.a.received.length;
  const bBefore = c.b.received.length;
  let s = seq;
  while (Date.now() - t0 < timeoutMs) {
    await c.a.send(rtp(s, 0xa1), c.toA, '127.0.0.1');
    await c.b.send(rtp(s, 0xb2), c.toB, '127.0.0.1');
    s++;
    if (await waitUntil(() => c.a.received.length > aBefore && c.b.received.length > bBefore, 10, 2)) return Date.now() - t0;
  }
  throw new Error(`media did not flow both ways within ${timeoutMs} ms`);
}

async function redisStats(n: Node): Promise<BValue | undefined> {
  return get(await request(n, { command: 'statistics' }), 'statistics', 'statedir', 'redis');
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

beforeAll(async () => {
  redis = await TestRedis.start();
}, 30_000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of relays.splice(0)) await r.stop();
  for (const p of parties.splice(0)) await p.close();
});

afterAll(async () => {
  await redis?.stop();
});

describe('--subscribe-keyspace', () => {
  it('active/active: each relay keeps its own calls, holds the other\'s as foreign; after kill -9 of A, B carries A\'s media on and answers the proxy', async () => {
    // 8 ports, 4 per call: B's own call is likely to meet A's ports first (and quarantine them).
    const media = await freeMediaRange(8);
    const nodeA = await node(await freeUdpPort(), media, 1, 2);
    const nodeB = await node(await freeUdpPort(), media, 2, 1);
    const onA = await call(nodeA, 'call-on-a');
    const onB = await call(nodeB, 'call-on-b');
    await bothWays(onA, 1);
    await bothWays(onB, 1);

    // No cross-talk: each database holds its relay's call only, each relay holds the other's as foreign.
    const db1 = redis.client(1);
    const db2 = redis.client(2);
    expect(await waitFor(async () => (await db1.exists('call-on-a')) === 1 && (await db2.exists('call-on-b')) === 1, 2000)).toBe(true);
    await sleep(300);
    // Beside the calls: each relay's DTLS certificate (the same one: B, started after A, took A's).
    expect((await db1.keys('*')).sort()).toEqual(['call-on-a', 'ngrelay-dtls-identity']);
    expect((await db2.keys('*')).sort()).toEqual(['call-on-b', 'ngrelay-dtls-identity']);
    expect(await waitFor(async () => get(await redisStats(nodeB), 'foreigncalls') === 1, 2000)).toBe(true);
    expect(get(await redisStats(nodeA), 'foreigncalls')).toBe(1);
    // A foreign call is not one of B's own: B's query shows it (bound lazily) but B's own count is its call.
    expect((await request(nodeB, { command: 'query', 'call-id': 'call-on-b' }))['result']).toEqual(Buffer.from('ok'));

    // A dies; its call's media goes on through B on the same ports.
    nodeA.relay.process.killNow();
    await nodeA.relay.process.exited;
    const gap = await bothWays(onA, 100, 3000);
    expect(gap).toBeLessThan(1500);
    await bothWays(onB, 100);

    // The proxy's next commands go to B: a re-answer, a query, then the delete, all succeed.
    const reAnswer = await request(nodeB, { command: 'answer', 'call-id': 'call-on-a', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(onA.b.port) });
    expect(reAnswer['result']).toEqual(Buffer.from('ok'));
    expect(portOf(reAnswer)).toBe(onA.toA);
    const q = await request(nodeB, { command: 'query', 'call-id': 'call-on-a' });
    expect(q['result']).toEqual(Buffer.from('ok'));
    await bothWays(onA, 200);
    // Taken over: B's database has it now, A's does not (A, back, would not restore a second copy).
    expect(await waitFor(async () => (await db2.exists('call-on-a')) === 1 && (await db1.exists('call-on-a')) === 0, 2000)).toBe(true);
    expect(get(await redisStats(nodeB), 'foreigncalls')).toBe(0);
    const del = await request(nodeB, { command: 'delete', 'call-id': 'call-on-a', 'from-tag': 'A' });
    expect(del['result']).toEqual(Buffer.from('ok'));
    expect(await waitFor(async () => (await db2.exists('call-on-a')) === 0, 2000)).toBe(true);
    db1.disconnect();
    db2.disconnect();
  }, 60_000);

  it('a standby started later reads the calls already there; a call deleted on A is dropped from B', async () => {
    const media = await freeMediaRange(40);
    const nodeA = await node(await freeUdpPort(), media, 3, 4);
    await call(nodeA, 'short');
    await sleep(200);
    const nodeB = await node(await freeUdpPort(), media, 4, 3);
    // B answers ping once its ng socket listens, a moment before it has read the followed database.
    expect(await waitFor(async () => get(await redisStats(nodeB), 'foreigncalls') === 1, 2000)).toBe(true);
    expect(nodeB.relay.process.stderrText).toMatch(/"call-id":"short".*foreign call held/);
    await request(nodeA, { command: 'delete', 'call-id': 'short', 'from-tag': 'A' });
    expect(await waitFor(async () => get(await redisStats(nodeB), 'foreigncalls') === 0, 2000)).toBe(true);
    expect(nodeB.relay.process.stderrText).toContain('foreign call dropped');
  }, 30_000);
});
