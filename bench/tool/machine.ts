/** The machine a run measured on, how busy it was, and which cores the generator and relays get. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { MachineInfo } from './types';
import { sleep } from './processes';

/** The generator + sink (and this process) run here; relays on the cores after it. */
export const GEN_CORE = '0';

export function machineInfo(): MachineInfo {
  const cpuModel = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const kernel = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  return { date: new Date().toISOString(), kernel, cpuModel, cores: os.cpus().length, hostname: os.hostname() };
}

/** Cores for a relay with `threads` I/O threads: 1..threads, or every core when the box has too few (then it shares the generator's). */
export function relayCores(threads: number): { cores: string; sharesGenerator: boolean } {
  const n = os.cpus().length;
  if (n < 2) return { cores: '0', sharesGenerator: true };
  if (threads <= n - 1) return { cores: threads === 1 ? '1' : `1-${threads}`, sharesGenerator: false };
  return { cores: `0-${n - 1}`, sharesGenerator: true };
}

/** The runner mostly sleeps while a step runs, but its wake-ups must not land on the relay's core. */
export function pinSelf(): void {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', GEN_CORE, String(process.pid)], { stdio: 'ignore' });
  } catch {
    process.stderr.write(`ngrelay-bench: could not pin the runner to core ${GEN_CORE}\n`);
  }
}

/** Share of CPU time (all cores) that was busy over `ms`: other work on the machine skews every figure. */
export async function machineBusyPct(ms: number): Promise<number> {
  const snap = (): { idle: number; total: number } => {
    const fields = (fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    return { idle: (fields[3] ?? 0) + (fields[4] ?? 0), total: fields.reduce((a, b) => a + b, 0) };
  };
  const a = snap();
  await sleep(ms);
  const b = snap();
  const total = b.total - a.total;
  return total > 0 ? (100 * (total - (b.idle - a.idle))) / total : 0;
}

/** The cores of a taskset list such as `1`, `1-2` or `0,2-3`. */
export function coresOf(list: string): number[] {
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b = a] = part.split('-').map(Number) as [number, number?];
    for (let c = a; c <= (b as number); c++) out.push(c);
  }
  return out;
}

/** Steal ticks (USER_HZ) of each core in a /proc/stat text: time the hypervisor ran something else while this VM wanted the core. */
export function stealTicksByCore(procStat: string): Map<number, number> {
  const byCore = new Map<number, number>();
  for (const line of procStat.split('\n')) {
    const m = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (m) byCore.set(Number(m[1]), Number((m[2] ?? '').trim().split(/\s+/)[7] ?? 0));
  }
  return byCore;
}

// /proc/stat counts in USER_HZ, which is 100 on every Linux ABI.
const USER_HZ = 100;

/**
 * Watches the steal time of some cores: on a VM whose host is busy, the hypervisor takes a core away for
 * seconds (seen here: 10–40 % of each core for a minute), and a relay pinned there loses packets and shows
 * five times its CPU per packet. `stolen()` is the largest share of one watched core's time taken since the
 * watch started.
 */
export class StealWatch {
  private readonly start: Map<number, number>;
  private readonly startedAt = process.hrtime.bigint();

  constructor(
    private readonly cores: number[],
    private readonly readStat: () => string = () => fs.readFileSync('/proc/stat', 'utf8'),
  ) {
    this.start = stealTicksByCore(readStat());
  }

  /** `seconds`: the time watched (measured when not given). */
  stolen(seconds = Number(process.hrtime.bigint() - this.startedAt) / 1e9): number {
    const now = stealTicksByCore(this.readStat());
    if (seconds <= 0) return 0;
    let worst = 0;
    for (const c of this.cores) worst = Math.max(worst, ((now.get(c) ?? 0) - (this.start.get(c) ?? 0)) / (seconds * USER_HZ));
    return worst;
  }
}
