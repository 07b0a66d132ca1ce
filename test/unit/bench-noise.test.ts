/**
 * ngrelay-bench's noise and comparison (bench/tool/noise.ts: --repeat, --compare-with) and the HTML report's
 * tables (the same blocks as the markdown report).
 */
import { describe, expect, it } from 'vitest';
import { CompareError, compareRuns, medianIndex, outsideNoise, RepeatFigures, stepSpread } from '../../bench/tool/noise';
import { BenchUsageError, parseOptions } from '../../bench/tool/options';
import { renderHtml } from '../../bench/tool/report-html';
import { coresOf, StealWatch, stealTicksByCore } from '../../bench/tool/machine';
import { renderMarkdown, stepTable } from '../../bench/tool/report-md';
import type { BenchResults, LoadgenResult, StepRow } from '../../bench/tool/types';

function loadgen(over: Partial<LoadgenResult> = {}): LoadgenResult {
  return {
    streams: 4, sockets: 4, rate_target: 2000, sent: 2000, received: 2000, loss_pct: 0, offered_pps: 2000,
    forwarded_pps: 2000, active_s: 1, lat_p50_us: 100, lat_p99_us: 900, relay_cpu_s: 0.04, silent_streams: 0, clk_tck: 100, ...over,
  };
}

const figures = (usPerPacket: number | null, lossPct = 0, p50Us = 100): RepeatFigures => ({ usPerPacket, lossPct, forwardedPps: 2000, p50Us });

/** A step of 2000 packets whose shown CPU is `cpuSeconds`, with the given repeats. */
function step(name: string, rate: number, cpuSeconds: number | null, repeats?: RepeatFigures[], over: Partial<LoadgenResult> = {}): StepRow {
  const row: StepRow = { name, calls: 2, rate, r: loadgen({ rate_target: rate, ...over }), cpuSeconds, cpuSource: cpuSeconds === null ? 'none' : 'proc', overload: null };
  if (repeats) row.repeats = repeats;
  return row;
}

function results(rows: StepRow[], repeat = 1): BenchResults {
  return {
    info: { date: '2026-12-01T12:00:00.000Z', kernel: 'k', cpuModel: 'cpu', cores: 2, hostname: 'h' },
    setup: ['- setup line'], stepSeconds: 1, loadNote: '', ceiling: null, ceilingGso: null, srtpCeiling: null,
    rows, blocks: [], notes: [], repeat,
  };
}

describe('repeats of a step', () => {
  it('the shown run is the median by CPU-µs/packet; by loss when a CPU figure is n/a; the lower median of an even count', () => {
    expect(medianIndex([figures(30), figures(10), figures(20)])).toBe(2);
    expect(medianIndex([figures(null, 5), figures(10, 1), figures(20, 3)])).toBe(2);
    expect(medianIndex([figures(40), figures(10), figures(30), figures(20)])).toBe(3);
    expect(medianIndex([figures(7)])).toBe(0);
  });

  it('the spread is the range of each figure over the runs; none for a single run; no CPU range when a run had none', () => {
    expect(stepSpread(step('a', 2000, 0.04))).toBeNull();
    expect(stepSpread(step('a', 2000, 0.04, [figures(20)]))).toBeNull();
    expect(stepSpread(step('a', 2000, 0.04, [figures(20, 0, 90), figures(15, 0.5, 140), figures(25, 0.1, 100)]))).toEqual({
      repeats: 3,
      usPerPacket: { min: 15, max: 25 },
      lossPct: { min: 0, max: 0.5 },
      p50Us: { min: 90, max: 140 },
    });
    expect(stepSpread(step('a', 2000, null, [figures(null), figures(null)]))?.usPerPacket).toBeNull();
  });
});

describe('--compare-with', () => {
  // In-process: 20 µs/packet shown, runs 15..25; 2000 packets at 100 Hz: 5 µs/packet resolution.
  const inProcess = results([step('ngrelay', 2000, 0.04, [figures(20), figures(15), figures(25)]), step('ngrelay', 4000, 0.08, [figures(20), figures(20), figures(20)])], 3);

  it('a figure within both spreads plus both resolutions is within; beyond is OUTSIDE', () => {
    // 2000: |35 - 20| = 15 ≤ 10 (spread) + 0 + 5 + 5 (resolutions) = 20. 4000: |40 - 20| = 20 > 0 + 0 + 5 + 5.
    const mine = results([step('ext', 2000, 0.07, [figures(35), figures(35)]), step('ext', 4000, 0.08 * 2, [figures(40), figures(40)])], 2);
    const c = compareRuns(mine, inProcess, '/tmp/x/inproc.json', null);
    expect(c.file).toBe('inproc.json');
    const cpu = c.steps.filter((s) => s.figure === 'CPU-µs/packet');
    expect(cpu.map((s) => [s.rate, s.otherName, s.mine, s.other])).toEqual([[2000, 'ngrelay', 35, 20], [4000, 'ngrelay', 80, 40]]);
    expect(cpu[0]?.allowed).toBeCloseTo(20, 9);
    expect(cpu.map((s) => s.within)).toEqual([true, false]);
    expect(outsideNoise(c)).toHaveLength(1);
  });

  it('loss: within the spreads plus the loss-free threshold (0.1 %)', () => {
    const mine = results([step('ext', 2000, 0.04, [figures(20, 0.09), figures(20, 0.09)], { loss_pct: 0.09 }), step('ext', 4000, 0.08, [figures(20, 0.5), figures(20, 0.5)], { loss_pct: 0.5 })], 2);
    const loss = compareRuns(mine, inProcess, 'f', null).steps.filter((s) => s.figure === 'loss %');
    expect(loss.map((s) => s.within)).toEqual([true, false]);
  });

  it('a CPU figure n/a on either side, or no repeats on either side: not compared (n/a), never guessed', () => {
    const blind = results([step('ext', 2000, null, [figures(null), figures(null)])], 2);
    const steps = compareRuns(blind, inProcess, 'f', null).steps;
    expect(steps.map((s) => [s.figure, s.mine, s.within])).toEqual([['CPU-µs/packet', null, null], ['loss %', 0, true]]);
    const once = results([step('ext', 2000, 0.04)]);
    const single = results([step('ngrelay', 2000, 0.04)]);
    expect(compareRuns(once, single, 'f', null).steps.map((s) => s.within)).toEqual([null, null]);
    // Steps with no twin (another rate) are left out.
    expect(compareRuns(results([step('ext', 8000, 0.04)]), inProcess, 'f', null).steps).toEqual([]);
  });

  it('which forwarder of the saved run: --compare-name, else its only one, else the same name; an unknown name is a CompareError', () => {
    const two = results([step('ngrelay', 2000, 0.04, [figures(20), figures(20)]), step('rtpengine', 2000, 0.06, [figures(30), figures(30)])], 2);
    const mine = results([step('rtpengine', 2000, 0.06, [figures(30), figures(30)])], 2);
    expect(compareRuns(mine, two, 'f', null).steps[0]?.otherName).toBe('rtpengine');
    expect(compareRuns(mine, two, 'f', 'ngrelay').steps[0]?.otherName).toBe('ngrelay');
    expect(() => compareRuns(mine, two, 'f', 'minfwd')).toThrow(CompareError);
    expect(() => compareRuns(mine, two, 'f', 'minfwd')).toThrow(/has no rows of minfwd \(it has: ngrelay, rtpengine\)/);
  });

  it('options: --repeat is 1..9, --compare-name needs --compare-with', () => {
    const o = parseOptions(['--repeat=3', '--compare-with=a.json', '--compare-name=ngrelay']);
    if (o === 'help') throw new Error('help');
    expect([o.repeat, o.compareWith, o.compareName]).toEqual([3, 'a.json', 'ngrelay']);
    for (const argv of [['--repeat=0'], ['--repeat=10'], ['--repeat=x'], ['--compare-name=ngrelay']]) expect(() => parseOptions(argv)).toThrow(BenchUsageError);
  });
});

describe('the report states its noise and the comparison', () => {
  it('no repeats: says the noise was not measured and how to measure it', () => {
    const md = renderMarkdown(results([step('ngrelay', 2000, 0.04)]));
    expect(md).toContain('### Noise\n\nNot measured: every step ran once. `--repeat=3`');
    expect(md).not.toContain('| runs |');
  });

  it('repeats: the range of each figure per step, the CPU resolution, and the median spread', () => {
    const md = renderMarkdown(results([step('ngrelay', 2000, 0.04, [figures(20, 0, 90), figures(15, 0, 140), figures(25, 0.1, 100)])], 3));
    expect(md).toContain('Each step ran 3 times; the table above shows the median run');
    expect(md).toContain('CPU-µs/packet: median spread over the steps 50 % of the figure, largest 50 %.');
    expect(md).toContain('| ngrelay | 2 | 2.0k | 3 | 15.00–25.00 (±5.00) | 5.00 | 0.00–0.10 (±0.05) | 90–140 (±25) |');
  });

  it('the comparison: a row per step and figure with its verdict, and the count', () => {
    const inProcess = results([step('ngrelay', 2000, 0.04, [figures(20), figures(20)])], 2);
    const mine = results([step('ext', 2000, 0.16, [figures(80), figures(80)])], 2);
    mine.comparison = compareRuns(mine, inProcess, 'inproc.json', null);
    const md = renderMarkdown(mine);
    expect(md).toContain(`### Compared with inproc.json (${inProcess.info.date})`);
    expect(md).toContain('1 of 2 compared figures within the noise; 1 OUTSIDE.');
    expect(md).toContain('| ext | ngrelay | 2 | 2.0k | CPU-µs/packet | 80.00 | 20.00 | 60.00 | 10.00 | OUTSIDE |');
    expect(md).toContain('| ext | ngrelay | 2 | 2.0k | loss % | 0.00 | 0.00 | 0.00 | 0.10 | within |');
  });
});

describe('the HTML report', () => {
  it('renders the markdown table\'s rows as an HTML table (same head, same cells), escaped, not as preformatted text', () => {
    const rows = [step('ngrelay <b>', 2000, 0.04), step('rtpengine', 4000, null)];
    const res = results(rows);
    const html = renderHtml(res);
    const t = stepTable(rows);
    expect(html).not.toContain('<pre');
    expect(html).toContain(`<table id="steps" class="sortable"><thead><tr>${t.head.map((h, i) => `<th data-col="${i}">${h}</th>`).join('')}</tr></thead>`);
    expect(html).toContain(`<tr><td>ngrelay &lt;b&gt;</td>${(t.rows[0] as string[]).slice(1).map((c) => `<td>${c}</td>`).join('')}</tr>`);
    expect(html).toContain('<td>n/a</td>');
    expect(html).not.toContain('ngrelay <b>');
    // The markdown's other blocks too: headings, lists, inline code.
    expect(html).toContain('<h3>Noise</h3>');
    expect(html).toContain('<li>setup line</li>');
    expect(html).toContain('<code>--repeat=3</code>');
  });
});

describe('steal time (a run measured again when the hypervisor took a core)', () => {
  const stat = (steal0: number, steal1: number): string =>
    `cpu  10 0 10 100 0 0 0 ${steal0 + steal1} 0 0\ncpu0 5 0 5 50 0 0 0 ${steal0} 0 0\ncpu1 5 0 5 50 0 0 0 ${steal1} 0 0\nintr 1\n`;

  it('reads each core\'s steal ticks from /proc/stat, and taskset core lists', () => {
    expect([...stealTicksByCore(stat(3, 40)).entries()]).toEqual([[0, 3], [1, 40]]);
    expect(coresOf('1')).toEqual([1]);
    expect(coresOf('1-3')).toEqual([1, 2, 3]);
    expect(coresOf('0,2-3')).toEqual([0, 2, 3]);
  });

  it('the share stolen is the worst watched core\'s, over the time watched; an unwatched core does not count', () => {
    const texts = [stat(0, 0), stat(2, 30)];
    const watch = new StealWatch([0, 1], () => texts.shift() as string);
    expect(watch.stolen(1)).toBeCloseTo(0.3);
    const texts2 = [stat(0, 0), stat(2, 30)];
    expect(new StealWatch([0], () => texts2.shift() as string).stolen(1)).toBeCloseTo(0.02);
  });

  it('the report counts the runs measured again and names a step kept while the host was busy', () => {
    const quiet = { ...step('ngrelay', 2000, 0.04), steal: { reruns: 0, worstKeptPct: 1.5 } };
    const rerun = { ...step('rtpengine', 2000, 0.04), steal: { reruns: 2, worstKeptPct: 3 } };
    const busy = { ...step('rtpengine', 4000, 0.08), steal: { reruns: 3, worstKeptPct: 35 } };
    expect(renderMarkdown(results([quiet]))).toContain('Steal: no run lost more than 10 % of a core it used to the hypervisor');
    const md = renderMarkdown(results([quiet, rerun, busy]));
    expect(md).toContain('Steal: 5 run(s) were measured again because the hypervisor took more than 10 % of a core they used (/proc/stat steal): rtpengine @ 2 calls, 2.0k pps ×2; rtpengine @ 2 calls, 4.0k pps ×3.');
    expect(md).toContain('**Measured while the host was busy** (still above 10 % after the re-runs; read these figures with care): rtpengine @ 2 calls, 4.0k pps (35 %).');
    expect(renderMarkdown(results([step('ngrelay', 2000, 0.04)]))).toContain('Steal time was not watched in this run');
  });
});
