/**
 * Drives bench/bin/loadgen (the C generator + sink): writes its streams file, runs it pinned and bounded
 * in packets and seconds, and parses its JSON line. Also the generator's ceiling (generator -> sink, no
 * relay), which bounds every step.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CallLegs, DirectionKeys, newSdesKey, phoneOf, PhonePlan } from './calls';
import { LOADGEN } from './paths';
import { track } from './processes';
import { inNetns } from './topology';
import type { NetRxCounts, SoftirqAccounting } from './softirq';
import type { LoadgenResult } from './types';

export class LoadgenError extends Error {
  override readonly name = 'LoadgenError';
}

/** One line per stream; SRTP streams add "TX_SUITE TX_KEYHEX RX_SUITE RX_KEYHEX" ('-' = plain). Returns the stream count. */
export function writeStreams(file: string, calls: CallLegs[]): number {
  const keys = (dir: DirectionKeys | undefined): string => {
    if (!dir) return '';
    const one = (k: DirectionKeys['tx']): string => (k ? `${k.suite} ${k.key.toString('hex')}` : '- -');
    return ` ${one(dir.tx)} ${one(dir.rx)}`;
  };
  const lines: string[] = [];
  for (const c of calls) {
    lines.push(`${c.a.ip} ${c.a.port} ${c.toRelayFromA.ip} ${c.toRelayFromA.port}${keys(c.srtpAtoB)}`); // A -> relay -> B
    lines.push(`${c.b.ip} ${c.b.port} ${c.toRelayFromB.ip} ${c.toRelayFromB.port}${keys(c.srtpBtoA)}`); // B -> relay -> A
  }
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return lines.length;
}

export interface LoadgenRun {
  streamsFile: string;
  /** pps; 0 = as fast as the generator goes. */
  rate: number;
  seconds: number;
  /** Core list for taskset. */
  cores: string;
  /** The relay's PID on this host: loadgen reads its CPU time over the run. */
  watchPid?: number;
  perStream?: boolean;
  /** One UDP_SEGMENT message per run of a stream's packets (the unpaced `max` step). */
  gso?: boolean;
  /** SRTP: seq/ROC carried from one run to the next (relays keep a replay window). */
  stateFile?: string;
  /** SRTP: the sink unprotects every Nth packet per stream. */
  checkEvery?: number;
  /** Bound on the unpaced packet count (SRTP packets are protected up front, so the count costs time). */
  maxCount?: number;
  /** Addresses besides 127.0.0.0/8 loadgen may bind to or send to (a relay the tool did not start). */
  allowAddrs?: string[];
  /** Called with loadgen's PID once spawned (taskset execs it: the same PID), for the softirq meter. */
  onSpawn?: (pid: number) => void;
  /** The network namespace the phones are in (--topology=veth); absent/null = this host's. */
  netns?: string | null;
}

/** The non-loopback addresses of a set of calls (phones and relay media addresses), for --allow-addr. */
export function nonLoopbackAddresses(calls: CallLegs[]): string[] {
  const all = new Set(calls.flatMap((c) => [c.a.ip, c.b.ip, c.toRelayFromA.ip, c.toRelayFromB.ip]));
  return [...all].filter((ip) => !ip.startsWith('127.'));
}

/** Runs loadgen once. Bounded: `--count` and `--seconds`, plus a SIGKILL guard 45 s later. */
export function runLoadgen(run: LoadgenRun): Promise<LoadgenResult> {
  const unpaced = (run.gso ? 5e6 : 2e6) * run.seconds;
  const count = Math.min(run.maxCount ?? Infinity, run.rate > 0 ? Math.ceil(run.rate * run.seconds) : Math.ceil(unpaced));
  const args = ['-c', run.cores, LOADGEN, '--streams-file', run.streamsFile, '--rate', String(run.rate), '--count', String(count)];
  args.push('--seconds', String(run.seconds), '--drain-ms', '250');
  if (run.watchPid) args.push('--watch-pid', String(run.watchPid));
  if (run.perStream) args.push('--per-stream');
  if (run.gso) args.push('--gso');
  if (run.stateFile) args.push('--state-file', run.stateFile, '--srtp-check-every', String(run.checkEvery ?? 1));
  for (const ip of run.allowAddrs ?? []) args.push('--allow-addr', ip);
  return new Promise((resolve, reject) => {
    const command = inNetns(run.netns ?? null, 'taskset', args);
    const child = track(spawn(command.cmd, command.args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    if (child.pid !== undefined) run.onSpawn?.(child.pid);
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    // Belt and braces: loadgen stops itself after `seconds` + at most 5 s of draining (+ SRTP pre-protect).
    const guard = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }, (run.seconds + 45) * 1000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      if (code !== 0) return reject(new LoadgenError(`loadgen exited ${code}: ${err.trim()}`));
      try {
        resolve(JSON.parse(out) as LoadgenResult);
      } catch {
        reject(new LoadgenError(`loadgen output not JSON: ${out.slice(0, 200)} ${err}`));
      }
    });
  });
}

/** Generator -> sink directly over the same phone sockets, 100 calls' worth of streams. */
function ceilingCalls(plan: PhonePlan, srtp: boolean): CallLegs[] {
  const calls = 100;
  const list: CallLegs[] = [];
  for (let i = 0; i < calls; i++) {
    const a = phoneOf(plan, 'A', i, calls);
    const b = phoneOf(plan, 'B', i, calls);
    const call: CallLegs = { a, b, toRelayFromA: b, toRelayFromB: a };
    if (srtp) {
      const k1 = newSdesKey(1, 'AES_CM_128_HMAC_SHA1_80');
      const k2 = newSdesKey(1, 'AES_CM_128_HMAC_SHA1_80');
      call.srtpAtoB = { tx: k1, rx: k1 };
      call.srtpBtoA = { tx: k2, rx: k2 };
    }
    list.push(call);
  }
  return list;
}

export interface Ceiling {
  plain: LoadgenResult;
  gso: LoadgenResult;
}

/** The ceiling runs with the NET_RX softirq they cost (the generator-only baseline); netrx null = not metered. */
export interface MeteredCeiling extends Ceiling {
  netrx: { plain: NetRxCounts | null; gso: NetRxCounts | null };
}

export async function measureCeiling(outDir: string, plan: PhonePlan, cores: string, seconds: number, softirq: SoftirqAccounting, netns: string | null = null): Promise<MeteredCeiling> {
  const streamsFile = path.join(outDir, 'ceiling-streams.txt');
  const calls = ceilingCalls(plan, false);
  writeStreams(streamsFile, calls);
  // Phones on --local addresses that are not loopback (a relay on a lab network): still this host's own.
  const allowAddrs = nonLoopbackAddresses(calls);
  const plain = await softirq.around(null, (onSpawn) => runLoadgen({ streamsFile, rate: 0, seconds, cores, onSpawn, allowAddrs, netns }));
  const gso = await softirq.around(null, (onSpawn) => runLoadgen({ streamsFile, rate: 0, seconds, cores, gso: true, onSpawn, allowAddrs, netns }));
  return { plain: plain.value, gso: gso.value, netrx: { plain: plain.netrx, gso: gso.netrx } };
}

/** The ceiling with SRTP the way the SRTP -> SRTP rows load the generator: every packet SRTP both ways. */
export async function measureSrtpCeiling(outDir: string, plan: PhonePlan, cores: string, seconds: number, checkEvery: number, maxPps: number, netns: string | null = null): Promise<Ceiling> {
  const streamsFile = path.join(outDir, 'ceiling-srtp-streams.txt');
  writeStreams(streamsFile, ceilingCalls(plan, true));
  const stateFile = path.join(outDir, 'ceiling-srtp.state');
  fs.rmSync(stateFile, { force: true });
  const common = { streamsFile, rate: 0, seconds, cores, stateFile, checkEvery, maxCount: maxPps * seconds, netns, allowAddrs: nonLoopbackAddresses(ceilingCalls(plan, false)) };
  try {
    const plain = await runLoadgen(common);
    const gso = await runLoadgen({ ...common, gso: true });
    return { plain, gso };
  } finally {
    fs.rmSync(stateFile, { force: true });
  }
}
