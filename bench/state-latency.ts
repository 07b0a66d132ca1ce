/**
 * What `--state-dir` and `--redis` cost an offer+answer, and how long a restart takes to restore the calls.
 *
 *   npx vite-node bench/state-latency.ts [--calls=2000]   (--calls=10000 for the 10,000-call restore)
 *
 * Starts bin/ngrelay once per row on loopback (persistence off, --state-dir, --state-dir --state-fsync,
 * --redis, --redis with --state-dir; Redis is a throwaway redis-server on a random port), runs `calls`
 * offer+answer pairs one after another (each timed from sending the offer to the answer's reply), prints
 * p50/p99 and calls per second; then, for the --state-dir and --redis rows, kill -9 and a start with the
 * same command line, timed until the first pong (the restore runs before the ng socket opens). The same for
 * rtpengine 10.5, without persistence and with `--redis` (its restore, too, runs before it answers). Bounded:
 * `calls` pairs per row, nothing else sent.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startNgrelay } from '../test/support/ngrelay';
import { startRtpengine } from '../test/support/rtpengine';
import type { RelayUnderTest } from '../test/support/relay';
import { NgRawClient } from '../test/support/ng-client';
import { isDict, type BValue } from '../test/support/bencode';
import { TestRedis } from '../test/support/redis-server';

const NG_PORT = 22911;
/** On the disk the repo is on (not a tmpfs, where fsync costs nothing); removed after each row. */
const OUT_DIR = path.join(__dirname, 'out');
// 4 ports per call: 10,000 calls need 40,000.
const PORT_MIN = 14000;
const PORT_MAX = 59999;

function arg(name: string, fallback: number): number {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.slice(name.length + 3)) : fallback;
}

function sdp(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=sendrecv', ''].join('\r\n');
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

type RelayName = 'ngrelay' | 'rtpengine';

async function start(name: RelayName, extraArgs: string[]): Promise<{ relay: RelayUnderTest; ng: NgRawClient }> {
  const options = { ngPort: NG_PORT, portMin: PORT_MIN, portMax: PORT_MAX, deleteDelay: 0, extraArgs: ['--log-level=4', ...extraArgs] };
  const relay = name === 'ngrelay' ? await startNgrelay(options) : await startRtpengine(options);
  return { relay, ng: await NgRawClient.open(NG_PORT) };
}

/** Calls the relay holds as its own, from `statistics` (ngrelay: the restore counters; rtpengine: sessionsown). */
function restoredOf(name: RelayName, stats: BValue | undefined): { restored: number; failed: number } {
  if (!isDict(stats)) return { restored: NaN, failed: NaN };
  if (name === 'rtpengine') {
    const current = stats['currentstatistics'];
    return { restored: isDict(current) ? Number(current['sessionsown']) : NaN, failed: NaN };
  }
  const block = stats['statedir'];
  return isDict(block) ? { restored: Number(block['restoredcalls']), failed: Number(block['failedcalls']) } : { restored: NaN, failed: NaN };
}

async function offerAnswer(ng: NgRawClient, calls: number): Promise<{ p50: number; p99: number; perSecond: number; errors: number }> {
  const ms: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) {
    const callId = `bench-${i}`;
    const s = process.hrtime.bigint();
    for (const reply of [
      await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(30000 + (i % 1000) * 2) }),
      await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(31000 + (i % 1000) * 2) }),
    ]) {
      if (String(reply.dict['result']) !== 'ok') {
        errors++;
        firstError ??= String(reply.dict['error-reason']);
      }
    }
    ms.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  ms.sort((a, b) => a - b);
  if (firstError !== undefined) console.error(`${errors} ng errors, the first: ${firstError}`);
  return { p50: percentile(ms, 50), p99: percentile(ms, 99), perSecond: calls / seconds, errors };
}

async function main(): Promise<void> {
  const calls = arg('calls', 2000);
  mkdirSync(OUT_DIR, { recursive: true });
  const rows: Array<{ mode: string; p50: number; p99: number; perSecond: number; errors: number }> = [];
  const restores: Array<{ mode: string; ms: number; restored: number; failed: number }> = [];
  const redis = await TestRedis.start();
  try {
    for (const mode of ['off', 'state-dir', 'state-dir+fsync', 'redis', 'redis+state-dir', 'rtpengine off', 'rtpengine redis'] as const) {
      const name: RelayName = mode.startsWith('rtpengine') ? 'rtpengine' : 'ngrelay';
      const dir = mkdtempSync(path.join(OUT_DIR, 'state-'));
      const extra = [
        ...(mode.includes('state-dir') ? [`--state-dir=${dir}`] : []),
        ...(mode === 'state-dir+fsync' ? ['--state-fsync'] : []),
        ...(mode.startsWith('redis') || mode === 'rtpengine redis' ? [`--redis=${redis.url(1)}`] : []),
      ];
      let { relay, ng } = await start(name, extra);
      try {
        rows.push({ mode, ...(await offerAnswer(ng, calls)) });
        if (mode === 'state-dir' || mode === 'redis' || mode === 'rtpengine redis') {
          // Redis writes follow the replies by a loop turn: let the last ones land before the kill.
          await new Promise((r) => setTimeout(r, 500));
          relay.process.killNow();
          await relay.process.exited;
          ng.close();
          // The restore runs before the ng socket opens: the first pong means it is done.
          const t0 = Date.now();
          ({ relay, ng } = await start(name, extra));
          const ms = Date.now() - t0;
          const stats = (await ng.request({ command: 'statistics' })).dict['statistics'];
          restores.push({ mode, ms, ...restoredOf(name, stats) });
        }
      } finally {
        ng.close();
        await relay.stop();
        rmSync(dir, { recursive: true, force: true });
        const db = redis.client(1);
        await db.flushdb();
        db.disconnect();
      }
    }
  } finally {
    await redis.stop();
  }
  console.log(`offer+answer, ${calls} calls one after another (ms per pair):`);
  console.log('| persistence | p50 ms | p99 ms | calls/s | ng errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.mode} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.perSecond.toFixed(0)} | ${r.errors} |`);
  for (const r of restores) {
    console.log(`restore from ${r.mode} after kill -9: ${r.restored} of ${calls} calls back (${r.failed} failed) in ${r.ms} ms, process start included`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
