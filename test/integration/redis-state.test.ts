/**
 * `--redis` with the real `ngrelay` binary and a real `redis-server` (started here on a random loopback
 * port, stopped by PID): calls restored from Redis after kill -9 (same ports, media both ways), the key's
 * TTL and its removal on delete, `no-redis-update`, a junk key skipped, and Redis trouble that never costs a
 * call: down at start (`--no-redis-required`), killed and restarted mid-call, SIGSTOPped for 5 s.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay, runNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { isDict, toPlain, type BDict, type BInputDict, type BValue } from '../support/bencode';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';
import { get, sdp, portOf } from '../support/ng-values';

let redis: TestRedis;
let relay: RelayUnderTest | undefined;
let ng: NgRawClient | undefined;
let ports: { ngPort: number; portMin: number; portMax: number };
const parties: Party[] = [];

async function party(): Promise<Party> {
  const p = await Party.open();
  parties.push(p);
  return p;
}

async function start(extraArgs: string[]): Promise<NgRawClient> {
  relay = await startNgrelay({ ...ports, deleteDelay: 0, extraArgs });
  ng?.close();
  ng = await NgRawClient.open(ports.ngPort);
  return ng;
}

async function crash(): Promise<void> {
  if (!relay) return;
  relay.process.killNow();
  await relay.process.exited;
  relay = undefined;
}

async function request(body: BInputDict): Promise<BDict> {
  if (!ng) throw new Error('no ng client');
  return (await ng.request(body)).dict;
}

/** Offer + answer between two fresh parties; the relay's ports towards A and B. */
async function call(callId: string, extra: BInputDict = {}): Promise<{ a: Party; b: Party; toA: number; toB: number }> {
  const a = await party();
  const b = await party();
  const toB = portOf(await request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(a.port), ...extra }));
  const toA = portOf(await request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port), ...extra }));
  return { a, b, toA, toB };
}

function rtp(seq: number, ssrc: number): Buffer {
  return rtpPacket({ seq: seq & 0xffff, ssrc, payloadType: 0, payloadBytes: 60 });
}

/** One packet each way (repeated until both arrive or `timeoutMs`). */
async function bothWays(c: { a: Party; b: Party; toA: number; toB: number }, seq: number, timeoutMs = 1500): Promise<void> {
  const aBefore = c.a.received.length;
  const bBefore = c.b.received.length;
  const deadline = Date.now() + timeoutMs;
  let s = seq;
  while (Date.now() < deadline) {
    await c.a.send(rtp(s, 0xa1), c.toA, '127.0.0.1');
    await c.b.send(rtp(s, 0xb2), c.toB, '127.0.0.1');
    s++;
    if (await waitUntil(() => c.a.received.length > aBefore && c.b.received.length > bBefore, 20, 2)) return;
  }
  throw new Error(`media did not flow both ways within ${timeoutMs} ms`);
}

async function redisStats(): Promise<BValue | undefined> {
  return get(await request({ command: 'statistics' }), 'statistics', 'statedir', 'redis');
}

beforeAll(async () => {
  redis = await TestRedis.start();
}, 30_000);

afterEach(async () => {
  ng?.close();
  ng = undefined;
  await relay?.stop();
  relay = undefined;
  for (const p of parties.splice(0)) await p.close();
  const c = redis.client(1);
  await c.flushall().catch(() => undefined);
  c.disconnect();
});

afterAll(async () => {
  await redis?.stop();
});

async function freshPorts(): Promise<void> {
  ports = { ngPort: await freeUdpPort(), ...(await freeMediaRange(40)) };
}

describe('--redis', () => {
  it('restores calls from Redis after kill -9: same ports, media both ways; TTL set, key gone on delete', async () => {
    await freshPorts();
    const httpPort = await freeTcpPort();
    const args = [`--redis=${redis.url(1)}`, '--redis-expires=600', `--listen-http=127.0.0.1:${httpPort}`];
    await start(args);
    const c = await call('r-1');
    await bothWays(c, 1);
    const db = redis.client(1);
    expect(await waitUntil(() => false, 100)).toBe(false); // the write follows the reply by a loop turn
    expect(await db.exists('r-1')).toBe(1);
    const ttl = await db.ttl('r-1');
    expect(ttl).toBeGreaterThan(590);
    expect(ttl).toBeLessThanOrEqual(600);

    await crash();
    await start(args);
    await bothWays(c, 100);
    const q = await request({ command: 'query', 'call-id': 'r-1' });
    expect(q['result']).toEqual(Buffer.from('ok'));
    const stats = await redisStats();
    expect(get(stats, 'restoredcalls')).toBe(1);
    expect(get(stats, 'failedcalls')).toBe(0);
    expect(get(stats, 'connected')).toBe(1);
    const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^ngrelay_redis_restored_calls 1$/m);
    expect(metrics).toMatch(/^ngrelay_redis_connected 1$/m);
    expect(metrics).toMatch(/^ngrelay_redis_pending_writes 0$/m);
    expect(metrics).toMatch(/^# TYPE ngrelay_redis_writes_total counter$/m);

    await request({ command: 'delete', 'call-id': 'r-1', 'from-tag': 'A' });
    expect(await waitUntil(() => false, 100)).toBe(false);
    expect(await db.exists('r-1')).toBe(0);
    db.disconnect();
  }, 30_000);

  it('no-redis-update: the command is not written to Redis (the others are)', async () => {
    await freshPorts();
    await start([`--redis=${redis.url(1)}`]);
    const db = redis.client(1);
    await request({ command: 'offer', 'call-id': 'quiet', 'from-tag': 'A', sdp: sdp((await party()).port), flags: ['no-redis-update'] });
    await request({ command: 'offer', 'call-id': 'loud', 'from-tag': 'A', sdp: sdp((await party()).port) });
    await sleep(150);
    expect(await db.exists('loud')).toBe(1);
    expect(await db.exists('quiet')).toBe(0);
    db.disconnect();
  }, 30_000);

  it('a junk key is skipped with a log line naming it; the other calls are restored', async () => {
    await freshPorts();
    const args = [`--redis=${redis.url(1)}`];
    await start(args);
    const c = await call('good');
    await sleep(150);
    const db = redis.client(1);
    await db.set('junk', 'this is not a call');
    await db.set('cut', (await db.getBuffer('good'))?.subarray(0, 40) ?? '');
    await crash();
    await start(args);
    await bothWays(c, 1);
    const stats = await redisStats();
    expect(get(stats, 'restoredcalls')).toBe(1);
    expect(get(stats, 'skippedkeys')).toBe(2);
    const log = relay?.process.stderrText ?? '';
    expect(log).toMatch(/key \\"junk\\".*Redis key skipped \(left in Redis, not restored\)/);
    expect(log).toContain('truncated');
    db.disconnect();
  }, 30_000);

  it('with --state-dir too: a call in both comes from the state dir, one only in Redis from Redis', async () => {
    await freshPorts();
    const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-redis-state-'));
    try {
      const args = [`--redis=${redis.url(1)}`, `--state-dir=${dir}`];
      await start(args);
      const inBoth = await call('in-both');
      const redisOnly = await call('redis-only');
      await sleep(150);
      await crash();
      rmSync(path.join(dir, 'calls', createHash('sha256').update('redis-only').digest('hex').slice(0, 40) + '.call'));
      await start(args);
      await bothWays(inBoth, 1);
      await bothWays(redisOnly, 1);
      const log = relay?.process.stderrText ?? '';
      expect(log).toMatch(/"call-id":"in-both".*"from":"state-dir".*call restored/);
      expect(log).toMatch(/"call-id":"redis-only".*"from":"redis".*call restored/);
      expect(get(await redisStats(), 'restoredcalls')).toBe(1);
      expect(get(await request({ command: 'statistics' }), 'statistics', 'statedir', 'restoredcalls')).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('without --no-redis-required a start with Redis down fails naming it', async () => {
    const deadPort = await freeUdpPort();
    const result = await runNgrelay(['--config-file=none', '--table=-1', '--interface=127.0.0.1', `--listen-ng=127.0.0.1:${await freeUdpPort()}`, `--redis=127.0.0.1:${deadPort}/1`, '--log-stderr']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Redis 127.0.0.1:${deadPort}/1 cannot be reached`);
  }, 30_000);
});

describe('Redis trouble never costs a call', () => {
  it('down at start (--no-redis-required), killed and restarted mid-call, SIGSTOPped 5 s: ng and media go on, missed writes follow', async () => {
    await freshPorts();
    await redis.kill9();
    await start([`--redis=${redis.url(1)}`, '--no-redis-required', '--redis-cmd-timeout=300', '--redis-connect-timeout=300']);
    const c1 = await call('t-1');
    await bothWays(c1, 1);
    expect(get(await redisStats(), 'connected')).toBe(0);

    // Up again: what was missed is written.
    await redis.restart();
    const db = redis.client(1);
    expect(await waitUntil(() => false, 10)).toBe(false);
    let written = false;
    for (let i = 0; i < 60 && !written; i++) {
      written = (await db.exists('t-1')) === 1;
      if (!written) await sleep(100);
    }
    expect(written).toBe(true);

    // Killed mid-call (and back empty): every call is written again on reconnect, not only those that changed.
    db.disconnect();
    await redis.kill9();
    const c2 = await call('t-2');
    await bothWays(c1, 50);
    await bothWays(c2, 50);
    await redis.restart();
    const db2 = redis.client(1);
    let both = false;
    for (let i = 0; i < 60 && !both; i++) {
      both = (await db2.exists('t-1')) === 1 && (await db2.exists('t-2')) === 1;
      if (!both) await sleep(100);
    }
    expect(both).toBe(true);

    // SIGSTOP 5 s: offers keep answering promptly, media flows, the write follows SIGCONT.
    redis.pause();
    const t0 = Date.now();
    const c3 = await call('t-3');
    expect(Date.now() - t0).toBeLessThan(500);
    const until = Date.now() + 5000;
    let seq = 100;
    while (Date.now() < until) {
      await bothWays(c1, seq);
      await bothWays(c3, seq);
      seq += 10;
      await sleep(200);
    }
    redis.resume();
    let t3 = false;
    for (let i = 0; i < 100 && !t3; i++) {
      t3 = (await db2.exists('t-3')) === 1;
      if (!t3) await sleep(100);
    }
    expect(t3).toBe(true);
    // Commands that timed out during the pause are written again (the server may have run them late too).
    let stats = await redisStats();
    for (let i = 0; i < 100 && get(stats, 'pendingwrites') !== 0; i++) {
      await sleep(100);
      stats = await redisStats();
    }
    expect(Number(get(stats, 'writeerrors'))).toBeGreaterThan(0);
    expect(get(stats, 'pendingwrites')).toBe(0);
    // One line per change of state, not one per attempt.
    const log = relay?.process.stderrText ?? '';
    const down = log.split('\n').filter((l) => l.includes('Redis unreachable')).length;
    expect(down).toBeGreaterThanOrEqual(1);
    expect(down).toBeLessThanOrEqual(6);
    db2.disconnect();
  }, 60_000);

  it('--redis-allowed-errors / --redis-disable-time: writing pauses after the errors, then catches up', async () => {
    await freshPorts();
    await start([`--redis=${redis.url(1)}`, '--redis-cmd-timeout=200', '--redis-allowed-errors=0', '--redis-disable-time=2']);
    redis.pause();
    let paused = false;
    try {
      await call('p-1');
      paused = await waitUntil(() => (relay?.process.stderrText ?? '').includes('Redis writes paused after --redis-allowed-errors errors'), 3000);
    } finally {
      redis.resume();
    }
    expect(paused).toBe(true);
    const db = redis.client(1);
    let written = false;
    for (let i = 0; i < 60 && !written; i++) {
      written = (await db.exists('p-1')) === 1 && get(await redisStats(), 'pendingwrites') === 0;
      if (!written) await sleep(100);
    }
    expect(written).toBe(true);
    db.disconnect();
  }, 30_000);
});
