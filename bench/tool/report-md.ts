/**
 * The markdown report (what README.md and bench/README.md show): setup lines, one table row per step,
 * the recording/SRTP rows beside their plain rows, and the targets summary. Rendered from a saved
 * BenchResults, so `--report=FILE` re-renders an old run.
 */
import { isLossFree, KEEP_UP, LOSS_FREE_PCT, SRTP_CHECK_EVERY, STEAL_LIMIT } from './runner';
import { Comparison, cpuResolutionUs, outsideNoise, Range, repeatFigures, stepSpread } from './noise';
import type { BenchResults, BlockInfo, StepRow } from './types';

export const fmtInt = (n: number): string => (n >= 1000 ? `${(n / 1000).toFixed(n >= 100000 ? 0 : 1)}k` : String(Math.round(n)));
const f2 = (v: number): string => (Number.isFinite(v) ? v.toFixed(2) : 'n/a');

/**
 * Relay CPU % of one core over the step, CPU-µs per forwarded packet (its process), the NET_RX softirq µs
 * per packet charged to it and their sum; NaN when not known (no CPU figure, the softirq meter not run).
 */
export function rowFigures(x: StepRow): { cpuPct: number; usPerPacket: number; softirqUs: number; totalUs: number } {
  const cpu = x.cpuSeconds;
  const cpuPct = cpu !== null && x.r.active_s > 0 ? (100 * cpu) / x.r.active_s : NaN;
  const usPerPacket = repeatFigures(x.r, cpu).usPerPacket ?? NaN;
  const softirqUs = x.softirqUs ?? NaN;
  return { cpuPct, usPerPacket, softirqUs, totalUs: usPerPacket + softirqUs };
}

/** What the targets compare: the total when the softirq meter ran, else the process CPU alone. */
const costOf = (x: StepRow): number => {
  const f = rowFigures(x);
  return Number.isFinite(f.totalUs) ? f.totalUs : f.usPerPacket;
};

function rowCells(x: StepRow): string[] {
  const r = x.r;
  const { cpuPct, usPerPacket, softirqUs, totalUs } = rowFigures(x);
  const offered = x.rate === 0 ? `max ${fmtInt(r.offered_pps)}` : r.offered_pps < 0.9 * x.rate ? `${fmtInt(r.offered_pps)} (of ${fmtInt(x.rate)})*` : fmtInt(r.offered_pps);
  const cpuNa = x.cpuSeconds === null ? 'n/a' : '?';
  return [
    x.name,
    String(x.calls),
    offered,
    fmtInt(r.forwarded_pps),
    r.loss_pct.toFixed(2),
    Number.isFinite(cpuPct) ? cpuPct.toFixed(0) : cpuNa,
    Number.isFinite(usPerPacket) ? usPerPacket.toFixed(2) : x.cpuSeconds === null ? 'n/a' : '—',
    Number.isFinite(softirqUs) ? softirqUs.toFixed(2) : 'n/a',
    Number.isFinite(totalUs) ? totalUs.toFixed(2) : 'n/a',
    r.received > 0 ? `${r.lat_p50_us} / ${r.lat_p99_us}` : '—',
    x.overload ?? '',
  ];
}

/** One table of the report: the markdown and the HTML report render the same head and cells. */
export interface ReportTable {
  /** Element id in the HTML report. */
  id: string;
  head: string[];
  rows: string[][];
}

/** The report as blocks, so the markdown and the HTML report are two renderings of one content. */
export type ReportBlock =
  | { kind: 'heading'; level: 2 | 3; text: string }
  /** Bullet items (markdown `- `), inline code in backticks. */
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; table: ReportTable }
  /** One paragraph of lines (the table's footnotes). */
  | { kind: 'paragraph'; lines: string[] };

/** The table of rate steps: one row per StepRow. */
export function stepTable(rows: StepRow[]): ReportTable {
  const head = ['forwarder', 'calls', 'offered pps', 'forwarded pps', 'loss %', 'relay CPU %', 'CPU-µs/packet', 'softirq µs/packet', 'total CPU-µs/packet', 'latency p50 / p99 µs', 'all streams forward after overload'];
  return { id: 'steps', head, rows: rows.map(rowCells) };
}

export function markdownTable(t: ReportTable): string {
  return [`| ${t.head.join(' | ')} |`, `|${t.head.map(() => '---').join('|')}|`, ...t.rows.map((cells) => `| ${cells.join(' | ')} |`)].join('\n');
}

function lossFreeMax(rows: StepRow[], name: string, calls: number): number {
  let best = NaN;
  for (const x of rows) if (x.name === name && x.calls === calls && isLossFree(x.r) && !(x.r.forwarded_pps <= best)) best = x.r.forwarded_pps;
  return best;
}

const rowAt = (rows: StepRow[], name: string, calls: number, rate: number): StepRow | undefined => rows.find((x) => x.name === name && x.calls === calls && x.rate === rate);
const usAt = (rows: StepRow[], name: string, calls: number, rate: number): number => {
  const x = rowAt(rows, name, calls, rate);
  return x ? costOf(x) : NaN;
};
/** The figure the targets compare, as the report names it. */
const costLabel = (rows: StepRow[]): string => (rows.some((x) => Number.isFinite(rowFigures(x).totalUs)) ? 'total CPU-µs/packet (process + softirq)' : 'CPU-µs/packet');
const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : 'n/a');

/** A recording/SRTP block beside its plain row. */
export interface ExtraRow {
  block: BlockInfo;
  what: string;
  base: string;
  calls: number;
  us50: number;
  us100: number;
  base100: number;
  lossFree: number;
  baseLossFree: number;
  p50: number;
  text: string;
}

export function extraRows(rows: StepRow[], blocks: BlockInfo[]): ExtraRow[] {
  const out: ExtraRow[] = [];
  for (const block of blocks) {
    if (!block.base || !block.what) continue;
    const { name, calls, base, what } = block;
    const x100 = rowAt(rows, name, calls, 100000);
    const e: ExtraRow = {
      block,
      what,
      base,
      calls,
      us50: usAt(rows, name, calls, 50000),
      us100: usAt(rows, name, calls, 100000),
      base100: usAt(rows, base, calls, 100000),
      lossFree: lossFreeMax(rows, name, calls),
      baseLossFree: lossFreeMax(rows, base, calls),
      p50: x100 && x100.r.received > 0 ? x100.r.lat_p50_us : NaN,
      text: '',
    };
    let text =
      `${what}, ${calls} calls: ${costLabel(rows)} at 100k pps = ${f2(e.us100)} (Δ ${f2(e.us100 - e.base100)} µs vs ${base} plain RTP ${f2(e.base100)}` +
      (Number.isFinite(e.base100) && e.base100 > 0 ? `, ${f2(e.us100 / e.base100)}×` : '') +
      `), at 50k = ${f2(e.us50)}; highest loss-free ${fmtInt(e.lossFree || 0)} pps (plain ${fmtInt(e.baseLossFree || 0)})`;
    if (block.verify) {
      const other = base.startsWith('ngrelay') ? `rtpengine${name.slice('ngrelay'.length)}` : null;
      const o100 = other ? usAt(rows, other, calls, 100000) : NaN;
      if (other && Number.isFinite(o100)) text += `; ${f2(e.us100 / o100)}× rtpengine doing the same bridge (${f2(o100)})`;
      const v = block.verify;
      text +=
        `; low-rate check: ${v.ok ? 'ok' : 'FAILED'} (sink unprotected ${v.srtp.rx_ok}/${v.received} SRTP-carrying packets` +
        ` with ${v.srtp.rx_auth_fail} auth / ${v.srtp.rx_replay_fail} replay failures, ${v.silent} silent of ${v.minPerStream}–${v.maxPerStream} per stream, loss ${v.loss_pct.toFixed(2)} %, relay errors ${v.relayErrorsDuring})`;
      const a = block.afterOverloadSrtp;
      if (a && a.rx_auth_fail + a.rx_replay_fail + a.rx_other_fail > 0) text += `; after overload the sink saw ${a.rx_auth_fail} auth / ${a.rx_replay_fail} replay failures`;
    } else if (block.extra) text += `; ${block.extra.text}`;
    e.text = text;
    out.push(e);
  }
  return out;
}

function extraTable(extras: ExtraRow[], cost: string): ReportTable {
  const head = ['row', 'calls', `${cost} @ 50k pps`, '@ 100k pps', 'Δ vs plain @ 100k', 'highest loss-free pps (plain)', 'p50 µs @ 100k', 'check'];
  const rows = extras.map((e): string[] => {
    let check = '';
    const v = e.block.verify;
    if (v) check = `${v.ok ? 'ok' : 'FAILED'}: ${v.srtp.rx_ok} unprotected, ${v.srtp.rx_auth_fail + v.srtp.rx_replay_fail + v.srtp.rx_other_fail} failed, relay errors ${v.relayErrorsDuring}`;
    else if (e.block.extra) check = `written ${e.block.extra.written ?? '?'}, dropped ${e.block.extra.dropped ?? '?'}`;
    const delta = e.us100 - e.base100;
    return [
      e.what,
      String(e.calls),
      f2(e.us50),
      f2(e.us100),
      `${Number.isFinite(delta) ? `${delta >= 0 ? '+' : ''}${delta.toFixed(2)}` : 'n/a'} (plain ${f2(e.base100)})`,
      `${fmtInt(e.lossFree || 0)} (${fmtInt(e.baseLossFree || 0)})`,
      Number.isFinite(e.p50) ? String(e.p50) : '—',
      check,
    ];
  });
  return { id: 'extras', head, rows };
}

/** Targets of issue 14 for ngrelay against minfwd (socket-API floor) and rtpengine, at each call count. */
function summary(allRows: StepRow[], blocks: BlockInfo[]): string[] {
  const extraNames = new Set(blocks.filter((b) => b.base).map((b) => b.name));
  const rows = allRows.filter((x) => !extraNames.has(x.name));
  const has = (n: string): boolean => rows.some((x) => x.name === n);
  const out: string[] = [];
  const starved = (name: string): string => {
    const x = rowAt(rows, name, 100, 100000);
    return x && x.r.offered_pps < 0.9 * x.rate ? ` [${name}'s step was starved: offered ${fmtInt(x.r.offered_pps)}]` : '';
  };
  if (!has('minfwd')) out.push('minfwd rows missing: no ratios against the socket-API floor.');
  const mf100 = usAt(rows, 'minfwd', 100, 100000);
  for (const n of [...new Set(rows.map((x) => x.name))].filter((x) => x !== 'minfwd')) {
    // ngrelay is compared with rtpengine run the same way (same thread count: `ngrelay ×2 threads` with `rtpengine ×2 threads`).
    // The kernel row is compared with userspace rtpengine (its module cannot load here) and has issue 15's target.
    const isNg = n.startsWith('ngrelay');
    const isKernel = n.startsWith('ngrelay-kernel');
    const rtp = n.replace(/^ngrelay(-kernel)?/, 'rtpengine');
    const u = usAt(rows, n, 100, 100000);
    const target = isKernel ? 'target ≤ 0.25× minfwd' : 'target ≤ 1.15× minfwd, ~0.8× rtpengine';
    out.push(
      `${n}: ${costLabel(rows)} at 100k pps, 100 calls = ${f2(u)} → ${ratio(u, mf100)}× minfwd (${f2(mf100)})` +
        (isNg ? `, ${ratio(u, usAt(rows, rtp, 100, 100000))}× ${rtp} (${target})` : '') +
        starved(n) +
        starved('minfwd'),
    );
    for (const calls of [...new Set(rows.filter((x) => x.name === n).map((x) => x.calls))]) {
      const mine = rows.filter((x) => x.name === n && x.calls === calls);
      // If no step overloaded it, its limit was not reached: the figure is a lower bound.
      const never = mine.length > 0 && mine.every((x) => isLossFree(x.r));
      const best = lossFreeMax(rows, n, calls);
      out.push(
        `${n}, ${calls} calls: highest loss-free (≤ ${LOSS_FREE_PCT} % loss, kept up ≥ ${KEEP_UP * 100} %) forwarded rate ${never ? '≥ ' : ''}${fmtInt(best || 0)} pps` +
          (never ? ' (no step overloaded it: limit not reached)' : '') +
          ` → ${ratio(best, lossFreeMax(rows, 'minfwd', calls))}× minfwd` +
          (isNg ? `, ${ratio(best, lossFreeMax(rows, rtp, calls))}× ${rtp} (${isKernel ? 'target ≥ the generator ceiling or ≥ 2× minfwd' : 'target ≥ 0.9× minfwd'})` : ''),
      );
      if (isKernel) {
        // Issue 15: p99 ≤ 1 ms at every loss-free step.
        const lossFree = mine.filter((x) => isLossFree(x.r) && x.r.received > 0);
        const worst = lossFree.reduce<StepRow | null>((w, x) => (w === null || x.r.lat_p99_us > w.r.lat_p99_us ? x : w), null);
        if (worst)
          out.push(
            `${n}, ${calls} calls: worst p99 latency over its ${lossFree.length} loss-free steps ${worst.r.lat_p99_us} µs (at ${worst.rate ? fmtInt(worst.rate) : 'max'}; target ≤ 1000 µs at every one)`,
          );
      }
    }
    // p50 latency vs minfwd at paced steps where both were loss-free and both generators offered ≥ 90 % of the target.
    const fed = (y: StepRow): boolean => y.r.offered_pps >= 0.9 * y.rate;
    const worst: { q: number; at: string }[] = [];
    for (const x of rows.filter((y) => y.name === n && y.rate > 0 && isLossFree(y.r) && fed(y))) {
      const m = rowAt(rows, 'minfwd', x.calls, x.rate);
      if (m && isLossFree(m.r) && fed(m) && m.r.lat_p50_us > 0)
        worst.push({
          q: x.r.lat_p50_us / m.r.lat_p50_us,
          // CPU of both at that step: near 100 % the p50 is queueing delay, very sensitive to small cost differences
          at: `${x.calls} calls @ ${fmtInt(x.rate)}: ${x.r.lat_p50_us} vs ${m.r.lat_p50_us} µs, CPU ${rowFigures(x).cpuPct.toFixed(0)} % vs ${rowFigures(m).cpuPct.toFixed(0)} %`,
        });
    }
    if (worst.length) {
      worst.sort((a, b) => a.q - b.q);
      const w = worst[worst.length - 1] as { q: number; at: string };
      const med = (worst[Math.floor(worst.length / 2)] as { q: number }).q;
      out.push(
        `${n}: p50 latency ÷ minfwd's over ${worst.length} paced steps where both are loss-free and fed: median ${med.toFixed(2)}×, ` +
          `worst ${w.q.toFixed(2)}× (${w.at})${isNg ? ' (target ≤ 1.5× at every such step)' : ''}`,
      );
    }
    const ov = rows.filter((x) => x.name === n && x.overload);
    if (ov.length) out.push(`${n}: every stream forwards after overload: ${ov.every((x) => x.overload === 'yes') ? 'yes' : 'NO'} (${ov.map((x) => `${x.calls} calls: ${x.overload}`).join('; ')})`);
  }
  out.push(...scaling(rows));
  return out;
}

/** --threads: how the highest loss-free rate grows with I/O threads, per relay and call count. */
function scaling(rows: StepRow[]): string[] {
  const out: string[] = [];
  const byBase = new Map<string, { threads: number; name: string }[]>();
  for (const name of new Set(rows.map((x) => x.name))) {
    const m = /^(.*) ×(\d+) threads?$/.exec(name);
    if (!m) continue;
    const list = byBase.get(m[1] ?? '') ?? [];
    list.push({ threads: Number(m[2]), name });
    byBase.set(m[1] ?? '', list);
  }
  for (const [base, variants] of byBase) {
    if (variants.length < 2) continue;
    variants.sort((a, b) => a.threads - b.threads);
    const one = variants[0] as { threads: number; name: string };
    for (const calls of [...new Set(rows.filter((x) => x.name === one.name).map((x) => x.calls))]) {
      const first = lossFreeMax(rows, one.name, calls);
      const parts = variants.map((v) => {
        const best = lossFreeMax(rows, v.name, calls);
        return `${v.threads} → ${fmtInt(best || 0)} pps${v === one ? '' : ` (${ratio(best, first)}×)`}`;
      });
      out.push(`${base} scaling, ${calls} calls: highest loss-free rate by I/O threads: ${parts.join(', ')}`);
    }
  }
  return out;
}

/** The whole report, in order: what renderMarkdown and the HTML report render. */
export function reportBlocks(res: BenchResults): ReportBlock[] {
  const extras = extraRows(res.rows, res.blocks);
  const { info, ceiling, ceilingGso, srtpCeiling } = res;
  const machine: string[] = [
    `machine: ${info.cpuModel}, ${info.cores} cores, kernel ${info.kernel}${res.loadNote ? `; ${res.loadNote}` : ''}`,
    // Saved setup lines are markdown bullets already (also those of bench/run.js).
    ...res.setup.map((line) => line.replace(/^- /, '')),
  ];
  if (ceiling)
    machine.push(
      `generator ceiling (generator -> sink, no relay, 200 streams): ${Math.round(ceiling.forwarded_pps)} pps one message per packet` +
        (ceilingGso ? `, ${Math.round(ceilingGso.forwarded_pps)} pps with UDP GSO (used by the \`max\` step)` : '') +
        `; p50 ${ceiling.lat_p50_us} µs`,
    );
  if (srtpCeiling)
    machine.push(
      `generator ceiling with SRTP (every packet SRTP both ways, AES_CM_128_HMAC_SHA1_80 via libsrtp2; sent packets pre-protected before each step, ` +
        `the sink unprotects 1 in ${SRTP_CHECK_EVERY} per stream during the steps and every packet in the low-rate checks): ` +
        `${Math.round(srtpCeiling.plain.forwarded_pps)} pps one message per packet, ${Math.round(srtpCeiling.gso.forwarded_pps)} pps with UDP GSO`,
    );
  return [
    { kind: 'heading', level: 2, text: `Packet-path benchmark (${info.date})` },
    { kind: 'list', items: machine },
    { kind: 'table', table: stepTable(res.rows) },
    {
      kind: 'paragraph',
      lines: [
        "`*` the generator (core 0) could not offer 90 % of the step's target rate: other work was sharing its core.",
        '`max` = the generator sending as fast as it can (UDP GSO: runs of one stream\'s packets per send). Latency is one-way generator -> relay -> sink.',
        '`n/a` = the tool could not see the relay\'s CPU (no PID on this host and no CPU figure in its /metrics).',
        "`softirq µs/packet`: NET_RX softirq work the relay's process CPU does not contain (the kernel fast path runs there), beyond the generator's own; `total` = both. `n/a` there = the softirq meter did not run (see the notes).",
      ],
    },
    ...(extras.length
      ? [
          { kind: 'heading', level: 3, text: 'Recording and SRTP (beside plain RTP)' } as const,
          { kind: 'table', table: extraTable(extras, costLabel(res.rows)) } as const,
        ]
      : []),
    ...noiseBlocks(res),
    ...(res.comparison ? comparisonBlocks(res.comparison) : []),
    { kind: 'heading', level: 3, text: 'Targets' },
    { kind: 'list', items: [...summary(res.rows, res.blocks), ...extras.map((e) => e.text), ...res.notes] },
  ];
}

const rangeText = (r: Range | null, digits: number): string => (r ? `${r.min.toFixed(digits)}–${r.max.toFixed(digits)} (±${((r.max - r.min) / 2).toFixed(digits)})` : 'n/a');
/** A step's target rate, as the noise and comparison tables name it. */
const rateText = (rate: number): string => (rate === 0 ? 'max' : fmtInt(rate));

/** What the report says about its own noise: the spread of each step's repeats (--repeat), or that it was not measured. */
function noiseBlocks(res: BenchResults): ReportBlock[] {
  const spreads = res.rows.flatMap((x) => {
    const s = stepSpread(x);
    return s ? [{ x, s }] : [];
  });
  const heading: ReportBlock = { kind: 'heading', level: 3, text: 'Noise' };
  const steal: ReportBlock = { kind: 'paragraph', lines: stealLines(res.rows) };
  if (!spreads.length)
    return [heading, { kind: 'paragraph', lines: ['Not measured: every step ran once. `--repeat=3` runs each step 3 times and states the spread of its figures here.'] }, steal];
  const relative = spreads
    .flatMap(({ x, s }) => (s.usPerPacket && rowFigures(x).usPerPacket > 0 ? [(s.usPerPacket.max - s.usPerPacket.min) / rowFigures(x).usPerPacket] : []))
    .sort((a, b) => a - b);
  const lines = [
    `Each step ran ${res.repeat ?? spreads[0]?.s.repeats} times; the table above shows the median run (by CPU-µs/packet, by loss where the CPU is n/a). ` +
      'A step\'s noise is the range (min–max, ± half of it) of each figure over its runs. ' +
      'CPU from /proc counts whole clock ticks: one tick over the step\'s packets is the finest difference it can show (its resolution).',
  ];
  if (relative.length) lines.push(`CPU-µs/packet: median spread over the steps ${(100 * (relative[Math.floor((relative.length - 1) / 2)] as number)).toFixed(0)} % of the figure, largest ${(100 * (relative[relative.length - 1] as number)).toFixed(0)} %.`);
  const table: ReportTable = {
    id: 'noise',
    head: ['forwarder', 'calls', 'rate pps', 'runs', 'CPU-µs/packet', 'CPU resolution µs/packet', 'loss %', 'latency p50 µs'],
    rows: spreads.map(({ x, s }) => [
      x.name,
      String(x.calls),
      rateText(x.rate),
      String(s.repeats),
      rangeText(s.usPerPacket, 2),
      s.usPerPacket ? cpuResolutionUs(x).toFixed(2) : 'n/a',
      rangeText(s.lossPct, 2),
      rangeText(s.p50Us, 0),
    ]),
  };
  return [heading, { kind: 'paragraph', lines }, { kind: 'table', table }, steal];
}

/** What the hypervisor took (runner.ts unstolenRun): the runs measured again, and any kept while it took too much. */
function stealLines(rows: StepRow[]): string[] {
  const limit = `${(100 * STEAL_LIMIT).toFixed(0)} %`;
  const where = (x: StepRow): string => `${x.name} @ ${x.calls} calls, ${rateText(x.rate)} pps`;
  const rerun = rows.filter((x) => (x.steal?.reruns ?? 0) > 0);
  const kept = rows.filter((x) => (x.steal?.worstKeptPct ?? 0) > 100 * STEAL_LIMIT);
  if (!rows.some((x) => x.steal)) return ['Steal time was not watched in this run (results from an older version of the tool).'];
  const lines = [
    rerun.length
      ? `Steal: ${rerun.reduce((n, x) => n + (x.steal?.reruns ?? 0), 0)} run(s) were measured again because the hypervisor took more than ${limit} of a core they used (/proc/stat steal): ${rerun.map((x) => `${where(x)} ×${x.steal?.reruns}`).join('; ')}.`
      : `Steal: no run lost more than ${limit} of a core it used to the hypervisor (/proc/stat steal).`,
  ];
  if (kept.length) lines.push(`**Measured while the host was busy** (still above ${limit} after the re-runs; read these figures with care): ${kept.map((x) => `${where(x)} (${x.steal?.worstKeptPct} %)`).join('; ')}.`);
  return lines;
}

/** --compare-with: each step's figures against the saved run's, and whether they differ by more than the noise. */
function comparisonBlocks(c: Comparison): ReportBlock[] {
  const fmt = (v: number | null): string => (v === null ? 'n/a' : v.toFixed(2));
  const verdict = (w: boolean | null): string => (w === null ? 'n/a' : w ? 'within' : 'OUTSIDE');
  const judged = c.steps.filter((s) => s.within !== null);
  const outside = outsideNoise(c);
  const table: ReportTable = {
    id: 'comparison',
    head: ['forwarder', 'compared with', 'calls', 'rate pps', 'figure', 'this run', c.file, 'difference', 'noise (largest difference allowed)', 'verdict'],
    rows: c.steps.map((s) => [
      s.name,
      s.otherName,
      String(s.calls),
      rateText(s.rate),
      s.figure,
      fmt(s.mine),
      fmt(s.other),
      s.mine === null || s.other === null ? 'n/a' : Math.abs(s.mine - s.other).toFixed(2),
      s.within === null ? 'n/a' : s.allowed.toFixed(2),
      verdict(s.within),
    ]),
  };
  return [
    { kind: 'heading', level: 3, text: `Compared with ${c.file} (${c.date})` },
    {
      kind: 'paragraph',
      lines: [
        'Each step against the step of the same calls and rate in that run. Two figures agree when they differ by at most the sum of both runs\' spreads ' +
          `(see Noise; CPU: plus both resolutions; loss: plus ${LOSS_FREE_PCT} %, the loss-free threshold). \`n/a\`: a figure is n/a, or neither run repeated its steps.`,
        c.steps.length === 0
          ? 'No step of this run has a twin (same calls and rate) there.'
          : `${judged.length - outside.length} of ${judged.length} compared figures within the noise${outside.length ? `; ${outside.length} OUTSIDE` : ''}` +
            (judged.length < c.steps.length ? `; ${c.steps.length - judged.length} not comparable (n/a)` : '') +
            '.',
      ],
    },
    { kind: 'table', table },
  ];
}

function blockMarkdown(b: ReportBlock): string {
  switch (b.kind) {
    case 'heading':
      return `${'#'.repeat(b.level)} ${b.text}`;
    case 'list':
      return b.items.map((item) => `- ${item}`).join('\n');
    case 'table':
      return markdownTable(b.table);
    case 'paragraph':
      return b.lines.join('\n');
  }
}

export function renderMarkdown(res: BenchResults): string {
  return `${reportBlocks(res).map(blockMarkdown).join('\n\n')}\n`;
}
