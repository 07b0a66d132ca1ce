/**
 * Control-plane benchmark: open-loop offer+answer+delete cycles against ngrelay and rtpengine 10.5, side by
 * side in one run. For each step rate both relays get the same load, one after the other (never at once),
 * so machine noise hits both. Prints, per relay and rate: cycles completed, loss (no reply within the
 * deadline), shed (load-limit replies), p50/p99 per command, CPU ms per cycle and RSS; then each relay's
 * capacity and the ratio. A step is loss-free when every cycle completed (no loss, no load limit, no error)
 * and the relay kept up: cycles completed per second, from the step's start to its last reply, at least
 * 90 % of the offered rate (a relay that completes everything late has not carried the rate).
 *
 * Bounded: every step lasts `--step-seconds` (≤ 120) plus a 2 s drain, at most 12 rates × 9 rounds (--repeat);
 * requests are never retransmitted, so each step sends exactly 3 × rate × seconds requests at most. Loopback only.
 *
 *   npm run bench:control                          # rates 200,500,1000,1500,2000,3000; 3 s steps
 *   npm run bench:control -- --rates=500,1000 --step-seconds=2 --relays=ngrelay
 *   npm run bench:control -- --rates=400 --step-seconds=75   # steady-state RSS: replies live 30-60 s
 *   npm run bench:control -- --rates=500 --step-seconds=15 --repeat=5   # p99 on a noisy VM: medians of 5 rounds
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NgRawClient, textOf } from '../test/support/ng-client';
import { startNgProcess } from '../test/support/process';
import { LOOPBACK, relayArgs, type RelayOptions } from '../test/support/relay';
import { RTPENGINE_BIN, ensureRtpengineInstalled } from '../test/support/rtpengine';
import { calleeAudio, callerAudio } from '../test/support/sdp-fixtures';
import type { ManagedProcess } from '../test/support/process';
import {
  COMMANDS,
  LATENCIES,
  capacityOf,
  fmt,
  lossFree,
  medianSummary,
  percentile,
  type CommandName,
  type LatencyName,
  type RelayName,
  type StepResult,
} from './control-summary';

/** bench/out/bench/control.js when compiled, bench/control.ts when type-checked: the repo root is found by package.json. */
function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'ngrelay') return dir;
    } catch {
      // not here: go up
    }
    dir = path.dirname(dir);
  }
  throw new Error('repository root (package.json of ngrelay) not found above ' + __dirname);
}

interface Args {
  rates: number[];
  stepSeconds: number;
  relays: RelayName[];
  deadlineMs: number;
  /** Seconds without load after the last step before RSS is read again (does memory come back?). */
  idleSeconds: number;
  /** Warm-up cycles per relay (not reported), at WARMUP_RATE. */
  warmupCycles: number;
  /**
   * Rounds per rate: each round loads every relay once, the order reversed every other round. One step's
   * p99 moves by ±50 % from run to run on a shared 2-vCPU VM (steal, a busy sibling core); the medians over
   * rounds are what the summary compares.
   */
  repeat: number;
}

/** Warm-up rate: below every relay's capacity, so the warm-up itself never overloads. */
const WARMUP_RATE = 500;

function parseArgs(argv: string[]): Args {
  const args: Args = { rates: [200, 500, 1000, 1500, 2000, 3000], stepSeconds: 3, relays: ['ngrelay', 'rtpengine'], deadlineMs: 2000, idleSeconds: 10, warmupCycles: 3000, repeat: 1 };
  for (const a of argv) {
    const [key, value = ''] = a.split('=', 2);
    if (key === '--rates') args.rates = value.split(',').map(Number).filter((n) => n > 0).slice(0, 12);
    else if (key === '--step-seconds') args.stepSeconds = Math.min(120, Math.max(1, Number(value)));
    else if (key === '--relays') args.relays = value.split(',').filter((r): r is RelayName => r === 'ngrelay' || r === 'rtpengine');
    else if (key === '--deadline-ms') args.deadlineMs = Math.min(5000, Math.max(100, Number(value)));
    else if (key === '--warmup-cycles') args.warmupCycles = Math.min(10_000, Math.max(0, Math.round(Number(value))));
    else if (key === '--idle-seconds') args.idleSeconds = Math.min(60, Math.max(0, Number(value)));
    else if (key === '--repeat') args.repeat = Math.min(9, Math.max(1, Math.round(Number(value))));
    else throw new Error(`unknown option ${a}`);
  }
  return args;
}

interface ProcSample {
  cpuTicks: number;
  rssKb: number;
}

const CLOCK_TICKS = 100;

function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuTicks = Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14, 15)
  const rss = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuTicks, rssKb: rss ? Number(rss[1]) : 0 };
}

/** Peak RSS (VmHWM) and RSS now, in MB. */
function memoryMb(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { peak: kb('VmHWM') / 1024, now: kb('VmRSS') / 1024 };
}

/** Datagrams the kernel dropped at a loopback UDP port (the relay's ng socket), from /proc/net/udp. */
function udpDrops(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[1]?.endsWith(`:${hexPort}`)) return Number(cols[12] ?? 0);
  }
  return 0;
}

interface Relay {
  name: RelayName;
  ngPort: number;
  proc: ManagedProcess;
  client: NgRawClient;
}

/** One offer+answer+delete; resolves with what happened (never rejects). */
async function cycle(
  client: NgRawClient,
  callId: string,
  deadlineMs: number,
  latencies: Record<CommandName, number[]>,
  failures: Map<string, number>,
): Promise<'ok' | 'lost' | 'shed' | 'failed'> {
  const bodies: Record<CommandName, Record<string, string | string[]>> = {
    offer: { command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(40000), supports: ['load limit'] },
    answer: { command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeAudio(40002), supports: ['load limit'] },
    delete: { command: 'delete', 'call-id': callId, 'from-tag': 'a', supports: ['load limit'] },
  };
  for (const name of COMMANDS) {
    const started = performance.now();
    let result: string | undefined;
    let reply: Awaited<ReturnType<NgRawClient['request']>>;
    try {
      reply = await client.request(bodies[name], { retransmitMs: 0, deadlineMs });
      result = textOf(reply.dict, 'result');
    } catch {
      return 'lost';
    }
    latencies[name].push(performance.now() - started);
    if (result === 'load limit') return 'shed';
    if (result !== 'ok') {
      const why = `${name}: ${result ?? '?'} ${textOf(reply.dict, 'error-reason') ?? ''}`.trim();
      failures.set(why, (failures.get(why) ?? 0) + 1);
      return 'failed';
    }
  }
  return 'ok';
}

async function runStep(relay: Relay, rate: number, args: Args, stepIndex: number): Promise<StepResult> {
  const latencies: Record<CommandName, number[]> = { offer: [], answer: [], delete: [] };
  const counts = { ok: 0, lost: 0, shed: 0, failed: 0 };
  const failures = new Map<string, number>();
  const before = sampleProc(relay.proc.pid);
  const dropsBefore = udpDrops(relay.ngPort);
  const clientDropsBefore = udpDrops(relay.client.localPort());
  const started = performance.now();
  const total = Math.round(rate * args.stepSeconds);
  const pending: Promise<void>[] = [];
  let launched = 0;
  let lastReplyMs = started;
  // Open loop: launch on a 5 ms tick as many cycles as the schedule says are due, whatever the replies do.
  await new Promise<void>((resolve) => {
    const tick = setInterval(() => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (launched < due) {
        const callId = `bench-${relay.name}-${stepIndex}-${launched}`;
        launched++;
        pending.push(
          cycle(relay.client, callId, args.deadlineMs, latencies, failures).then((outcome) => {
            counts[outcome]++;
            lastReplyMs = performance.now();
          }),
        );
      }
      if (launched >= total) {
        clearInterval(tick);
        resolve();
      }
    }, 5);
  });
  await Promise.all(pending);
  const seconds = (lastReplyMs - started) / 1000;
  const after = sampleProc(relay.proc.pid);
  const latencyMs = {} as Record<LatencyName, { p50: number; p99: number }>;
  for (const name of LATENCIES) {
    const sorted = (name === 'all' ? COMMANDS.flatMap((c) => latencies[c]) : latencies[name]).sort((a, b) => a - b);
    latencyMs[name] = { p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
  }
  return {
    relay: relay.name,
    rate,
    offered: total,
    completed: counts.ok,
    lost: counts.lost,
    shed: counts.shed,
    failed: counts.failed,
    failures,
    kernelDrops: udpDrops(relay.ngPort) - dropsBefore,
    clientDrops: udpDrops(relay.client.localPort()) - clientDropsBefore,
    seconds,
    latencyMs,
    cpuMsPerCycle: (((after.cpuTicks - before.cpuTicks) / CLOCK_TICKS) * 1000) / Math.max(1, total),
    rssMb: after.rssKb / 1024,
  };
}

/** Space-separated arguments (of a shebang line or an environment variable) as a list. */
const splitArgs = (value: string | undefined): string[] => (value ?? '').split(' ').filter((a) => a.length > 0);

/** The node flags of bin/ngrelay's `#!/usr/bin/env -S node ...` line: the relay runs as installed. */
function shebangNodeArgs(root: string): string[] {
  const first = readFileSync(path.join(root, 'bin', 'ngrelay'), 'utf8').split('\n', 1)[0] ?? '';
  const m = /^#!\S*env -S node((?: \S+)*)\s*$/.exec(first);
  return m ? splitArgs(m[1]) : [];
}

function nodeArgs(root: string): string[] {
  return [...shebangNodeArgs(root), ...splitArgs(process.env['BENCH_NGRELAY_NODE_ARGS'])];
}

async function startRelay(name: RelayName, options: RelayOptions, root: string): Promise<Relay> {
  const args = relayArgs(options);
  const spec =
    name === 'ngrelay'
      ? {
          name,
          command: process.execPath,
          // e.g. BENCH_NGRELAY_NODE_ARGS=--cpu-prof to profile the relay (not the load generator).
          // BENCH_NGRELAY_ARGS: extra relay options, e.g. --ng-cache-max-entries=0 to measure without the reply cache.
          args: [...nodeArgs(root), path.join(root, 'bin', 'ngrelay'), ...args, '--log-level=4', ...splitArgs(process.env['BENCH_NGRELAY_ARGS'])],
          cwd: root,
        }
      : { name, command: RTPENGINE_BIN, args: [...args, '--log-level=4'] };
  if (name === 'rtpengine') await ensureRtpengineInstalled();
  const proc = await startNgProcess(spec, { host: LOOPBACK, port: options.ngPort, deadlineMs: 15_000 });
  const client = await NgRawClient.open(options.ngPort, LOOPBACK, 4 << 20);
  return { name, ngPort: options.ngPort, proc, client };
}

interface IdleMemory {
  relay: RelayName;
  peakMb: number;
  afterIdleMb: number;
}

function report(results: StepResult[], args: Args, idle: IdleMemory[]): string {
  const lines = [
    `Control-plane benchmark, ${new Date().toISOString()}, ${args.stepSeconds} s steps${args.repeat > 1 ? ` (${args.repeat} rounds per rate)` : ''} after ${args.warmupCycles} warm-up cycles at ${WARMUP_RATE}/s, deadline ${args.deadlineMs} ms, no retransmits, load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    '',
    '| relay | rate/s | completed | lost | shed | failed | kernel drops relay/client | offer p50/p99 ms | answer p50/p99 ms | delete p50/p99 ms | CPU ms/cycle | RSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const lat = (c: CommandName): string => `${fmt(r.latencyMs[c].p50, 2)} / ${fmt(r.latencyMs[c].p99, 2)}`;
    lines.push(
      `| ${r.relay} | ${r.rate} | ${r.completed}/${r.offered} (${fmt(r.completed / r.seconds, 0)}/s) | ${r.lost} | ${r.shed} | ${r.failed} | ${r.kernelDrops}/${r.clientDrops} | ${lat('offer')} | ${lat('answer')} | ${lat('delete')} | ${fmt(r.cpuMsPerCycle, 3)} | ${fmt(r.rssMb, 0)} |`,
    );
  }
  for (const r of results) {
    for (const [why, n] of r.failures) lines.push(`failed ${r.relay} ${r.rate}/s: ${n} × ${why}`);
  }
  lines.push('');
  const capacity: Partial<Record<RelayName, number>> = {};
  for (const relay of args.relays) {
    capacity[relay] = capacityOf(results, relay);
    lines.push(`capacity (highest loss-free step) ${relay}: ${capacity[relay]} cycles/s`);
  }
  if (capacity.ngrelay !== undefined && capacity.rtpengine) {
    lines.push(`ngrelay / rtpengine: ${fmt(capacity.ngrelay / capacity.rtpengine, 2)}×`);
  }
  if (args.repeat > 1) lines.push('', ...medianSummary(results, args.rates, args.relays, args.repeat));
  for (const m of idle) {
    lines.push(`RSS ${m.relay}: peak ${fmt(m.peakMb, 0)} MB, after ${args.idleSeconds} s idle ${fmt(m.afterIdleMb, 0)} MB`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const base = 20_000 + 2 * Math.floor(Math.random() * 5_000);
  const relays: Relay[] = [];
  try {
    for (const [i, name] of args.relays.entries()) {
      // Above both media ranges (20000..49999).
      // delete-delay 0: a deleted call gives its ports back at once in both relays. A port another run holds
      // (tests elsewhere on the machine) fails the start before anything is spawned: then another one is tried.
      for (let attempt = 1; ; attempt++) {
        const ngPort = 50_000 + Math.floor(Math.random() * 10_000);
        const options: RelayOptions = { ngPort, portMin: base + i * 10_000, portMax: base + i * 10_000 + 9_999, deleteDelay: 0 };
        try {
          relays.push(await startRelay(name, options, root));
          break;
        } catch (err) {
          if (attempt >= 5 || !String(err).includes('already in use')) throw err;
        }
      }
    }
    // Warm-up (not reported): V8 compiles ngrelay's hot paths within its first ~2,000-3,000 cycles (CPU per
    // cycle at 200/s fell from 1.9 to 0.8 ms over the first four 3 s steps); measured steps show the relay as it
    // runs for days. rtpengine gets the same warm-up.
    if (args.warmupCycles > 0) {
      for (const relay of relays) await runStep(relay, WARMUP_RATE, { ...args, stepSeconds: args.warmupCycles / WARMUP_RATE }, 999);
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    const results: StepResult[] = [];
    const failedSteps = new Map<RelayName, number>();
    let stepIndex = 0;
    for (const rate of args.rates) {
      const failedRounds = new Set<RelayName>();
      for (let round = 0; round < args.repeat; round++) {
        // Reversed every other round: neither relay always runs right after the other's load.
        const order = round % 2 === 0 ? relays : [...relays].reverse();
        for (const relay of order) {
          // Two lossy rates in a row: this relay is past capacity; higher rates say nothing more.
          if ((failedSteps.get(relay.name) ?? 0) >= 2) continue;
          const r = await runStep(relay, rate, args, stepIndex++);
          results.push(r);
          if (!lossFree(r)) failedRounds.add(relay.name);
          process.stderr.write(`${relay.name} ${rate}/s: ${r.completed}/${r.offered} lost ${r.lost} shed ${r.shed} p99 ${fmt(r.latencyMs.all.p99, 2)} ms\n`);
          await new Promise((resolve) => setTimeout(resolve, 2000)); // let timers and late replies settle
        }
      }
      for (const relay of relays) {
        if ((failedSteps.get(relay.name) ?? 0) >= 2) continue;
        failedSteps.set(relay.name, failedRounds.has(relay.name) ? (failedSteps.get(relay.name) ?? 0) + 1 : 0);
      }
    }
    // Does memory come back once the load is gone? Both relays idle at once, then RSS is read.
    await new Promise((resolve) => setTimeout(resolve, args.idleSeconds * 1000));
    const idle = relays.map((relay) => {
      const m = memoryMb(relay.proc.pid);
      return { relay: relay.name, peakMb: m.peak, afterIdleMb: m.now };
    });
    console.log(report(results, args, idle));
  } finally {
    for (const relay of relays) {
      relay.client.close();
      await relay.proc.stop();
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
