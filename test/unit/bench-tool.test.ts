/**
 * ngrelay-bench's pure parts: the command line (typed errors), the CPU figure a /metrics body offers,
 * reading saved results (this tool's and the former bench/run.js's), and the report (table, n/a, charts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BenchUsageError, parseOptions } from '../../bench/tool/options';
import { chartOption, renderSvg } from '../../bench/tool/report-charts';
import { renderMarkdown } from '../../bench/tool/report-md';
import { cpuFromMetrics, sumMetric } from '../../bench/tool/relay-cpu';
import { readResults, ResultsFileError } from '../../bench/tool/results-file';
import type { BenchResults, LoadgenResult, StepRow } from '../../bench/tool/types';

function loadgen(over: Partial<LoadgenResult> = {}): LoadgenResult {
  return {
    streams: 20, sockets: 8, rate_target: 10000, sent: 10000, received: 10000, loss_pct: 0, offered_pps: 10000,
    forwarded_pps: 10000, active_s: 1, lat_p50_us: 40, lat_p99_us: 400, relay_cpu_s: 0.05, silent_streams: 0, ...over,
  };
}

function results(rows: StepRow[]): BenchResults {
  return {
    info: { date: '2026-12-01T12:00:00.000Z', kernel: 'k', cpuModel: 'cpu', cores: 2, hostname: 'h' },
    setup: ['- setup line'], stepSeconds: 1, loadNote: '', ceiling: null, ceilingGso: null, srtpCeiling: null,
    rows, blocks: [], notes: [],
  };
}

describe('ngrelay-bench command line', () => {
  it('a relay already running: --ng with --local, CPU by PID or /metrics', () => {
    const o = parseOptions(['--ng=10.0.0.5:2223', '--local=127.0.0.5', '--metrics=http://10.0.0.5:8080/metrics', '--calls=10', '--rates=5000']);
    expect(o).not.toBe('help');
    if (o === 'help') return;
    expect(o.external).toEqual({ host: '10.0.0.5', port: 2223, pid: null, metricsUrl: 'http://10.0.0.5:8080/metrics', label: 'relay@10.0.0.5:2223' });
    expect(o.local).toEqual(['127.0.0.5', '127.0.0.5']);
    expect(o.forwarders).toEqual([]);
  });

  it.each([
    [['--ng=127.0.0.1:2223'], /--local/],
    [['--ng=127.0.0.1'], /IP:PORT/],
    [['--relay-pid=12'], /--ng/],
    [['--forwarders=ngrelay,nosuch'], /unknown forwarder nosuch/],
    [['--step-seconds=11'], /step-seconds/],
    [['--calls=0'], /1\.\.1000/],
    [['--rates=1,x'], /whole numbers/],
    [['--no-ceiling'], /--rates/],
    [['--metrics=ftp://x'], /http/],
    [['--what'], /unknown option/],
  ])('%j is refused with a BenchUsageError', (argv, message) => {
    let caught: unknown;
    try {
      parseOptions(argv);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BenchUsageError);
    expect((caught as Error).message).toMatch(message);
  });

  it('--threads and --quick', () => {
    const o = parseOptions(['--threads=1,2', '--quick']);
    if (o === 'help') throw new Error('help');
    expect(o.threads).toEqual([1, 2]);
    expect(o.rates).toEqual([50000, 100000, 0]);
    expect(o.stepSeconds).toBe(1);
  });
});

describe('relay CPU from /metrics', () => {
  const ngrelay = [
    '# HELP ngrelay_io_thread_cpu_seconds_total CPU time of each engine I/O thread',
    '# TYPE ngrelay_io_thread_cpu_seconds_total counter',
    'ngrelay_io_thread_cpu_seconds_total{thread="0"} 1.5',
    'ngrelay_io_thread_cpu_seconds_total{thread="1"} 0.25',
    'rtpengine_packets_total{type="userspace"} 100',
  ].join('\n');

  it('sums a metric over its labels', () => {
    expect(sumMetric(ngrelay, 'ngrelay_io_thread_cpu_seconds_total')).toBe(1.75);
    expect(sumMetric(ngrelay, 'absent_total')).toBeNull();
  });

  it('process_cpu_seconds_total first, else the I/O threads, else nothing (rtpengine 10.5)', () => {
    expect(cpuFromMetrics(`${ngrelay}\nprocess_cpu_seconds_total 3.5`)).toEqual({ seconds: 3.5, source: 'metrics' });
    expect(cpuFromMetrics(ngrelay)).toEqual({ seconds: 1.75, source: 'metrics-io-threads' });
    expect(cpuFromMetrics('rtpengine_uptime_seconds 1\nrtpengine_packets_total{type="userspace"} 5')).toBeNull();
  });
});

describe('ngrelay-bench results and report', () => {
  const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'bench-unit-'));

  it('reads the former bench/run.js results: CPU from relay_cpu_s, extras beside their base row', () => {
    const dir = tmp();
    try {
      const file = path.join(dir, 'old.json');
      const old = {
        info: { date: '2026-11-21T07:21:21.419Z', kernel: 'k', cpuModel: 'cpu', cores: 2 },
        opts: { stepSeconds: 3 },
        rows: [{ name: 'ngrelay-rec', calls: 100, rate: 100000, r: loadgen({ received: 200000, relay_cpu_s: 1 }), overload: null }],
        blocks: [{ name: 'ngrelay-rec', calls: 100 }],
      };
      fs.writeFileSync(file, JSON.stringify(old));
      const res = readResults(file);
      expect(res.rows[0]?.cpuSeconds).toBe(1);
      expect(res.blocks[0]?.base).toBe('ngrelay');
      expect(renderMarkdown(res)).toContain('| ngrelay + pcap recording of every call | 100 | n/a | 5.00 |');
      fs.writeFileSync(file, '{"nothing": 1}');
      expect(() => readResults(file)).toThrow(ResultsFileError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a relay whose CPU the tool cannot see: n/a in the table, no CPU point in the chart, loss and latency still drawn', () => {
    const rows: StepRow[] = [
      { name: 'seen', calls: 1, rate: 10000, r: loadgen(), cpuSeconds: 0.05, cpuSource: 'proc', overload: null },
      { name: 'blind', calls: 1, rate: 10000, r: loadgen(), cpuSeconds: null, cpuSource: 'none', overload: 'yes' },
    ];
    const md = renderMarkdown(results(rows));
    expect(md).toContain('| seen | 1 | 10.0k | 10.0k | 0.00 | 5 | 5.00 | 40 / 400 |  |');
    expect(md).toContain('| blind | 1 | 10.0k | 10.0k | 0.00 | n/a | n/a | 40 / 400 | yes |');
    const option = chartOption(results(rows));
    const series = option.series as { name: string; data: [number, number][] }[];
    // CPU panel: only "seen"; loss: both; latency p50 + p99: both.
    expect(series.filter((s) => s.name === 'seen').map((s) => s.data)).toEqual([[[10, 5]], [[10, 0]], [[10, 40]], [[10, 400]]]);
    expect(series.filter((s) => s.name === 'blind')).toHaveLength(3);
    const svg = renderSvg(results(rows));
    expect(svg).toMatch(/^<svg[\s\S]*CPU-µs per forwarded packet[\s\S]*<\/svg>$/);
  });
});
