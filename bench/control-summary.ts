/**
 * The figures of the control-plane benchmark (bench/control.ts) from its steps' results: percentiles, the
 * loss-free rule, capacity and, with --repeat, the medians over rounds that compare the two relays. Pure
 * functions, so test/unit/bench-control-summary.test.ts can check them without starting a relay.
 */

export type RelayName = 'ngrelay' | 'rtpengine';
export type CommandName = 'offer' | 'answer' | 'delete';
export const COMMANDS: readonly CommandName[] = ['offer', 'answer', 'delete'];
/** A command, or `all`: every command's latency of the step pooled. */
export type LatencyName = CommandName | 'all';
export const LATENCIES: readonly LatencyName[] = [...COMMANDS, 'all'];

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface StepResult {
  relay: RelayName;
  rate: number;
  offered: number;
  completed: number;
  lost: number;
  shed: number;
  failed: number;
  /** Why the failed ones failed: "command: result error-reason" → count. */
  failures: Map<string, number>;
  /** ng requests the kernel dropped at the relay's socket during the step. */
  kernelDrops: number;
  /** Replies the kernel dropped at the load generator's socket (then the generator, not the relay, lost them). */
  clientDrops: number;
  seconds: number;
  latencyMs: Record<LatencyName, { p50: number; p99: number }>;
  cpuMsPerCycle: number;
  rssMb: number;
}

/** Every cycle completed, and at (nearly) the offered rate. */
export function lossFree(r: StepResult): boolean {
  return r.completed === r.offered && r.completed / r.seconds >= 0.9 * r.rate;
}

export function fmt(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

/** The highest rate at which every round of `relay` was loss-free (0: none was). */
export function capacityOf(results: readonly StepResult[], relay: RelayName): number {
  const ran = results.filter((r) => r.relay === relay);
  const clean = ran.filter((r) => ran.every((o) => o.rate !== r.rate || lossFree(o))).map((r) => r.rate);
  return clean.length ? Math.max(...clean) : 0;
}

export function median(values: number[]): number {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

/**
 * With --repeat: per rate and relay, the median over rounds of each p50/p99 (per command and all commands
 * pooled) and of CPU per cycle; then, where both relays ran, ngrelay's median p99 over rtpengine's.
 */
export function medianSummary(results: readonly StepResult[], rates: readonly number[], relays: readonly RelayName[], repeat: number): string[] {
  const lines = [
    `Medians over ${repeat} rounds per rate:`,
    '',
    '| relay | rate/s | rounds | offer p50/p99 ms | answer p50/p99 ms | delete p50/p99 ms | all p50/p99 ms | all p99 per round | CPU ms/cycle |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const p99: Partial<Record<RelayName, Map<number, number>>> = {};
  for (const rate of [...new Set(rates)]) {
    for (const relay of relays) {
      const rounds = results.filter((r) => r.relay === relay && r.rate === rate);
      if (rounds.length === 0) continue;
      const lat = (c: LatencyName): string =>
        `${fmt(median(rounds.map((r) => r.latencyMs[c].p50)), 2)} / ${fmt(median(rounds.map((r) => r.latencyMs[c].p99)), 2)}`;
      const allP99 = median(rounds.map((r) => r.latencyMs.all.p99));
      (p99[relay] ??= new Map()).set(rate, allP99);
      const perRound = rounds.map((r) => fmt(r.latencyMs.all.p99, 2)).join(', ');
      const cpu = fmt(median(rounds.map((r) => r.cpuMsPerCycle)), 3);
      lines.push(`| ${relay} | ${rate} | ${rounds.length} | ${lat('offer')} | ${lat('answer')} | ${lat('delete')} | ${lat('all')} | ${perRound} | ${cpu} |`);
    }
  }
  lines.push('');
  for (const [rate, mine] of p99.ngrelay ?? new Map<number, number>()) {
    const theirs = p99.rtpengine?.get(rate);
    if (theirs === undefined) continue;
    lines.push(`median p99 (all commands) at ${rate}/s: ngrelay ${fmt(mine, 2)} ms, rtpengine ${fmt(theirs, 2)} ms: ${fmt(mine / theirs, 2)}×`);
  }
  return lines;
}

