/**
 * How much a figure moves between runs of the same step, and whether two runs agree within it.
 *
 * With `--repeat=N` every rate step runs N times: the table shows the median repeat (by CPU-µs per
 * packet, by loss where the CPU is n/a) and the step's noise is the spread (max − min) of each figure over
 * its repeats. `--compare-with=FILE` then checks each step's figures against the same step (calls, rate)
 * of a saved run, e.g. the relay started by the tool (in-process) against the same relay reached from
 * outside: two figures agree when they differ by at most the sum of both runs' spreads (CPU: plus both
 * figures' resolution, one clock tick over the step's packets; loss: plus the loss-free threshold, a
 * difference the report never draws a line on).
 */
import path from 'node:path';
import { LOSS_FREE_PCT } from './runner';
import type { BenchResults, LoadgenResult, StepRow } from './types';

/** The figures of one run of a step, kept for every repeat. */
export interface RepeatFigures {
  /** Relay process CPU-µs per forwarded packet; null when the tool could not see the relay's CPU. */
  usPerPacket: number | null;
  lossPct: number;
  forwardedPps: number;
  p50Us: number;
}

export function repeatFigures(r: LoadgenResult, cpuSeconds: number | null): RepeatFigures {
  return {
    usPerPacket: cpuSeconds !== null && r.received > 0 ? (1e6 * cpuSeconds) / r.received : null,
    lossPct: r.loss_pct,
    forwardedPps: r.forwarded_pps,
    p50Us: r.lat_p50_us,
  };
}

/** Index of the median repeat: by CPU-µs per packet when every repeat has it, else by loss (the lower median for an even count). */
export function medianIndex(repeats: RepeatFigures[]): number {
  const byCpu = repeats.every((x) => x.usPerPacket !== null);
  const key = (x: RepeatFigures): number => (byCpu ? (x.usPerPacket as number) : x.lossPct);
  const order = repeats.map((_, i) => i).sort((a, b) => key(repeats[a] as RepeatFigures) - key(repeats[b] as RepeatFigures) || a - b);
  return order[Math.floor((order.length - 1) / 2)] ?? 0;
}

export interface Range {
  min: number;
  max: number;
}

/**
 * The smallest CPU-µs per packet step the row's CPU source can show: /proc/<pid>/stat counts whole clock
 * ticks (10 ms at the usual 100 Hz) over the step's packets; /metrics counters are finer (0 here).
 */
export function cpuResolutionUs(row: StepRow): number {
  if (row.cpuSource !== 'proc' || row.r.received <= 0) return 0;
  return 1e6 / (row.r.clk_tck ?? 100) / row.r.received;
}

/** One step's noise: the range of each figure over its repeats. */
export interface StepSpread {
  repeats: number;
  /** null when some repeat had no CPU figure. */
  usPerPacket: Range | null;
  lossPct: Range;
  p50Us: Range;
}

const rangeOf = (values: number[]): Range => ({ min: Math.min(...values), max: Math.max(...values) });

/** The row's spread; null when the step ran once (no noise measured). */
export function stepSpread(row: StepRow): StepSpread | null {
  const reps = row.repeats;
  if (!reps || reps.length < 2) return null;
  const cpu = reps.map((x) => x.usPerPacket);
  return {
    repeats: reps.length,
    usPerPacket: cpu.every((x): x is number => x !== null) ? rangeOf(cpu) : null,
    lossPct: rangeOf(reps.map((x) => x.lossPct)),
    p50Us: rangeOf(reps.map((x) => x.p50Us)),
  };
}

const width = (r: Range | null | undefined): number => (r ? r.max - r.min : 0);

/** The figures a comparison checks. */
export type ComparedFigure = 'CPU-µs/packet' | 'loss %';

export interface ComparedStep {
  name: string;
  otherName: string;
  calls: number;
  rate: number;
  figure: ComparedFigure;
  /** This run's and the other run's figure (the shown, median repeat); null = n/a. */
  mine: number | null;
  other: number | null;
  /** Sum of both runs' spreads (+ CPU: both resolutions; loss: the loss-free threshold): the largest difference that is noise. */
  allowed: number;
  /** true = within the noise, false = outside, null = not comparable (a figure is n/a, or neither run has repeats). */
  within: boolean | null;
}

export interface Comparison {
  /** The saved run compared with: its file name and date. */
  file: string;
  date: string;
  steps: ComparedStep[];
}

export class CompareError extends Error {
  override readonly name = 'CompareError';
}

/** The forwarder names of a saved run; a CompareError when `otherName` (--compare-name) is not one of them. */
export function checkCompareName(other: BenchResults, file: string, otherName: string | null): string[] {
  const names = [...new Set(other.rows.map((x) => x.name))];
  if (otherName !== null && !names.includes(otherName)) throw new CompareError(`${file} has no rows of ${otherName} (it has: ${names.join(', ') || 'none'})`);
  return names;
}

/**
 * Compares every step of `mine` with the step of `other` at the same calls and rate: of forwarder
 * `otherName` when given, else of the one forwarder `other` has, else of the same name.
 */
export function compareRuns(mine: BenchResults, other: BenchResults, file: string, otherName: string | null): Comparison {
  const otherNames = checkCompareName(other, file, otherName);
  const steps: ComparedStep[] = [];
  for (const row of mine.rows) {
    const name = otherName ?? (otherNames.length === 1 ? (otherNames[0] as string) : row.name);
    const twin = other.rows.find((x) => x.name === name && x.calls === row.calls && x.rate === row.rate);
    if (!twin) continue;
    const a = stepSpread(row);
    const b = stepSpread(twin);
    const noiseKnown = a !== null || b !== null;
    const base = { name: row.name, otherName: name, calls: row.calls, rate: row.rate };
    const cpuMine = shownFigures(row).usPerPacket;
    const cpuOther = shownFigures(twin).usPerPacket;
    const cpuAllowed = width(a?.usPerPacket) + width(b?.usPerPacket) + cpuResolutionUs(row) + cpuResolutionUs(twin);
    // A run whose CPU is n/a has no CPU spread either: only a run with its CPU and repeats states that noise.
    const cpuNoiseKnown = (a?.usPerPacket ?? b?.usPerPacket ?? null) !== null;
    steps.push({
      ...base,
      figure: 'CPU-µs/packet',
      mine: cpuMine,
      other: cpuOther,
      allowed: cpuAllowed,
      within: cpuMine === null || cpuOther === null || !cpuNoiseKnown ? null : Math.abs(cpuMine - cpuOther) <= cpuAllowed,
    });
    const lossAllowed = width(a?.lossPct) + width(b?.lossPct) + LOSS_FREE_PCT;
    steps.push({
      ...base,
      figure: 'loss %',
      mine: row.r.loss_pct,
      other: twin.r.loss_pct,
      allowed: lossAllowed,
      within: noiseKnown ? Math.abs(row.r.loss_pct - twin.r.loss_pct) <= lossAllowed : null,
    });
  }
  return { file: path.basename(file), date: other.info.date, steps };
}

/** The figures of the row as shown (its median repeat). */
const shownFigures = (row: StepRow): RepeatFigures => repeatFigures(row.r, row.cpuSeconds);

/** The compared figures that lie outside the noise (none: the runs agree). */
export const outsideNoise = (c: Comparison): ComparedStep[] => c.steps.filter((s) => s.within === false);
