/**
 * What `--state-dir` costs an offer+answer, and how long a restart takes to restore the calls.
 *
 *   npx vite-node bench/state-latency.ts [--calls=2000]
 *
 * Starts bin/ngrelay three times on loopback (persistence off, --state-dir, --state-dir --state-fsync), runs
 * `calls` offer+answer pairs one after another (each timed from sending the offer to the answer's reply),
 * prints p50/p99 and calls per second; then, for the --state-dir run, kill -9 and a start with the same
 * command line, timed until `list` shows every call back. Bounded: `calls` pairs per row, nothing else sent.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startNgrelay } from '../test/support/ngrelay';
import type { RelayUnderTest } from '../test/support/relay';
import { NgRawClient } from '../test/support/ng-client';
import { isDict } from '../test/support/bencode';

const NG_PORT = 22911;
/** On the disk the repo is on (not a tmpfs, where fsync costs nothing); removed after each row. */
const OUT_DIR = path.join(__dirname, 'out');
const PORT_MIN = 20000;
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

async function start(extraArgs: string[]): Promise<{ relay: RelayUnderTest; ng: NgRawClient }> {
  const relay = await startNgrelay({ ngPort: NG_PORT, portMin: PORT_MIN, portMax: PORT_MAX, deleteDelay: 0, extraArgs: ['--log-level=4', ...extraArgs] });
  return { relay, ng: await NgRawClient.open(NG_PORT) };
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
  let restoreMs = NaN;
  let restored = NaN;
  let failed = NaN;
  for (const mode of ['off', 'state-dir', 'state-dir+fsync'] as const) {
    const dir = mkdtempSync(path.join(OUT_DIR, 'state-'));
    const extra = mode === 'off' ? [] : [`--state-dir=${dir}`, ...(mode === 'state-dir+fsync' ? ['--state-fsync'] : [])];
    let { relay, ng } = await start(extra);
    try {
      rows.push({ mode, ...(await offerAnswer(ng, calls)) });
      if (mode === 'state-dir') {
        relay.process.killNow();
        await relay.process.exited;
        ng.close();
        // The restore runs before the ng socket opens: the first pong means it is done.
        const t0 = Date.now();
        ({ relay, ng } = await start(extra));
        restoreMs = Date.now() - t0;
        const stats = (await ng.request({ command: 'statistics' })).dict['statistics'];
        const block = isDict(stats) ? stats['statedir'] : undefined;
        restored = isDict(block) ? Number(block['restoredcalls']) : NaN;
        failed = isDict(block) ? Number(block['failedcalls']) : NaN;
      }
    } finally {
      ng.close();
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`offer+answer, ${calls} calls one after another (ms per pair):`);
  console.log('| persistence | p50 ms | p99 ms | calls/s | ng errors |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.mode} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.perSecond.toFixed(0)} | ${r.errors} |`);
  console.log(`restore after kill -9: ${restored} of ${calls} calls back (${failed} failed) in ${restoreMs} ms, process start included`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
