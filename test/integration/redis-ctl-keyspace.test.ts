/**
 * Debian's rtpengine-ctl (the real binary) driving `ksadd`, `ksrm`, `kslist`, `active` and `standby` on
 * ngrelay's --listen-cli, with a real redis-server: the replies word for word beside rtpengine 10.5's, and
 * their effect (a database followed at runtime holds the other relay's calls as foreign ones, `ksrm` drops
 * them, `standby` sets own calls foreign: not written, not timed out, keys kept; `active` takes them back).
 */
import { execFile } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import { startRtpengine } from '../support/rtpengine';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import type { BDict } from '../support/bencode';
import { TestRedis } from '../support/redis-server';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';
import { get, sdp } from '../support/ng-values';
import { sleep } from '../support/rtp-packets';

const CTL = '/usr/bin/rtpengine-ctl';

function ctl(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(CTL, ['-ip', '127.0.0.1', '-port', String(port), ...command.split(' ').filter((w) => w !== '')], { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`rtpengine-ctl ${command} failed: ${err.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

interface Side {
  relay: RelayUnderTest;
  cli: number;
  ng: NgRawClient;
}

let redis: TestRedis;
const sides: Side[] = [];

async function start(kind: 'rtpengine' | 'ngrelay', args: string[]): Promise<Side> {
  const [ngPort, cli, range] = await Promise.all([freeUdpPort(), freeTcpPort(), freeMediaRange()]);
  const options = { ngPort, ...range, deleteDelay: 0, extraArgs: [`--listen-cli=127.0.0.1:${cli}`, ...args] };
  const relay = kind === 'rtpengine' ? await startRtpengine(options) : await startNgrelay(options);
  const side = { relay, cli, ng: await NgRawClient.open(ngPort) };
  sides.push(side);
  return side;
}

async function call(side: Side, callId: string, port: number): Promise<void> {
  const offer = await side.ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(port) });
  expect(offer.plain['result'], JSON.stringify(offer.plain)).toBe('ok');
  const answer = await side.ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(port + 2) });
  expect(answer.plain['result'], JSON.stringify(answer.plain)).toBe('ok');
}

async function foreignCalls(side: Side): Promise<unknown> {
  const stats = (await side.ng.request({ command: 'statistics' })).dict as BDict;
  return get(stats, 'statistics', 'statedir', 'redis', 'foreigncalls');
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
  for (const s of sides.splice(0)) {
    s.ng.close();
    await s.relay.stop();
  }
});

afterAll(async () => {
  await redis?.stop();
});

describe('rtpengine-ctl ksadd / ksrm / kslist / active / standby', () => {
  it('replies as rtpengine 10.5 does, word for word', async () => {
    const [reference, ngrelay] = await Promise.all([
      start('rtpengine', ['--config-file=none', `--redis=${redis.url(1)}`, '--subscribe-keyspace=2']),
      start('ngrelay', [`--redis=${redis.url(3)}`, '--subscribe-keyspace=2']),
    ]);
    const commands = [
      'kslist', 'ksadd 5', 'ksadd 5', 'kslist', 'ksadd 6x', 'ksadd 7 8', 'kslist', 'ksrm 9', 'ksrm 5', 'kslist',
      'ksrm 2', 'kslist', 'ksadd', 'ksrm', 'ksadd keyspace 3', 'ksrm abc', 'standby', 'active',
    ];
    for (const command of commands) {
      const [want, got] = [await ctl(reference.cli, command), await ctl(ngrelay.cli, command)];
      expect(got, command).toBe(want);
    }
  }, 60_000);

  it('ksadd follows another relay\'s database at runtime (its calls held as foreign), ksrm drops them', async () => {
    const a = await start('ngrelay', [`--redis=${redis.url(7)}`]);
    const b = await start('ngrelay', [`--redis=${redis.url(8)}`]);
    await call(a, 'ks-call', 42000);
    expect(await foreignCalls(b)).toBe(0);
    expect(await ctl(b.cli, 'ksadd 7')).toBe('Success adding keyspace 7 to redis notifications.\n');
    expect(await waitFor(async () => (await foreignCalls(b)) === 1, 3000)).toBe(true);
    expect(await ctl(b.cli, 'kslist')).toBe('\nSubscribed-on keyspaces:\n7 \n');
    // Followed from now on: a new call of A's arrives by notification.
    await call(a, 'ks-call-2', 42010);
    expect(await waitFor(async () => (await foreignCalls(b)) === 2, 3000)).toBe(true);
    expect(await ctl(b.cli, 'ksrm 7')).toBe('Successfully unsubscribed from keyspace 7.\nSuccessfully removed all foreign calls for keyspace 7.\n');
    expect(await foreignCalls(b)).toBe(0);
    // Unsubscribed: A's next call is not held.
    await call(a, 'ks-call-3', 42020);
    await sleep(500);
    expect(await foreignCalls(b)).toBe(0);
    expect(b.relay.process.stderrText).toContain('keyspace unsubscribed');
    // A's calls are A's: its keys are untouched by B.
    const db7 = redis.client(7);
    try {
      expect((await db7.keys('*')).sort()).toEqual(['ks-call', 'ks-call-2', 'ks-call-3', 'ngrelay-dtls-identity']);
    } finally {
      db7.disconnect();
    }
  }, 60_000);

  it('standby sets own calls foreign (not timed out, keys kept when they end); active takes them back', async () => {
    const http = await freeTcpPort();
    const relay = await start('ngrelay', [`--redis=${redis.url(9)}`, '--timeout=1', '--silent-timeout=1', '--offer-timeout=1', `--listen-http=127.0.0.1:${http}`]);
    const sessions = async (): Promise<string[]> =>
      (await (await fetch(`http://127.0.0.1:${http}/metrics`)).text()).split('\n').filter((l) => l.startsWith('rtpengine_sessions{'));
    const db9 = redis.client(9);
    try {
      await call(relay, 'sb-call', 42100);
      expect(await waitFor(async () => (await db9.exists('sb-call')) === 1, 2000)).toBe(true);
      expect(await ctl(relay.cli, 'list sessions all')).toMatch(/callid: +sb-call \|.*\| redis_keyspace:9 \| foreign:no\n$/);
      expect(await ctl(relay.cli, 'standby')).toBe("Ok, all calls set to 'foreign (standby)'\n");
      expect(await ctl(relay.cli, 'list numsessions')).toMatch(/^Current sessions own: 0\nCurrent sessions foreign: 1\nCurrent sessions total: 1\n/);
      expect(await ctl(relay.cli, 'list sessions foreign')).toMatch(/callid: +sb-call \|.*\| redis_keyspace:9 \| foreign:yes\n$/);
      expect(await ctl(relay.cli, 'list sessions own')).toBe('No own sessions on this media relay.\n');
      expect(await sessions()).toEqual(['rtpengine_sessions{type="own"} 0', 'rtpengine_sessions{type="foreign"} 1']);
      // ng statistics counts them the same way.
      const stats = (await relay.ng.request({ command: 'statistics' })).dict;
      expect(get(stats, 'statistics', 'currentstatistics', 'sessionsown')).toBe(0);
      expect(get(stats, 'statistics', 'currentstatistics', 'sessionsforeign')).toBe(1);
      // No media for well past --timeout: a foreign call is ended only by final-timeout.
      await sleep(2500);
      expect(await ctl(relay.cli, 'list numsessions')).toMatch(/Current sessions foreign: 1\n/);
      // Back to active: the call is this relay's own again and times out like any other (at the next sweep).
      expect(await ctl(relay.cli, 'active')).toBe("Ok, all calls set to 'owned (active)'\n");
      expect(await waitFor(async () => (await ctl(relay.cli, 'list numsessions')).startsWith('Current sessions own: 0\nCurrent sessions foreign: 0'), 4000)).toBe(true);
      // An own call's end deletes its key ...
      expect(await waitFor(async () => (await db9.exists('sb-call')) === 0, 2000)).toBe(true);
      // ... a foreign one's (standby, then terminated here) leaves it for the relay that holds the call.
      await call(relay, 'sb-call-2', 42110);
      expect(await waitFor(async () => (await db9.exists('sb-call-2')) === 1, 2000)).toBe(true);
      await ctl(relay.cli, 'standby');
      expect(await ctl(relay.cli, 'terminate foreign')).toBe('All foreign calls terminated by operator.\n');
      expect(await ctl(relay.cli, 'list numsessions')).toMatch(/^Current sessions own: 0\nCurrent sessions foreign: 0\n/);
      await sleep(300);
      expect(await db9.exists('sb-call-2')).toBe(1);
    } finally {
      db9.disconnect();
    }
  }, 60_000);
});
