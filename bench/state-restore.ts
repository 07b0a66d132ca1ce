/**
 * How long a restart takes to restore many calls: sets up `calls` calls (offer+answer each, plain RTP, 4
 * sockets per call) with `--state-dir` (and, in a second row, `--redis`), `kill -9`, starts the same command
 * line again and times it until every call is back: the restore runs before the ng socket opens, so the
 * first `pong` (polled every 10 ms) means it is done; `statistics` then says how many calls came back.
 *
 *   npx vite-node bench/state-restore.ts [--calls=10000] [--stores=state-dir,redis] [--concurrency=16]
 *
 * 10,000 calls need 40,000 sockets, above this VM's hard RLIMIT_NOFILE of 20,000: run as root, and the bench
 * raises its own hard limit with prlimit(1) (the relays it starts inherit it and raise their soft limit to
 * it, as ngrelay does at every start). Bounded: `calls` offer+answer pairs per row, no media is sent.
 * Smoke run: `--calls=500`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { NGRELAY_BIN, REPO_ROOT } from '../test/support/ngrelay';
import { relayArgs, LOOPBACK } from '../test/support/relay';
import { startProcess, assertUdpPortFree, type ManagedProcess } from '../test/support/process';
import { NgRawClient } from '../test/support/ng-client';
import { isDict } from '../test/support/bencode';
import { TestRedis } from '../test/support/redis-server';
import { freeUdpPort } from '../test/support/free-ports';

/** On the disk the repo is on (not a tmpfs); removed after each row. */
const OUT_DIR = path.join(__dirname, 'out');
// 4 ports per call: 10,000 calls need 40,000.
const PORT_MIN = 14000;
const PORT_MAX = 59999;
const SOCKETS_PER_CALL = 4;
/** How long one start (with its restore) may take before the row gives up. */
const START_DEADLINE_MS = 300_000;

function arg(name: string, fallback: string): string {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? hit.slice(name.length + 3) : fallback;
}

function sdp(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=sendrecv', ''].join('\r\n');
}

/** Raises this process's RLIMIT_NOFILE (hard and soft) so the relays it starts can hold `need` descriptors. */
function raiseNofile(need: number): void {
  // Within the hard limit already: the relays raise their soft limit to it themselves (no privilege needed).
  const hard = spawnSync('prlimit', [`--pid=${process.pid}`, '--nofile', '--output=HARD', '--noheadings'], { encoding: 'utf8' });
  if (hard.status === 0 && Number(hard.stdout.trim()) >= need) return;
  const limit = String(Math.max(need, 1024));
  const r = spawnSync('prlimit', [`--pid=${process.pid}`, `--nofile=${limit}:${limit}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(`prlimit --nofile=${limit} failed (${r.stderr.trim()}): ${need} descriptors need root or a higher hard limit`);
  }
}

interface Relay {
  proc: ManagedProcess;
  ng: NgRawClient;
}

/** Starts bin/ngrelay; resolves at its first pong, with the ms that took (process start included). */
async function start(ngPort: number, extra: string[]): Promise<Relay & { ms: number }> {
  await assertUdpPortFree(LOOPBACK, ngPort);
  const args = relayArgs({ ngPort, portMin: PORT_MIN, portMax: PORT_MAX, deleteDelay: 0, extraArgs: ['--log-level=4', ...extra] });
  const t0 = Date.now();
  const proc = startProcess({ name: 'ngrelay', command: process.execPath, args: [NGRELAY_BIN, ...args], cwd: REPO_ROOT });
  const ng = await NgRawClient.open(ngPort);
  while (Date.now() - t0 < START_DEADLINE_MS) {
    if (proc.hasExited) throw new Error(`ngrelay exited during its start:\n${proc.describe()}`);
    try {
      const reply = await ng.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 10 });
      if (String(reply.dict['result']) === 'pong') return { proc, ng, ms: Date.now() - t0 };
    } catch {
      // not listening yet
    }
  }
  ng.close();
  await proc.stop();
  throw new Error(`ngrelay did not answer within ${START_DEADLINE_MS} ms`);
}

/** `calls` offer+answer pairs, `concurrency` at a time; returns how many failed. */
async function setUp(ng: NgRawClient, calls: number, concurrency: number): Promise<number> {
  let next = 0;
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      const callId = `restore-${i}`;
      const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(20000 + (i % 1000) * 2) }, { deadlineMs: 30_000 });
      const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(22000 + (i % 1000) * 2) }, { deadlineMs: 30_000 });
      if (String(offer.dict['result']) !== 'ok' || String(answer.dict['result']) !== 'ok') errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return errors;
}

async function restoredCounts(ng: NgRawClient): Promise<{ restored: number; failed: number }> {
  const stats = (await ng.request({ command: 'statistics' })).dict['statistics'];
  const block = isDict(stats) ? stats['statedir'] : undefined;
  return {
    restored: isDict(block) ? Number(block['restoredcalls']) : NaN,
    failed: isDict(block) ? Number(block['failedcalls']) : NaN,
  };
}

async function main(): Promise<void> {
  const calls = Number(arg('calls', '10000'));
  const stores = arg('stores', 'state-dir,redis').split(',');
  const concurrency = Number(arg('concurrency', '16'));
  if (!(calls > 0) || calls * SOCKETS_PER_CALL > PORT_MAX - PORT_MIN + 1) throw new Error(`--calls must be 1..${Math.floor((PORT_MAX - PORT_MIN + 1) / SOCKETS_PER_CALL)}`);
  raiseNofile(calls * SOCKETS_PER_CALL + 256); // the sockets plus the relay's own few dozen
  mkdirSync(OUT_DIR, { recursive: true });
  const ngPort = await freeUdpPort();
  const redis = stores.includes('redis') ? await TestRedis.start() : null;
  const rows: string[] = [];
  try {
    for (const store of stores) {
      const dir = mkdtempSync(path.join(OUT_DIR, 'restore-'));
      const extra = store === 'redis' ? [`--redis=${(redis as TestRedis).url(1)}`] : [`--state-dir=${dir}`];
      let relay: Relay | null = null;
      try {
        relay = await start(ngPort, extra);
        const t0 = Date.now();
        const errors = await setUp(relay.ng, calls, concurrency);
        const setupS = (Date.now() - t0) / 1000;
        // Redis writes follow the replies by a loop turn: let the last ones land before the kill.
        await new Promise((r) => setTimeout(r, store === 'redis' ? 2000 : 200));
        relay.proc.killNow();
        await relay.proc.exited;
        relay.ng.close();
        relay = null;
        const restarted = await start(ngPort, extra);
        relay = restarted;
        const { restored, failed } = await restoredCounts(restarted.ng);
        rows.push(
          `| ${store} | ${calls} | ${errors} | ${setupS.toFixed(1)} | ${restored} | ${failed} | ${(restarted.ms / 1000).toFixed(2)} |`,
        );
      } finally {
        relay?.ng.close();
        await relay?.proc.stop();
        rmSync(dir, { recursive: true, force: true });
        if (redis) {
          const db = redis.client(1);
          await db.flushdb();
          db.disconnect();
        }
      }
    }
  } finally {
    await redis?.stop();
  }
  console.log('restore after kill -9 (time from the start of the process to its first pong; the restore runs before the ng socket opens):');
  console.log('| store | calls | setup errors | setup s | restored | failed | restore s |');
  console.log('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) console.log(r);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
