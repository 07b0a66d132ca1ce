/**
 * The control-plane benchmark's figures (bench/control-summary.ts): percentiles, the loss-free rule,
 * capacity over repeated rounds, and the medians that compare ngrelay's p99 with rtpengine's.
 */
import { describe, expect, it } from 'vitest';
import { capacityOf, lossFree, median, medianSummary, percentile, type RelayName, type StepResult } from '../../bench/control-summary';

/** A step of `rate` cycles/s for 10 s; `p99` for every command and for all of them pooled. */
function step(relay: RelayName, rate: number, p99: number, over: Partial<StepResult> = {}): StepResult {
  const lat = { p50: p99 / 4, p99 };
  return {
    relay,
    rate,
    offered: rate * 10,
    completed: rate * 10,
    lost: 0,
    shed: 0,
    failed: 0,
    failures: new Map(),
    kernelDrops: 0,
    clientDrops: 0,
    seconds: 10,
    latencyMs: { offer: lat, answer: lat, delete: lat, all: lat },
    cpuMsPerCycle: 1,
    rssMb: 100,
    ...over,
  };
}

describe('control-plane benchmark figures', () => {
  it('takes percentiles from a sorted list and medians of odd and even counts', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(sorted, 50)).toBe(51);
    expect(percentile(sorted, 99)).toBe(100);
    expect(percentile([], 99)).toBeNaN();
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([NaN, 2])).toBe(2);
    expect(median([])).toBeNaN();
  });

  it('calls a step loss-free only when every cycle completed at 90 % of the rate or more', () => {
    expect(lossFree(step('ngrelay', 500, 3))).toBe(true);
    expect(lossFree(step('ngrelay', 500, 3, { completed: 4999 }))).toBe(false);
    expect(lossFree(step('ngrelay', 500, 3, { seconds: 12 }))).toBe(false); // 417/s: did not keep up
  });

  it('counts a rate towards capacity only when every round of it was loss-free', () => {
    const results = [
      step('ngrelay', 500, 3),
      step('ngrelay', 500, 3),
      step('ngrelay', 1000, 3),
      step('ngrelay', 1000, 3, { lost: 1, completed: 9999 }),
      step('rtpengine', 500, 3),
      step('rtpengine', 1000, 3),
    ];
    expect(capacityOf(results, 'ngrelay')).toBe(500);
    expect(capacityOf(results, 'rtpengine')).toBe(1000);
    expect(capacityOf([step('ngrelay', 500, 3, { shed: 5, completed: 4995 })], 'ngrelay')).toBe(0);
  });

  it('compares the median p99 over rounds, not one round that happened to be slow or quick', () => {
    const results = [
      step('ngrelay', 500, 5),
      step('rtpengine', 500, 3.5),
      step('rtpengine', 500, 3.7),
      step('ngrelay', 500, 15), // one noisy round must not decide it
      step('ngrelay', 500, 6),
      step('rtpengine', 500, 3.6),
    ];
    const lines = medianSummary(results, [500], ['ngrelay', 'rtpengine'], 3);
    const row = (relay: string): string => lines.find((l) => l.startsWith(`| ${relay} | 500 |`)) ?? '';
    expect(row('ngrelay')).toContain('| 3 |');
    expect(row('ngrelay')).toContain('1.50 / 6.00'); // all commands: median p50 / p99
    expect(row('ngrelay')).toContain('5.00, 15.00, 6.00');
    expect(row('rtpengine')).toContain('0.90 / 3.60');
    expect(lines).toContain('median p99 (all commands) at 500/s: ngrelay 6.00 ms, rtpengine 3.60 ms: 1.67×');
  });

  it('prints no ratio for a rate only one relay ran', () => {
    const lines = medianSummary([step('ngrelay', 500, 4), step('ngrelay', 500, 5)], [500], ['ngrelay', 'rtpengine'], 2);
    expect(lines.some((l) => l.startsWith('| ngrelay | 500 | 2 |'))).toBe(true);
    expect(lines.some((l) => l.includes('median p99'))).toBe(false);
  });
});
