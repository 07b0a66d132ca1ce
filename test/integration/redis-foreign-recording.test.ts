/**
 * Recorded calls across an active/standby takeover (`--subscribe-keyspace`), as rtpengine 10.5 records the
 * calls it reads from Redis: two real `ngrelay`s on loopback with one Redis, the same media range and one
 * `--recording-dir`; A records a call, `kill -9` of A, B binds its ports and goes on recording into the same
 * spool pcap; B's delete finishes it: one pcap with the packets from before and after. A second case: B with
 * its own recording dir starts a pcap of the same name there (test/unit/recording-foreign.test.ts: a foreign
 * call dropped before any packet was recorded here leaves no file).
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import type { BDict, BInputDict } from '../support/bencode';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';
import { get, portOf, sdp } from '../support/ng-values';
import { cutToLastRecord } from '../../src/recording/spool-recovery';

let redis: TestRedis;
let workDir: string;
const relays: RelayUnderTest[] = [];
const clients: NgRawClient[] = [];
const parties: Party[] = [];

interface Node {
  relay: RelayUnderTest;
  ng: NgRawClient;
}

async function node(media: { portMin: number; portMax: number }, ownDb: number, otherDb: number, recordingDir: string): Promise<Node> {
  const ngPort = await freeUdpPort();
  const relay = await startNgrelay({
    ngPort,
    ...media,
    deleteDelay: 0,
    extraArgs: [`--redis=${redis.url(ownDb)}`, `--subscribe-keyspace=${otherDb}`, `--recording-dir=${recordingDir}`],
  });
  relays.push(relay);
  const ng = await NgRawClient.open(ngPort);
  clients.push(ng);
  return { relay, ng };
}

async function request(n: Node, body: BInputDict): Promise<BDict> {
  return (await n.ng.request(body)).dict;
}

async function foreignCalls(n: Node): Promise<unknown> {
  return get(await request(n, { command: 'statistics' }), 'statistics', 'statedir', 'redis', 'foreigncalls');
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await sleep(50);
  }
  return false;
}

/** A recorded call on `n`: A's party sends to the port the answer gave it, B's party receives. */
async function recordedCall(n: Node, callId: string): Promise<{ a: Party; b: Party; toA: number }> {
  const a = await Party.open();
  const b = await Party.open();
  parties.push(a, b);
  await request(n, { command: 'offer', 'call-id': callId, 'from-tag': 'A', 'record-call': 'yes', sdp: sdp(a.port) });
  const toA = portOf(await request(n, { command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) }));
  return { a, b, toA };
}

async function send(c: { a: Party; b: Party; toA: number }, from: number, count: number): Promise<void> {
  const had = c.b.received.length;
  for (let i = from; i < from + count; i++) {
    await c.a.send(rtpPacket({ seq: i, ssrc: 0xa1, payloadType: 0, payloadBytes: 60 }), c.toA, '127.0.0.1');
    await sleep(10);
  }
  expect(await waitUntil(() => c.b.received.length >= had + count, 3000)).toBe(true);
}

beforeAll(async () => {
  redis = await TestRedis.start();
  workDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-foreign-rec-'));
}, 30_000);

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const r of relays.splice(0)) await r.stop();
  for (const p of parties.splice(0)) await p.close();
  for (const db of [11, 12, 13, 14]) {
    const client = redis.client(db);
    await client.flushdb();
    client.disconnect();
  }
});

afterAll(async () => {
  await redis?.stop();
  rmSync(workDir, { recursive: true, force: true });
});

describe('recording of foreign calls (--subscribe-keyspace)', () => {
  it('after kill -9 of A, B goes on recording into the same pcap; B\'s delete finishes one pcap with the packets from before and after', async () => {
    const dir = mkdtempSync(path.join(workDir, 'shared-'));
    const media = await freeMediaRange(8);
    // B first: its start finishes recordings left in the spool, which A's must not be yet.
    const nodeB = await node(media, 12, 11, dir);
    const nodeA = await node(media, 11, 12, dir);
    const c = await recordedCall(nodeA, 'rec-takeover');
    await send(c, 0, 10);
    expect(await waitFor(async () => (await foreignCalls(nodeB)) === 1, 3000)).toBe(true);
    await sleep(300); // A's pcap writer empties its ring
    nodeA.relay.process.killNow();
    await nodeA.relay.process.exited;
    // B binds A's ports within its retry interval and records what it relays.
    await sleep(600);
    await send(c, 10, 10);
    expect(nodeB.relay.process.stderrText).toMatch(/"call-id":"rec-takeover".*recording continued after restart/);
    expect((await request(nodeB, { command: 'delete', 'call-id': 'rec-takeover', 'from-tag': 'A' }))['result']).toEqual(Buffer.from('ok'));
    const pcaps = readdirSync(path.join(dir, 'pcaps'));
    expect(pcaps).toHaveLength(1);
    expect(pcaps[0]).toMatch(/^rec-takeover-[0-9a-f]{16}\.pcap$/);
    expect(readdirSync(path.join(dir, 'spool'))).toEqual([]);
    expect(cutToLastRecord(path.join(dir, 'pcaps', pcaps[0] as string))).toBe(20);
  }, 60_000);

  it('B with a recording dir of its own: the call is recorded there under the same name after the takeover', async () => {
    const dirA = mkdtempSync(path.join(workDir, 'a-'));
    const dirB = mkdtempSync(path.join(workDir, 'b-'));
    const media = await freeMediaRange(8);
    const nodeB = await node(media, 14, 13, dirB);
    const nodeA = await node(media, 13, 14, dirA);
    const c = await recordedCall(nodeA, 'rec-own-dir');
    await send(c, 0, 5);
    expect(await waitFor(async () => (await foreignCalls(nodeB)) === 1, 3000)).toBe(true);
    const nameOnA = readdirSync(path.join(dirA, 'spool')).find((f) => f.endsWith('.pcap'));
    expect(nameOnA).toBeDefined();
    nodeA.relay.process.killNow();
    await nodeA.relay.process.exited;
    await sleep(600);
    await send(c, 5, 7);
    await request(nodeB, { command: 'delete', 'call-id': 'rec-own-dir', 'from-tag': 'A' });
    expect(readdirSync(path.join(dirB, 'pcaps'))).toEqual([nameOnA]);
    expect(cutToLastRecord(path.join(dirB, 'pcaps', nameOnA as string))).toBe(7);

  }, 60_000);
});
