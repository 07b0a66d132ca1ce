/**
 * One benchmark run: the generator ceiling, then for each (forwarder, threads, calls) block in turn a
 * fresh relay (or the external one), its calls set up over ng, a warm-up, the rate steps, and a
 * low-rate check that every stream still forwards after the overload. Never two relays at once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { PhonePlan } from './calls';
import { LoadgenRun, measureCeiling, measureSrtpCeiling, nonLoopbackAddresses, runLoadgen, writeStreams } from './loadgen';
import { attachExternal, FORWARDERS, ForwarderDef, relayCommand, relayErrorCount, RelayHandle, startForwarder } from './forwarders';
import { coresOf, GEN_CORE, machineBusyPct, machineInfo, relayCores, StealWatch } from './machine';
import type { BenchOptions } from './options';
import { medianIndex, RepeatFigures, repeatFigures } from './noise';
import { Progress } from './progress';
import { scrapeCpu } from './relay-cpu';
import { sleep } from './processes';
import { NetRxBaseline, netRxBaseline, NetRxCounts, SoftirqAccounting, softirqInTaskTime, softirqUsPerPacket } from './softirq';
import type { BenchResults, BlockInfo, CpuSourceKind, LoadgenResult, StepRow, StepSteal } from './types';
import { createVethTopology, loopbackTopology, type Topology } from './topology';

// A step "is loss-free" when it loses at most LOSS_FREE_PCT of the packets AND the relay kept up in real
// time (forwarded >= KEEP_UP x offered): big receive buffers can absorb a short overload step and forward
// it late without loss.
export const LOSS_FREE_PCT = 0.1;
export const KEEP_UP = 0.97;
export const isLossFree = (r: LoadgenResult): boolean => r.loss_pct <= LOSS_FREE_PCT && r.forwarded_pps >= KEEP_UP * r.offered_pps;
// SRTP rows: the sink unprotects 1 in SRTP_CHECK_EVERY packets per stream during the rate steps (all of
// them in the warm-up, the verify run and the after-overload check); the generator pre-protects what it
// sends, at most SRTP_MAX_COUNT_PPS x seconds packets for an unpaced step.
export const SRTP_CHECK_EVERY = 16;
const SRTP_MAX_COUNT_PPS = 900000;

/** One (forwarder, threads, calls) block of the run. */
interface BlockPlan {
  name: string;
  def: ForwarderDef | null;
  threads: number;
  calls: number;
  srtp: boolean;
}

function planBlocks(o: BenchOptions): BlockPlan[] {
  if (o.external) return o.calls.map((calls) => ({ name: o.external?.label ?? 'relay', def: null, threads: 1, calls, srtp: false }));
  const blocks: BlockPlan[] = [];
  const threadSuffix = (n: number): string => (o.threads.length === 1 && n === 1 ? '' : ` ×${n} thread${n > 1 ? 's' : ''}`);
  for (const base of o.forwarders) {
    const def = FORWARDERS[base] as ForwarderDef;
    // minfwd has one thread whatever --threads says.
    const threadCounts = def.kind === 'minfwd' ? [1] : o.threads;
    for (const threads of threadCounts) {
      const name = def.kind === 'minfwd' ? base : `${base}${threadSuffix(threads)}`;
      for (const calls of def.extra ? o.extraCalls : o.calls) blocks.push({ name, def, threads, calls, srtp: Boolean(def.srtp) });
    }
  }
  return blocks;
}

export function stepRates(o: BenchOptions, ceilingPps: number): number[] {
  if (o.rates) return o.rates;
  const rates: number[] = [];
  for (const r of [50000, 100000, 150000, 200000, 250000, 300000, 400000, 500000, 600000, 800000]) if (r < ceilingPps * 0.9) rates.push(r);
  while (rates.length > o.maxSteps - 1) rates.pop();
  rates.push(0); // last step: as fast as the generator goes
  return rates;
}

interface MeasuredRun {
  r: LoadgenResult;
  cpuSeconds: number | null;
  cpuSource: CpuSourceKind;
  netrx: NetRxCounts | null;
}

// A run during which the hypervisor took more than STEAL_LIMIT of a core it used (the generator's or the
// relay's) measured the host's other tenants, not the relay (seen in CI: rtpengine at 5× its CPU per packet
// and 70 % loss at 20k pps while 10–40 % of each core was stolen). It is run again after a pause, up to
// STEAL_RERUNS times; the report counts those runs and names any kept above the limit.
export const STEAL_LIMIT = 0.1;
const STEAL_RERUNS = 3;
const STEAL_PAUSE_MS = 1000;

async function unstolenRun(
  handle: RelayHandle,
  run: Omit<LoadgenRun, 'watchPid'>,
  ctx: RunContext,
  cores: number[],
  what: string,
): Promise<{ m: MeasuredRun; stolen: number; reruns: number }> {
  for (let reruns = 0; ; reruns++) {
    const watch = new StealWatch(cores);
    const m = await measuredRun(handle, run, ctx.softirq);
    const stolen = watch.stolen();
    if (stolen <= STEAL_LIMIT || reruns >= STEAL_RERUNS) return { m, stolen, reruns };
    ctx.progress.note(`${what}: the hypervisor took ${(100 * stolen).toFixed(0)} % of a core during the run (steal); measuring it again`);
    await sleep(STEAL_PAUSE_MS);
  }
}

/** One rate step: the relay's CPU by whichever means the tool has, and the NET_RX softirq around it (the same way for every row). */
async function measuredRun(handle: RelayHandle, run: Omit<LoadgenRun, 'watchPid'>, softirq: SoftirqAccounting): Promise<MeasuredRun> {
  const { value, netrx } = await softirq.around(handle.pid, (onSpawn) => relayCpuRun(handle, { ...run, onSpawn }));
  return { ...value, netrx };
}

/** CPU seconds of the relay over one loadgen run, by whichever means the tool has. */
/** Clock ticks (utime + stime) of a process so far; null when it is gone. */
function processTicks(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return null;
  }
}

const SETTLE_WINDOW_MS = 300;
const SETTLE_MAX_MS = 5000;

/** Waits until the process used at most one clock tick (10 ms) in a 300 ms window, for SETTLE_MAX_MS at most. */
async function settleCpu(pid: number): Promise<void> {
  const deadline = Date.now() + SETTLE_MAX_MS;
  let before = processTicks(pid);
  while (before !== null && Date.now() < deadline) {
    await sleep(SETTLE_WINDOW_MS);
    const now = processTicks(pid);
    if (now === null || now - before <= 1) return;
    before = now;
  }
}

async function relayCpuRun(handle: RelayHandle, run: Omit<LoadgenRun, 'watchPid'>): Promise<{ r: LoadgenResult; cpuSeconds: number | null; cpuSource: CpuSourceKind }> {
  if (handle.pid !== null) {
    const r = await runLoadgen({ ...run, watchPid: handle.pid });
    return { r, cpuSeconds: r.relay_cpu_s >= 0 ? r.relay_cpu_s : null, cpuSource: r.relay_cpu_s >= 0 ? 'proc' : 'none' };
  }
  if (handle.metricsUrl) {
    const before = await scrapeCpu(handle.metricsUrl).catch(() => null);
    const r = await runLoadgen(run);
    const after = before ? await scrapeCpu(handle.metricsUrl).catch(() => null) : null;
    if (before && after) return { r, cpuSeconds: Math.max(0, after.seconds - before.seconds), cpuSource: after.source };
    return { r, cpuSeconds: null, cpuSource: 'none' };
  }
  return { r: await runLoadgen(run), cpuSeconds: null, cpuSource: 'none' };
}

interface RunContext {
  o: BenchOptions;
  outDir: string;
  plan: PhonePlan;
  progress: Progress;
  rows: StepRow[];
  blocks: BlockInfo[];
  notes: string[];
  softirq: SoftirqAccounting;
  /** The generator-only NET_RX per packet; null when not measured (then the softirq columns say n/a). */
  netrxBaseline: NetRxBaseline | null;
  /** Softirq work in the relay's own context is in its process CPU already (no CONFIG_IRQ_TIME_ACCOUNTING). */
  softirqInRelayCpu: boolean;
  topology: Topology;
}

const fileSafe = (name: string): string => name.replace(/[^\w.-]+/g, '_');

/** Runs one block; returns a note for the report when it could not run fully, else null. */
async function runBlock(b: BlockPlan, rates: number[], ctx: RunContext): Promise<string | null> {
  const { o, outDir, progress } = ctx;
  const logFile = path.join(outDir, `${fileSafe(b.name)}-${b.calls}.log`);
  const { cores } = relayCores(b.threads);
  // The cores whose steal time decides whether a run is measured again: the generator's and the relay's.
  const stealCores = [...new Set([...coresOf(GEN_CORE), ...coresOf(cores)])];
  const started = Date.now();
  let handle: RelayHandle;
  try {
    handle =
      b.def === null && o.external
        ? await attachExternal(o.external, { calls: b.calls, threads: 1, cores, logFile, outDir, plan: ctx.plan, label: b.name })
        : await startForwarder(b.def as ForwarderDef, { calls: b.calls, threads: b.threads, cores, logFile, outDir, plan: ctx.plan, label: b.name, relayIp: ctx.topology.relayIp });
  } catch (err) {
    progress.step(`${b.name} @ ${b.calls} calls: not available`, rates.length * o.repeat);
    return `${b.name} @ ${b.calls} calls: not available (${(err as Error).message})`;
  }
  const streamsFile = path.join(outDir, `streams-${fileSafe(b.name)}-${b.calls}.txt`);
  // SRTP: sequence numbers/ROC continue across the block's loadgen runs (fresh state per block).
  const stateFile = b.srtp ? path.join(outDir, `state-${fileSafe(b.name)}-${b.calls}.txt`) : undefined;
  let stepsLeft = rates.length * o.repeat;
  try {
    const nStreams = writeStreams(streamsFile, handle.calls);
    if (stateFile) fs.rmSync(stateFile, { force: true });
    const srtpArgs = (checkEvery: number): Partial<LoadgenRun> => (stateFile ? { stateFile, checkEvery, maxCount: SRTP_MAX_COUNT_PPS * o.stepSeconds } : {});
    // Every loadgen run of the block: its streams, the generator's core, its namespace (--topology=veth), and
    // for a relay the tool did not start or the veth phones the non-loopback addresses (loadgen refuses any other).
    const common = { streamsFile, cores: GEN_CORE, allowAddrs: b.def === null || ctx.topology.netns !== null ? nonLoopbackAddresses(handle.calls) : [], netns: ctx.topology.netns };
    progress.note(`${b.name} pid ${handle.pid ?? 'n/a'}, ${b.calls} calls set up in ${Date.now() - started} ms`);
    // Warm-up: lets the relay learn/confirm both endpoints of every stream before measuring.
    const warm = await runLoadgen({ ...common, rate: Math.max(2000, nStreams * 10), seconds: o.quick ? 0.5 : 1, ...srtpArgs(1) });
    if (warm.received === 0) throw new Error(`nothing forwarded during warm-up (sent ${warm.sent})`);
    // A relay just started may still be busy with its own start-up after the warm-up (rtpengine's threads have
    // been seen spending 0.4 core-seconds per second for several seconds on a loaded machine): that CPU is
    // not forwarding's, so the steps wait until the relay is idle (bounded).
    if (b.def !== null && handle.pid !== null) await settleCpu(handle.pid);
    if (handle.afterWarmup) {
      const line = await handle.afterWarmup();
      progress.note(line);
      ctx.notes.push(line);
    }
    const block: BlockInfo = { name: b.name, calls: b.calls };
    if (b.def?.extra) {
      const suffix = b.name.slice(b.name.indexOf(' ') < 0 ? b.name.length : b.name.indexOf(' '));
      block.base = `${b.def.extra.base}${suffix}`;
      block.what = b.def.extra.what;
    }
    ctx.blocks.push(block);
    if (b.srtp && handle.ng) {
      // Correctness at a low rate: every packet unprotected at the sink, per-stream counts, and the
      // relay's own error counters before and after.
      const before = await relayErrorCount(handle.ng, handle.callIds);
      const v = await runLoadgen({ ...common, rate: Math.max(5000, nStreams * 25), seconds: o.quick ? 1 : 2, perStream: true, ...srtpArgs(1) });
      const after = await relayErrorCount(handle.ng, handle.callIds);
      const per = v.per_stream_received ?? [];
      const s = v.srtp ?? { tx_live: 0, rx_unchecked: 0, tx_errors: 0, rx_ok: 0, rx_auth_fail: 0, rx_replay_fail: 0, rx_other_fail: 0 };
      const during = typeof before === 'number' && typeof after === 'number' ? after - before : `${after}`;
      block.verify = {
        ok: v.silent_streams === 0 && v.loss_pct < 0.1 && s.rx_auth_fail + s.rx_replay_fail + s.rx_other_fail + s.tx_errors === 0 && s.rx_ok > 0 && during === 0,
        sent: v.sent,
        received: v.received,
        loss_pct: v.loss_pct,
        silent: v.silent_streams,
        minPerStream: Math.min(...per),
        maxPerStream: Math.max(...per),
        srtp: s,
        relayErrorsDuring: during,
      };
      progress.note(`${b.name} SRTP verify ${block.verify.ok ? 'ok' : 'FAILED'}: ${JSON.stringify(block.verify)}`);
    }
    let last: StepRow | null = null;
    let skipped: string | null = null;
    for (const rate of rates) {
      // --repeat: the step runs o.repeat times; the row is the median run, the others give its noise (noise.ts).
      const runs: MeasuredRun[] = [];
      const steal: StepSteal = { reruns: 0, worstKeptPct: 0 };
      for (let i = 0; i < o.repeat; i++) {
        await sleep(300);
        const run = { ...common, rate, seconds: o.stepSeconds, gso: rate === 0, ...srtpArgs(SRTP_CHECK_EVERY) };
        const u = await unstolenRun(handle, run, ctx, stealCores, `${b.name} @ ${b.calls} calls, ${rate ? `${rate} pps` : 'max'}`);
        runs.push(u.m);
        steal.reruns += u.reruns;
        steal.worstKeptPct = Math.max(steal.worstKeptPct, Math.round(1000 * u.stolen) / 10);
        stepsLeft--;
        if (!handle.alive()) throw new Error(`${b.name} died during the ${rate} pps step`);
      }
      const repeats: RepeatFigures[] = runs.map((x) => repeatFigures(x.r, x.cpuSeconds));
      const m = runs[medianIndex(repeats)] as MeasuredRun;
      const base = ctx.netrxBaseline === null ? null : rate === 0 ? ctx.netrxBaseline.gsoNsPerPacket : ctx.netrxBaseline.plainNsPerPacket;
      const softirqUs = softirqUsPerPacket(m.netrx, base, m.r.sent, m.r.received, ctx.softirqInRelayCpu);
      last = { name: b.name, calls: b.calls, rate, r: m.r, cpuSeconds: m.cpuSeconds, cpuSource: m.cpuSource, overload: null, netrx: m.netrx, softirqUs, steal };
      if (runs.length > 1) last.repeats = repeats;
      ctx.rows.push(last);
      const r = m.r;
      progress.step(
        `${b.name} calls=${b.calls}${runs.length > 1 ? ` (median of ${runs.length})` : ''} offered=${Math.round(r.offered_pps)} fwd=${Math.round(r.forwarded_pps)} loss=${r.loss_pct.toFixed(3)}% ` +
          `cpu=${m.cpuSeconds === null ? 'n/a' : `${m.cpuSeconds.toFixed(3)}s`} softirq=${softirqUs === null ? 'n/a' : `${softirqUs.toFixed(2)}us/pkt`} p50=${r.lat_p50_us}us`,
        runs.length,
      );
      if (r.received === 0 && r.sent > 0) {
        // Muted (e.g. rtpengine ignoring an overflowed socket): higher steps would show the same.
        skipped = `${b.name} @ ${b.calls} calls: forwarded nothing at the ${rate ? rate : 'max'} pps step; higher steps skipped`;
        break;
      }
    }
    // After the highest step: does every stream still forward at a low rate?
    await sleep(500);
    const check = await runLoadgen({ ...common, rate: Math.max(5000, nStreams * 10), seconds: o.quick ? 1 : 2, perStream: true, ...srtpArgs(1) });
    if (b.srtp) block.afterOverloadSrtp = check.srtp;
    if (handle.afterRun) block.extra = await handle.afterRun();
    if (last) last.overload = check.silent_streams === 0 && check.loss_pct < 1 ? 'yes' : `no (${check.silent_streams}/${check.streams} silent, loss ${check.loss_pct.toFixed(1)}%)`;
    return skipped;
  } catch (err) {
    return `${b.name} @ ${b.calls} calls: failed (${(err as Error).message})`;
  } finally {
    if (stepsLeft > 0) progress.step(`${b.name} @ ${b.calls} calls: ${stepsLeft} steps skipped`, stepsLeft);
    await handle.stop();
    if (stateFile) fs.rmSync(stateFile, { force: true });
  }
}

/** How the relays ran and were measured: the report's setup lines. */
function setupLines(o: BenchOptions, topology: Topology): string[] {
  const lines: string[] = [`- topology: ${topology.description}`];
  if (o.external) {
    const e = o.external;
    const cpu = e.pid !== null ? `CPU from /proc/${e.pid}/stat (utime+stime) over each step` : e.metricsUrl ? `CPU from ${e.metricsUrl} (process_cpu_seconds_total, else ngrelay_io_thread_cpu_seconds_total) scraped before and after each step` : 'CPU: n/a (no --relay-pid or --metrics)';
    lines.push(`- relay not started by the tool: ng ${e.host}:${e.port}, phones on ${o.local.join(' / ')}; ${cpu}`);
    lines.push(`- generator+sink (one thread) and runner on core ${GEN_CORE}`);
  } else {
    for (const threads of o.threads) {
      const { cores, sharesGenerator } = relayCores(threads);
      lines.push(`- relays with ${threads} I/O thread${threads > 1 ? 's' : ''} (--num-threads=${threads}) pinned to core${cores.length > 1 ? 's' : ''} ${cores}${sharesGenerator ? ' (this box has too few cores: they share the generator\'s)' : ''}; generator+sink (one thread) and runner on core ${GEN_CORE}`);
    }
    for (const name of new Set(o.forwarders.map((f) => (FORWARDERS[f] as ForwarderDef).kind))) {
      const { cmd, args } = relayCommand({ kind: name }, o.threads[0] ?? 1, null, topology.relayIp);
      lines.push(`- ${name}: \`${path.basename(cmd)} ${args.join(' ')}\``);
    }
    lines.push('- CPU from /proc/<pid>/stat (utime+stime) over each step');
    const kernelRows = o.forwarders.filter((f) => FORWARDERS[f]?.kernelPath);
    if (kernelRows.length) lines.push(`- ${kernelRows.join(', ')}: ngrelay as above but \`--table=0\` (kernel fast path: eBPF on the --interface's device)`);
    if (o.forwarders.includes('rtpengine'))
      lines.push(`- rtpengine: userspace only (--table=-1); its kernel module (xt_RTPENGINE) ${fs.existsSync('/proc/modules') ? 'is not used' : 'cannot load on this kernel (CONFIG_MODULES is off)'}`);
  }
  lines.push(`- 172-byte RTP (PCMA), one stream per call direction, ${o.stepSeconds} s per step${o.repeat > 1 ? ` run ${o.repeat} times (the median run shown; see Noise)` : ''}; calls set up over ng like Kamailio (offer/answer)`);
  return lines;
}

export async function runBench(o: BenchOptions, outDir: string): Promise<BenchResults> {
  const topology = o.topology === 'veth' ? createVethTopology(process.env.NGRELAY_BENCH_NETNS_TAG) : loopbackTopology(o.local);
  try {
    return await runOn(o, outDir, topology);
  } finally {
    topology.remove();
  }
}

async function runOn(o: BenchOptions, outDir: string, topology: Topology): Promise<BenchResults> {
  const info = machineInfo();
  const notes: string[] = [];
  const plan: PhonePlan = { ipA: topology.local[0], ipB: topology.local[1], portBase: o.phonePort, perSide: 4 };
  const busy = await machineBusyPct(1000);
  const loadNote = `machine busy ${busy.toFixed(0)} % (all cores) in the second before the run, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`;
  if (busy > 10) notes.push(`WARNING: ${loadNote}; other work shares the cores, figures are noisy`);

  // NET_RX softirq: metered around every step of every row and the generator-only runs, on this host only.
  const softirq = new SoftirqAccounting(o.external && o.external.pid === null ? 'no --relay-pid: the relay may be on another host' : null);
  let netrxBaseline: NetRxBaseline | null = null;
  let ceiling: BenchResults['ceiling'] = null;
  let ceilingGso: BenchResults['ceilingGso'] = null;
  let ceilingPps = Infinity;
  if (!o.noCeiling) {
    process.stderr.write('ngrelay-bench: measuring the generator ceiling (generator -> sink, no relay)\n');
    const c = await measureCeiling(outDir, plan, GEN_CORE, o.quick ? 1 : 2, softirq, topology.netns);
    ceiling = c.plain;
    ceilingGso = c.gso;
    ceilingPps = c.plain.forwarded_pps;
    netrxBaseline = netRxBaseline({ sent: c.plain.sent, netrx: c.netrx.plain }, { sent: c.gso.sent, netrx: c.netrx.gso });
    for (const x of [c.plain, c.gso]) if (x.loss_pct > 1) notes.push(`generator ceiling run lost ${x.loss_pct.toFixed(2)} % at the sink`);
  } else if (softirq.whyNot === null) {
    // No ceiling wanted, but the softirq columns still need the generator-only baseline: 1 s each, unreported.
    process.stderr.write('ngrelay-bench: measuring the generator-only NET_RX softirq baseline (generator -> sink, 1 s plain, 1 s GSO)\n');
    const c = await measureCeiling(outDir, plan, GEN_CORE, 1, softirq, topology.netns);
    netrxBaseline = netRxBaseline({ sent: c.plain.sent, netrx: c.netrx.plain }, { sent: c.gso.sent, netrx: c.netrx.gso });
  }
  const irqAccounting = softirqInTaskTime();
  const rates = stepRates(o, ceilingPps);
  const blocks = planBlocks(o);
  let srtpCeiling: BenchResults['srtpCeiling'] = null;
  let srtpRates = rates;
  if (blocks.some((b) => b.srtp) && !o.noCeiling) {
    process.stderr.write('ngrelay-bench: measuring the generator ceiling with SRTP (every packet SRTP both ways)\n');
    srtpCeiling = await measureSrtpCeiling(outDir, plan, GEN_CORE, o.quick ? 1 : 2, SRTP_CHECK_EVERY, SRTP_MAX_COUNT_PPS, topology.netns);
    srtpRates = stepRates(o, Math.min(ceilingPps, srtpCeiling.plain.forwarded_pps));
  }
  const ratesOf = (b: BlockPlan): number[] => (b.srtp ? srtpRates : rates);
  const totalSteps = blocks.reduce((n, b) => n + ratesOf(b).length * o.repeat, 0);
  process.stderr.write(`ngrelay-bench: ${blocks.length} blocks, ${totalSteps} steps (${rates.map((r) => r || 'max').join(', ')} pps)\n`);
  const progress = new Progress(totalSteps, o.stepSeconds + 1.5);
  const ctx: RunContext = { o, outDir, plan, progress, rows: [], blocks: [], notes, softirq, netrxBaseline, softirqInRelayCpu: irqAccounting.inTaskTime, topology };
  for (const b of blocks) {
    const note = await runBlock(b, ratesOf(b), ctx);
    if (note) {
      progress.note(note);
      notes.push(note);
    }
  }
  if (softirq.whyNot !== null) notes.push(`softirq not measured (${softirq.whyNot}): the softirq and total CPU columns say n/a`);
  else if (netrxBaseline === null) notes.push('softirq: no generator-only baseline (the ceiling runs were not metered): the softirq and total CPU columns say n/a');
  const setup = setupLines(o, topology);
  if (softirq.whyNot === null && netrxBaseline !== null) {
    const inRelay = irqAccounting.inTaskTime ? "NET_RX in the relay's own context is in its process CPU already" : "NET_RX in the relay's own context is added too (the kernel accounts irq time apart: CONFIG_IRQ_TIME_ACCOUNTING=y)";
    setup.push(
      `- softirq µs/packet: NET_RX softirq time (bench/bin/softirq-meter) in the generator's context beyond its generator-only baseline ` +
        `(${(netrxBaseline.plainNsPerPacket / 1e3).toFixed(2)} µs per packet sent, ${(netrxBaseline.gsoNsPerPacket / 1e3).toFixed(2)} with GSO for the max step) ` +
        `plus all of it in other contexts (ksoftirqd, idle); ${inRelay}${irqAccounting.known ? '' : ' (assumed: no /proc/config.gz)'}. total = CPU-µs/packet + softirq µs/packet`,
    );
  }
  return {
    info,
    setup,
    stepSeconds: o.stepSeconds,
    loadNote,
    ceiling,
    ceilingGso,
    srtpCeiling,
    rows: ctx.rows,
    blocks: ctx.blocks,
    notes,
    netrxBaseline,
    repeat: o.repeat,
  };
}
