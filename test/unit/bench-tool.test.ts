/**
 * ngrelay-bench's pure parts: the command line (typed errors), the CPU figure a /metrics body offers,
 * reading saved results (this tool's and the former bench/run.js's), the report (table, n/a, charts), the
 * NET_RX softirq accounting and the ngrelay-kernel row's checks.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import zlib from 'node:zlib';
import type { Reply } from '../../bench/tool/calls';
import { ForwarderDef, FORWARDERS, kernelizedStreams, kernelPathRefusal, relayCommand } from '../../bench/tool/forwarders';
import { BenchUsageError, parseOptions } from '../../bench/tool/options';
import { chartOption, renderSvg } from '../../bench/tool/report-charts';
import { renderMarkdown, rowFigures } from '../../bench/tool/report-md';
import { NetRxCounts, netRxBaseline, parseMeterOutput, SoftirqAccounting, softirqInTaskTime, softirqUsPerPacket } from '../../bench/tool/softirq';
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
      expect(res.rows[0]?.softirqUs).toBeNull();
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
    expect(md).toContain('| seen | 1 | 10.0k | 10.0k | 0.00 | 5 | 5.00 | n/a | n/a | 40 / 400 |  |');
    expect(md).toContain('| blind | 1 | 10.0k | 10.0k | 0.00 | n/a | n/a | n/a | n/a | 40 / 400 | yes |');
    const option = chartOption(results(rows));
    const series = option.series as { name: string; data: [number, number][] }[];
    // CPU panel: only "seen"; loss: both; latency p50 + p99: both.
    expect(series.filter((s) => s.name === 'seen').map((s) => s.data)).toEqual([[[10, 5]], [[10, 0]], [[10, 40]], [[10, 400]]]);
    expect(series.filter((s) => s.name === 'blind')).toHaveLength(3);
    const svg = renderSvg(results(rows));
    expect(svg).toMatch(/^<svg[\s\S]*CPU-µs per forwarded packet \(process; softirq not measured\)[\s\S]*<\/svg>$/);
  });
});

describe('NET_RX softirq accounting (bench/bin/softirq-meter)', () => {
  const counts = (over: Partial<NetRxCounts> = {}): NetRxCounts => ({ gen_ns: 0, relay_ns: 0, other_ns: 0, runs: 0, ...over });

  it('parses the meter\'s counts line, and nothing else', () => {
    expect(parseMeterOutput('ready\n{"gen_ns":2000,"relay_ns":30,"other_ns":500,"runs":7}\n')).toEqual({ gen_ns: 2000, relay_ns: 30, other_ns: 500, runs: 7 });
    expect(parseMeterOutput('ready\n')).toBeNull();
    expect(parseMeterOutput('ready\n{"gen_ns":1,"relay_ns":2}\n')).toBeNull();
    expect(parseMeterOutput('ready\n{"gen_ns":"1","relay_ns":2,"other_ns":3,"runs":4}\n')).toBeNull();
    expect(parseMeterOutput('ready\n{"gen_ns":1,"relay_ns":2,"other_ns":-3,"runs":4}\n')).toBeNull();
    expect(parseMeterOutput('ready\n{not json\n')).toBeNull();
  });

  it('the generator-only baseline: its NET_RX ns per packet sent, plain and GSO; none when a run was not metered', () => {
    const plain = { sent: 1000, netrx: counts({ gen_ns: 1_500_000, other_ns: 9e9 }) };
    const gso = { sent: 2000, netrx: counts({ gen_ns: 2_000_000 }) };
    expect(netRxBaseline(plain, gso)).toEqual({ plainNsPerPacket: 1500, gsoNsPerPacket: 1000 });
    expect(netRxBaseline({ sent: 1000, netrx: null }, gso)).toBeNull();
    expect(netRxBaseline(plain, { sent: 0, netrx: counts() })).toBeNull();
  });

  it('charges the generator context beyond the baseline plus other contexts; the relay context only when irq time is apart', () => {
    // 10000 sent at 1500 ns baseline = 15 ms expected of the generator alone; it spent 20 ms: 5 ms is the relay's
    // (the kernel fast path forwarding in the sender's softirq), plus 3 ms in ksoftirqd/idle: 8 ms over 8000 forwarded = 1 µs.
    const n = counts({ gen_ns: 20_000_000, other_ns: 3_000_000, relay_ns: 4_000_000 });
    expect(softirqUsPerPacket(n, 1500, 10000, 8000, true)).toBeCloseTo(1, 9);
    expect(softirqUsPerPacket(n, 1500, 10000, 8000, false)).toBeCloseTo(1.5, 9);
    // Less than the baseline (noise): never negative.
    expect(softirqUsPerPacket(counts({ gen_ns: 1000 }), 1500, 10000, 8000, true)).toBe(0);
    expect(softirqUsPerPacket(null, 1500, 10000, 8000, true)).toBeNull();
    expect(softirqUsPerPacket(n, null, 10000, 8000, true)).toBeNull();
    expect(softirqUsPerPacket(n, 1500, 10000, 0, true)).toBeNull();
  });

  it('reads CONFIG_IRQ_TIME_ACCOUNTING from a kernel config.gz', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-unit-'));
    try {
      const file = path.join(dir, 'config.gz');
      fs.writeFileSync(file, zlib.gzipSync('CONFIG_TICK_CPU_ACCOUNTING=y\n# CONFIG_IRQ_TIME_ACCOUNTING is not set\n'));
      expect(softirqInTaskTime(file)).toEqual({ inTaskTime: true, known: true });
      fs.writeFileSync(file, zlib.gzipSync('CONFIG_IRQ_TIME_ACCOUNTING=y\n'));
      expect(softirqInTaskTime(file)).toEqual({ inTaskTime: false, known: true });
      expect(softirqInTaskTime(path.join(dir, 'absent.gz'))).toEqual({ inTaskTime: true, known: false });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the table, the JSON rows and the CPU chart carry softirq and total CPU-µs/packet', () => {
    const rows: StepRow[] = [
      { name: 'ngrelay', calls: 1, rate: 10000, r: loadgen(), cpuSeconds: 0.05, cpuSource: 'proc', overload: null, netrx: counts({ gen_ns: 1 }), softirqUs: 1.25 },
      { name: 'ngrelay-kernel', calls: 1, rate: 10000, r: loadgen(), cpuSeconds: 0.001, cpuSource: 'proc', overload: 'yes', netrx: counts({ gen_ns: 1 }), softirqUs: 0.8 },
    ];
    const res = results(rows);
    const md = renderMarkdown(res);
    expect(md).toContain('| softirq µs/packet | total CPU-µs/packet |');
    expect(md).toContain('| ngrelay | 1 | 10.0k | 10.0k | 0.00 | 5 | 5.00 | 1.25 | 6.25 | 40 / 400 |  |');
    expect(md).toContain('| ngrelay-kernel | 1 | 10.0k | 10.0k | 0.00 | 0 | 0.10 | 0.80 | 0.90 | 40 / 400 | yes |');
    expect(md).toContain('ngrelay-kernel: total CPU-µs/packet (process + softirq) at 100k pps');
    expect(md).toContain('ngrelay-kernel, 1 calls: worst p99 latency over its 1 loss-free steps 400 µs (at 10.0k; target ≤ 1000 µs at every one)');
    expect(md).not.toContain('ngrelay, 1 calls: worst p99');
    expect(rowFigures(rows[1] as StepRow).totalUs).toBeCloseTo(0.9, 9);
    const option = chartOption(res);
    const cpuPoints = (option.series as { name: string; data: [number, number][] }[]).filter((s) => s.name === 'ngrelay-kernel')[0]?.data;
    expect(cpuPoints).toEqual([[10, 0.9]]);
    expect(JSON.stringify(option.title)).toContain('total CPU-µs per forwarded packet (process + softirq)');
  });

  it('the former bench/run.js rows with its meter (r.netrx, r.netrx_base_ns_per_pkt) get their softirq figure', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-unit-'));
    try {
      const file = path.join(dir, 'old.json');
      const r = { ...loadgen({ sent: 10000, received: 10000 }), netrx: counts({ gen_ns: 20_000_000, other_ns: 2_000_000 }), netrx_base_ns_per_pkt: 1500 };
      fs.writeFileSync(file, JSON.stringify({ info: { date: 'd', kernel: 'k', cpuModel: 'c', cores: 2 }, opts: { stepSeconds: 1 }, rows: [{ name: 'ngrelay-kernel', calls: 10, rate: 20000, r, overload: null }] }));
      expect(readResults(file).rows[0]?.softirqUs).toBeCloseTo(0.7, 9);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the ngrelay-kernel row', () => {
  it('runs by default, with --table=0; every other ngrelay row with --table=-1', () => {
    const o = parseOptions([]);
    if (o === 'help') throw new Error('help');
    expect(o.forwarders).toContain('ngrelay-kernel');
    const kernel = FORWARDERS['ngrelay-kernel'] as ForwarderDef;
    expect(relayCommand(kernel, 1, null).args).toContain('--table=0');
    expect(relayCommand(kernel, 1, null).args).not.toContain('--table=-1');
    expect(relayCommand(FORWARDERS.ngrelay as ForwarderDef, 1, null).args).toContain('--table=-1');
    expect(relayCommand(FORWARDERS['ngrelay-rec'] as ForwarderDef, 1, null).args).toContain('--table=-1');
  });

  it('finds why the fast path is not on in the relay\'s log (its one warning), and nothing when it is on', () => {
    // The line ngrelay logs when started without CAP_BPF/CAP_NET_ADMIN (setpriv --bounding-set=-bpf,-net_admin,...).
    const refused =
      '{"level":40,"time":"2026-12-01T14:06:38.642Z","pid":28450,"hostname":"vm","name":"ngrelay","table":0,"msg":"kernel fast path unavailable: the kernel refused to load the BPF program (Operation not permitted): it needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN); forwarding in userspace"}\n';
    expect(kernelPathRefusal(refused)).toBe('the kernel refused to load the BPF program (Operation not permitted): it needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN)');
    expect(kernelPathRefusal('{"level":40,"msg":"--table has no effect: ngrelay forwards in userspace"}')).toBe('--table has no effect: ngrelay forwards in userspace');
    expect(kernelPathRefusal('{"level":30,"attach":"tcx","interfaces":["lo"],"msg":"kernel fast path on"}\n')).toBeNull();
    expect(kernelPathRefusal('')).toBeNull();
  });

  it('counts the RTP streams of a query reply the kernel forwards ("kernelized")', () => {
    const stream = (flags: string[]): Reply => ({ 'local port': 1, flags });
    const reply: Reply = {
      result: 'ok',
      tags: {
        a: { medias: [{ streams: [stream(['RTP', 'filled', 'confirmed', 'kernelized']), stream(['RTCP', 'filled'])] }] },
        b: { medias: [{ streams: [stream(['RTP', 'filled', 'confirmed']), stream(['RTCP'])] }] },
      },
    };
    expect(kernelizedStreams(reply)).toEqual({ rtp: 2, kernelized: 1 });
  });
});

describe('SoftirqAccounting', () => {
  it('when the meter must not run: the body still runs, no counts, and it says why', async () => {
    const accounting = new SoftirqAccounting('no --relay-pid: the relay may be on another host');
    let ran = false;
    const out = await accounting.around(null, async (onSpawn) => {
      onSpawn(12345); // no meter: a no-op
      ran = true;
      return 7;
    });
    expect(ran).toBe(true);
    expect(out).toEqual({ value: 7, netrx: null });
    expect(accounting.whyNot).toBe('no --relay-pid: the relay may be on another host');
  });
});
