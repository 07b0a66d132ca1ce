/**
 * The forwarders the benchmark compares, as one table: each entry says which relay it starts (or that it
 * talks to one already running), with which extra arguments, and how its calls are set up. A new row
 * (e.g. ngrelay with its kernel path, `ngrelay-kernel`) is one more entry in FORWARDERS.
 */
import fs from 'node:fs';
import path from 'node:path';
import { NgRawClient } from '../../test/support/ng-client';
import { CallLegs, callIdOf, deleteCalls, phoneOf, PhonePlan, queryCall, Reply, setupCalls, SrtpPlan, waitForPing } from './calls';
import { MINFWD, ROOT } from './paths';
import { isRunning, logTail, sleep, spawnPinned, stopChild } from './processes';
import type { BlockInfo } from './types';

export type RelayKind = 'ngrelay' | 'rtpengine' | 'minfwd';

export interface ForwarderDef {
  kind: RelayKind;
  /** Arguments added to the relay's command line (after the common ones). */
  extraArgs?: string[];
  /** Every offer carries `record-call: yes` (ngrelay started with a --recording-dir). */
  record?: boolean;
  srtp?: SrtpPlan;
  /** Runs at the --extra-calls counts and is reported beside its plain `base` row. */
  extra?: { base: string; what: string };
  /**
   * ngrelay only: its kernel fast path on (`--table=0`, README "Kernel fast path"); every other ngrelay row
   * runs `--table=-1` (userspace). A relay that cannot turn it on is "not available", never measured as it.
   */
  kernelPath?: boolean;
}

/** Every forwarder the tool can start; `--forwarders=` picks from these names. */
export const FORWARDERS: Readonly<Record<string, ForwarderDef>> = {
  ngrelay: { kind: 'ngrelay' },
  'ngrelay-kernel': { kind: 'ngrelay', kernelPath: true },
  rtpengine: { kind: 'rtpengine' },
  minfwd: { kind: 'minfwd' },
  'ngrelay-rec': { kind: 'ngrelay', record: true, extra: { base: 'ngrelay', what: 'ngrelay + pcap recording of every call' } },
  ...srtpRows('ngrelay'),
  ...srtpRows('rtpengine'),
};

function srtpRows(kind: 'ngrelay' | 'rtpengine'): Record<string, ForwarderDef> {
  const row = (srtp: SrtpPlan): ForwarderDef => ({
    kind,
    srtp,
    extra: { base: kind, what: `${kind} ${srtp.kind === 'srtp-rtp' ? 'SRTP → RTP' : 'SRTP → SRTP (re-encrypt)'} (${srtp.suite})` },
  });
  return {
    [`${kind}-srtp-rtp`]: row({ kind: 'srtp-rtp', suite: 'AES_CM_128_HMAC_SHA1_80' }),
    [`${kind}-srtp-srtp`]: row({ kind: 'srtp-srtp', suite: 'AES_CM_128_HMAC_SHA1_80' }),
    [`${kind}-srtp-rtp-gcm`]: row({ kind: 'srtp-rtp', suite: 'AEAD_AES_128_GCM' }),
  };
}

/** What `npm run bench` runs when no --forwarders is given (the GCM rows are opt-in). */
export const DEFAULT_FORWARDERS = ['ngrelay', 'ngrelay-kernel', 'rtpengine', 'minfwd', 'ngrelay-rec', 'ngrelay-srtp-rtp', 'rtpengine-srtp-rtp', 'ngrelay-srtp-srtp', 'rtpengine-srtp-srtp'];

export class ForwarderStartError extends Error {
  override readonly name = 'ForwarderStartError';
}

/** A relay ready to be loaded: its calls are set up. */
export interface RelayHandle {
  /** The relay's PID on this host (CPU from /proc), or null. */
  pid: number | null;
  /** Its Prometheus /metrics URL (CPU from there when there is no PID), or null. */
  metricsUrl: string | null;
  calls: CallLegs[];
  /** ng address (relays driven over ng), for query. */
  ng: { host: string; port: number } | null;
  callIds: string[];
  alive(): boolean;
  /** Stops what the tool started (or deletes its calls on a relay it did not start). */
  stop(): Promise<void>;
  /** Extra figures after the block (recording counters). */
  afterRun?: () => Promise<BlockInfo['extra']>;
  /** A line for the report once the warm-up has run (the kernel row: how many streams the kernel forwards). */
  afterWarmup?: () => Promise<string>;
}

/** Where relays the tool starts listen and which cores they get. */
export interface StartContext {
  calls: number;
  threads: number;
  cores: string;
  logFile: string;
  outDir: string;
  plan: PhonePlan;
  /** Row name (also the calls' tag base). */
  label: string;
  /** The relay's media address (--interface); RELAY_IP unless --topology says otherwise (topology.ts). */
  relayIp?: string;
}

// The loopback topology's relay address (topology.ts has the veth one).
// 1000 calls need 4000 relay ports (RTP + RTCP, both sides): the range holds 8000, clear of the ranges
// the test suites use (30000-30999, 36000-37999, 39000-39099, 44000-44099).
export const RELAY_IP = '127.0.0.1';
const PORT_MIN = 50000;
const PORT_MAX = 57999;
const NGRELAY_NG_PORT = 22404;
const RTPENGINE_NG_PORT = 22304;
// minfwd's SO_RCVBUF per socket: ngrelay's default --socket-receive-buffer (4 MB).
const MINFWD_RCVBUF = 4 * 1024 * 1024;

/** The command line of each relay the tool starts (also printed in the report's setup lines). */
export function relayCommand(def: ForwarderDef, threads: number, recordingDir: string | null, relayIp = RELAY_IP): { cmd: string; args: string[] } {
  const common = [`--interface=${relayIp}`, `--port-min=${PORT_MIN}`, `--port-max=${PORT_MAX}`, `--num-threads=${threads}`, '--foreground', '--log-stderr'];
  if (def.kind === 'ngrelay') {
    // NGRELAY_ENTRY: another entry script (default bin/ngrelay, which loads dist/cli.js).
    const entry = process.env.NGRELAY_ENTRY ?? 'bin/ngrelay';
    // --log-level=4 (warnings): the kernel row's "fast path unavailable" warning is one of them.
    const args = [entry, '--config-file=none', `--listen-ng=127.0.0.1:${NGRELAY_NG_PORT}`, ...common, '--log-level=4', `--table=${def.kernelPath ? 0 : -1}`];
    if (recordingDir) args.push(`--recording-dir=${recordingDir}`);
    return { cmd: process.execPath, args: [...args, ...(def.extraArgs ?? [])] };
  }
  if (def.kind === 'rtpengine') {
    return { cmd: 'rtpengine', args: ['--config-file=none', '--table=-1', `--listen-ng=127.0.0.1:${RTPENGINE_NG_PORT}`, ...common, ...(def.extraArgs ?? [])] };
  }
  return { cmd: MINFWD, args: ['--bind', relayIp, '--port-min', String(PORT_MIN), '--port-max', String(PORT_MAX), '--rcvbuf', String(MINFWD_RCVBUF)] };
}

export async function startForwarder(def: ForwarderDef, ctx: StartContext): Promise<RelayHandle> {
  if (def.kind === 'minfwd') return startMinfwd(ctx);
  if (def.kind === 'ngrelay' && !process.env.NGRELAY_ENTRY && !fs.existsSync(path.join(ROOT, 'dist', 'cli.js')))
    throw new ForwarderStartError('dist/cli.js missing (run `npm run build:ts`)');
  const recordingDir = def.record ? fs.mkdtempSync(path.join(ctx.outDir, 'rec-')) : null;
  const removeRecordings = (): void => {
    if (recordingDir) fs.rmSync(recordingDir, { recursive: true, force: true });
  };
  const { cmd, args } = relayCommand(def, ctx.threads, recordingDir, ctx.relayIp);
  const child = spawnPinned(ctx.cores, cmd, args, ctx.logFile, { cwd: ROOT });
  const ngPort = def.kind === 'ngrelay' ? NGRELAY_NG_PORT : RTPENGINE_NG_PORT;
  const stop = async (): Promise<void> => {
    await stopChild(child, ctx.label);
    removeRecordings();
  };
  const ng = await NgRawClient.open(ngPort);
  try {
    const notReady = await waitForPing(ng, 8000, () => isRunning(child));
    if (notReady) throw new ForwarderStartError(`${notReady === 'exited' ? `exited (code ${child.exitCode})` : notReady}; log: ${logTail(ctx.logFile)}`);
    if (def.kernelPath) {
      // The warning is logged just after ng starts listening: give it a moment to reach the log.
      await sleep(300);
      const refused = kernelPathRefusal(fs.readFileSync(ctx.logFile, 'utf8'));
      if (refused !== null) throw new ForwarderStartError(`kernel fast path not on: ${refused}`);
    }
    const tagBase = `${ctx.label.replace(/\W+/g, '_')}-${ctx.calls}-${process.pid}`;
    const calls = await setupCalls(ng, ctx.calls, { tagBase, plan: ctx.plan, record: def.record, srtp: def.srtp });
    const callIds = calls.map((_, i) => callIdOf(tagBase, i));
    const handle: RelayHandle = {
      pid: child.pid ?? null,
      metricsUrl: null,
      calls,
      ng: { host: '127.0.0.1', port: ngPort },
      callIds,
      alive: () => isRunning(child),
      stop,
    };
    if (def.record) handle.afterRun = () => recordingCounters(ngPort, callIds);
    if (def.kernelPath) handle.afterWarmup = () => kernelizedCount(ngPort, callIds, ctx.label);
    return handle;
  } catch (err) {
    await stop();
    throw err;
  } finally {
    ng.close();
  }
}

async function startMinfwd(ctx: StartContext): Promise<RelayHandle> {
  // No signalling: minfwd takes free even ports from the range itself and prints them.
  const peers = Array.from({ length: ctx.calls }, (_, i) => ({ a: phoneOf(ctx.plan, 'A', i, ctx.calls), b: phoneOf(ctx.plan, 'B', i, ctx.calls) }));
  const pairsFile = path.join(ctx.outDir, `minfwd-pairs-${ctx.calls}.txt`);
  fs.writeFileSync(pairsFile, `${peers.map((p) => `${p.a.ip} ${p.a.port} ${p.b.ip} ${p.b.port}`).join('\n')}\n`);
  const relayIp = ctx.relayIp ?? RELAY_IP;
  const { cmd, args } = relayCommand(FORWARDERS.minfwd as ForwarderDef, 1, null, relayIp);
  // Phones off loopback (--topology=veth): named one by one, as loadgen takes them.
  const allow = [...new Set(peers.flatMap((p) => [p.a.ip, p.b.ip]))].filter((ip) => !ip.startsWith('127.')).flatMap((ip) => ['--allow-addr', ip]);
  const child = spawnPinned(ctx.cores, cmd, ['--pairs-file', pairsFile, ...args, ...allow, '--max-seconds', '900'], ctx.logFile, { cwd: ROOT });
  const readLog = (): string => fs.readFileSync(ctx.logFile, 'utf8');
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && !/^ready/m.test(readLog())) {
    if (!isRunning(child)) throw new ForwarderStartError(`minfwd exited: ${logTail(ctx.logFile)}`);
    await sleep(50);
  }
  const fail = async (why: string): Promise<never> => {
    await stopChild(child, 'minfwd');
    throw new ForwarderStartError(why);
  };
  if (!/^ready/m.test(readLog())) return fail('minfwd did not become ready');
  const found = new Map<number, { toRelayFromA: { ip: string; port: number }; toRelayFromB: { ip: string; port: number } }>();
  for (const m of readLog().matchAll(/^pair (\d+) (\d+) (\d+)$/gm))
    found.set(Number(m[1]), { toRelayFromA: { ip: relayIp, port: Number(m[2]) }, toRelayFromB: { ip: relayIp, port: Number(m[3]) } });
  const calls: CallLegs[] = [];
  for (const [i, p] of peers.entries()) {
    const ports = found.get(i);
    if (!ports) return fail('minfwd did not report every pair');
    calls.push({ ...p, ...ports });
  }
  return { pid: child.pid ?? null, metricsUrl: null, calls, ng: null, callIds: [], alive: () => isRunning(child), stop: () => stopChild(child, 'minfwd') };
}

/** A relay the tool did not start: calls set up over its ng address; CPU from its PID or /metrics. */
export interface ExternalRelay {
  host: string;
  port: number;
  pid: number | null;
  metricsUrl: string | null;
}

/** Loopback relays are reached from loopback; others from whatever address routes there. */
const ngBind = (host: string): string | undefined => (host.startsWith('127.') || host === '::1' ? undefined : host.includes(':') ? '::' : '0.0.0.0');

export async function attachExternal(relay: ExternalRelay, ctx: StartContext): Promise<RelayHandle> {
  const ng = await NgRawClient.open(relay.port, relay.host, undefined, ngBind(relay.host));
  const pidAlive = (): boolean => {
    if (relay.pid === null) return true;
    try {
      process.kill(relay.pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  try {
    const notReady = await waitForPing(ng, 10000, pidAlive);
    if (notReady) throw new ForwarderStartError(`relay at ${relay.host}:${relay.port}: ${notReady}`);
    const tagBase = `ext-${ctx.calls}-${process.pid}-${Date.now()}`;
    const calls = await setupCalls(ng, ctx.calls, { tagBase, plan: ctx.plan });
    return {
      pid: relay.pid,
      metricsUrl: relay.metricsUrl,
      calls,
      ng: { host: relay.host, port: relay.port },
      callIds: calls.map((_, i) => callIdOf(tagBase, i)),
      alive: pidAlive,
      stop: async () => {
        const again = await NgRawClient.open(relay.port, relay.host, undefined, ngBind(relay.host));
        try {
          await deleteCalls(again, tagBase, ctx.calls);
        } finally {
          again.close();
        }
      },
    };
  } finally {
    ng.close();
  }
}

/** Recording counters summed over every call (ng query), shown next to the ngrelay-rec rows. */
async function recordingCounters(ngPort: number, callIds: string[]): Promise<BlockInfo['extra']> {
  const ng = await NgRawClient.open(ngPort);
  let written = 0;
  let dropped = 0;
  let missing = 0;
  try {
    for (const callId of callIds) {
      const reply = await queryCall(ng, callId);
      const rec = reply?.recording;
      const counters = rec && typeof rec === 'object' && !Array.isArray(rec) ? rec : {};
      const w = counters['packets written'];
      const d = counters['packets dropped'];
      if (typeof w !== 'number') missing++;
      written += typeof w === 'number' ? w : 0;
      dropped += typeof d === 'number' ? d : 0;
    }
    return {
      text: `recording (${callIds.length} calls, whole block): packets written ${written}, dropped ${dropped}${missing ? `; ${missing} calls without recording counters` : ''}`,
      written,
      dropped,
    };
  } catch (err) {
    return { text: `recording query failed: ${(err as Error).message}` };
  } finally {
    ng.close();
  }
}

/** Relay-side errors of an SRTP block (auth/replay failures count as errors in both relays), summed over the calls. */
export async function relayErrorCount(ngAddress: { host: string; port: number }, callIds: string[]): Promise<number | string> {
  const ng = await NgRawClient.open(ngAddress.port, ngAddress.host);
  let errors = 0;
  const walk = (v: unknown, key: string): void => {
    if (Array.isArray(v)) v.forEach((x) => walk(x, key));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, k);
    else if (typeof v === 'number' && key === 'errors') errors += v;
  };
  try {
    for (const callId of callIds) {
      const reply = await queryCall(ng, callId);
      if (reply) walk(reply.tags ?? reply.totals, '');
    }
    return errors;
  } catch (err) {
    return `? (${(err as Error).message})`;
  } finally {
    ng.close();
  }
}

/**
 * Why an ngrelay started with `--table=0` forwards in userspace, from its log: its one "kernel fast path
 * unavailable: REASON; forwarding in userspace" warning (or an ngrelay too old for the fast path saying
 * --table has no effect); null when the log has neither.
 */
export function kernelPathRefusal(log: string): string | null {
  const m = /kernel fast path unavailable: (.*?); forwarding in userspace/.exec(log);
  if (m) return m[1] ?? '';
  const old = /"msg":"([^"]*--table[^"]*no effect[^"]*)"/.exec(log);
  return old ? (old[1] ?? '') : null;
}

/** RTP streams of one ng `query` reply, and those the kernel forwards (rtpengine's "kernelized" flag). */
export function kernelizedStreams(reply: Reply): { rtp: number; kernelized: number } {
  let rtp = 0;
  let kernelized = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const flags = (v as Record<string, unknown>).flags;
      if (Array.isArray(flags) && flags.includes('RTP')) {
        rtp++;
        if (flags.includes('kernelized')) kernelized++;
      }
      for (const x of Object.values(v)) if (x !== flags) walk(x);
    }
  };
  walk(reply);
  return { rtp, kernelized };
}

/** After the warm-up: how many RTP streams of (up to 20 of) the calls the kernel forwards. */
async function kernelizedCount(ngPort: number, callIds: string[], label: string): Promise<string> {
  const sample = callIds.slice(0, 20);
  const ng = await NgRawClient.open(ngPort);
  let rtp = 0;
  let kernelized = 0;
  try {
    for (const callId of sample) {
      const reply = await queryCall(ng, callId);
      if (!reply) continue;
      const n = kernelizedStreams(reply);
      rtp += n.rtp;
      kernelized += n.kernelized;
    }
    return `${label}: after the warm-up ${kernelized} of ${rtp} RTP streams (${sample.length} of ${callIds.length} calls queried) were in the kernel ("kernelized")`;
  } catch (err) {
    return `${label}: query after the warm-up failed (${(err as Error).message})`;
  } finally {
    ng.close();
  }
}
