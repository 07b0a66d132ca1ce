/**
 * `ngrelay-bench` pointed at relays it did not start: a real rtpengine 10.5 on loopback with --listen-http
 * (its /metrics has no process CPU, so the CPU column must say n/a; with --relay-pid it comes from /proc),
 * and an ngrelay whose /metrics has its I/O threads' CPU. Short bounded runs (two 1 s steps, small rates).
 * The HTML report must open in headless Chromium without console errors and draw non-blank charts.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer from 'puppeteer-core';
import { stepTable } from '../../bench/tool/report-md';
import { startSoftirqMeter } from '../../bench/tool/softirq';
import type { BenchResults } from '../../bench/tool/types';
import { BenchRun, phoneArgs as phonesOn, runBench as runBenchIn, VethPair } from '../support/bench-run';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';
import { NGRELAY_BIN, startNgrelay, REPO_ROOT } from '../support/ngrelay';
import { ManagedProcess, startProcess } from '../support/process';
import type { RelayUnderTest } from '../support/relay';
import { startRtpengine } from '../support/rtpengine';

const CHROMIUM = '/usr/bin/chromium';
// Phones of the bench runs: own loopback addresses, so they cannot meet other tests' sockets.
const PHONE_A = '127.0.0.61';
const PHONE_B = '127.0.0.62';

let outRoot = '';

/** Runs in the page (a string: the tests compile without the DOM library). */
const INK_COUNTER = `(() => {
  const canvas = document.querySelector('#charts canvas');
  if (!canvas) return 'no canvas in #charts';
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0, series = 0;
  for (let i = 0; i < data.length; i += 4) {
    const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
    if (a > 0 && (r < 235 || g < 235 || b < 235)) inked++;
    if (Math.abs(r - 217) < 12 && Math.abs(g - 78) < 12 && Math.abs(b - 43) < 12) series++;
  }
  return { inked, series };
})()`;

/** The cells of an HTML table of the report, head row first (runs in the page). */
const tableCells = (id: string): string => `[...document.querySelectorAll('#${id} tr')].map((tr) => [...tr.cells].map((c) => c.textContent))`;

const runBench = (args: string[], netns?: string): Promise<BenchRun> => runBenchIn(outRoot, args, netns);
const phoneArgs = (): Promise<string[]> => phonesOn(PHONE_A, PHONE_B);

const SHORT = ['--calls=2', '--rates=2000,4000', '--step-seconds=1', '--no-ceiling'];

function expectFiguresForwarded(run: BenchRun): BenchResults {
  expect(run.code, `${run.stderr}\n${run.stdout}`).toBe(0);
  const res = run.results as BenchResults;
  expect(res).not.toBeNull();
  expect(res.rows).toHaveLength(2);
  for (const row of res.rows) {
    expect(row.r.sent).toBeGreaterThan(0);
    expect(row.r.received).toBeGreaterThan(0.95 * row.r.sent);
    expect(row.r.lat_p50_us).toBeGreaterThan(0);
  }
  expect(run.stdout).toContain('| forwarder | calls | offered pps |');
  // The progress line with the step counter and the time left.
  expect(run.stderr).toMatch(/\[2\/2 \d+s left\]/);
  return res;
}

beforeAll(() => {
  outRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-bench-test-'));
});

afterAll(() => {
  if (outRoot) fs.rmSync(outRoot, { recursive: true, force: true });
});

describe('ngrelay-bench against relays it did not start', () => {
  let rtpengine: RelayUnderTest;
  let rtpengineHttp: number;
  let ngrelay: RelayUnderTest;
  let ngrelayHttp: number;
  let htmlReport: string | null = null;
  let reportResults: BenchResults | null = null;

  beforeAll(async () => {
    rtpengineHttp = await freeTcpPort();
    rtpengine = await startRtpengine({ ngPort: await freeUdpPort(), ...(await freeMediaRange(40)), extraArgs: [`--listen-http=127.0.0.1:${rtpengineHttp}`] });
    ngrelayHttp = await freeTcpPort();
    ngrelay = await startNgrelay({ ngPort: await freeUdpPort(), ...(await freeMediaRange(40)), extraArgs: [`--listen-http=127.0.0.1:${ngrelayHttp}`] });
  });

  afterAll(async () => {
    await rtpengine?.stop();
    await ngrelay?.stop();
  });

  it('rtpengine 10.5 with --metrics: figures measured, CPU "n/a" (its /metrics has no process CPU)', async () => {
    const run = await runBench([`--ng=127.0.0.1:${rtpengine.ngPort}`, `--metrics=http://127.0.0.1:${rtpengineHttp}/metrics`, '--name=rtpengine-ext', ...(await phoneArgs()), ...SHORT]);
    const res = expectFiguresForwarded(run);
    for (const row of res.rows) {
      expect(row.name).toBe('rtpengine-ext');
      expect(row.cpuSeconds).toBeNull();
      expect(row.cpuSource).toBe('none');
      expect(row.softirqUs).toBeNull();
    }
    // CPU %, CPU-µs, softirq and total: all n/a (no PID: the softirq meter is not run for a relay maybe elsewhere).
    expect(run.stdout).toMatch(/\| rtpengine-ext \| 2 \| [^|]+ \| [^|]+ \| [^|]+ \| n\/a \| n\/a \| n\/a \| n\/a \|/);
    expect(res.notes.join('\n')).toContain('softirq not measured (no --relay-pid');
    htmlReport = run.html;
    reportResults = res;
    expect(run.svg).toContain('<svg');
  }, 120_000);

  it('rtpengine 10.5 with --relay-pid: CPU per packet from /proc', async () => {
    const run = await runBench([`--ng=127.0.0.1:${rtpengine.ngPort}`, `--relay-pid=${rtpengine.process.pid}`, ...(await phoneArgs()), ...SHORT]);
    const res = expectFiguresForwarded(run);
    for (const row of res.rows) {
      expect(row.cpuSource).toBe('proc');
      expect(row.cpuSeconds).toBeGreaterThan(0);
      // The NET_RX softirq meter ran around the step (global setup installs clang + libbpf-dev, build.sh builds it).
      expect(row.netrx?.runs).toBeGreaterThan(0);
      expect(row.softirqUs).toBeGreaterThanOrEqual(0);
    }
    expect(res.netrxBaseline?.plainNsPerPacket).toBeGreaterThan(0);
    expect(res.setup.join('\n')).toContain('softirq µs/packet: NET_RX softirq time');
    expect(res.notes.filter((n) => !n.startsWith('WARNING'))).toEqual([]);
  }, 120_000);

  it('ngrelay with --metrics: CPU of the whole process from its process_cpu_seconds_total', async () => {
    const run = await runBench([`--ng=127.0.0.1:${ngrelay.ngPort}`, `--metrics=http://127.0.0.1:${ngrelayHttp}/metrics`, ...(await phoneArgs()), ...SHORT]);
    const res = expectFiguresForwarded(run);
    for (const row of res.rows) {
      expect(row.cpuSource).toBe('metrics');
      expect(row.cpuSeconds).toBeGreaterThan(0);
    }
  }, 120_000);

  it('the HTML report opens in headless Chromium without errors and its charts are drawn', async () => {
    expect(htmlReport, 'the first test wrote a report').not.toBeNull();
    const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(String(e)));
      await page.setViewport({ width: 1600, height: 900 });
      await page.goto(`file://${htmlReport as string}`, { waitUntil: 'load' });
      const shot = path.join(outRoot, 'report.png');
      await page.screenshot({ path: shot });
      expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
      // ECharts draws on a canvas: count its pixels that are not background (white or transparent), and those
      // in the first forwarder's series colour (#d94e2b): lines were drawn, not only axes and titles.
      const ink = (await page.evaluate(INK_COUNTER)) as { inked: number; series: number } | string;
      expect(errors).toEqual([]);
      expect(ink).not.toBeTypeOf('string');
      const { inked, series: seriesInk } = ink as { inked: number; series: number };
      expect(inked).toBeGreaterThan(5000);
      expect(seriesInk).toBeGreaterThan(100);
      // The step table is an HTML table with the markdown table's head and cells (one source: stepTable).
      const steps = stepTable((reportResults as BenchResults).rows);
      expect(await page.evaluate(tableCells('steps'))).toEqual([steps.head, ...steps.rows]);
      expect(steps.rows[0]?.[0]).toBe('rtpengine-ext');
      expect(await page.evaluate(`document.querySelector('pre') === null`)).toBe(true);
      // A click on "forwarded pps" sorts by it, up; a second click, down.
      const forwarded = steps.head.indexOf('forwarded pps');
      const column = async (): Promise<number[]> =>
        ((await page.evaluate(`[...document.querySelectorAll('#steps tbody tr')].map((tr) => tr.cells[${forwarded}].textContent)`)) as string[]).map((c) =>
          Number(c.replace('k', '')) * (c.endsWith('k') ? 1000 : 1),
        );
      await page.click(`#steps th[data-col="${forwarded}"]`);
      const up = await column();
      expect(up).toEqual([...up].sort((a, b) => a - b));
      await page.click(`#steps th[data-col="${forwarded}"]`);
      const down = await column();
      expect(down).toEqual([...up].reverse());
      expect(down[0]).toBeGreaterThan(down[1] as number);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

/**
 * ngrelay in a network namespace, reached over a veth from the tool in another one: the operator's case of a
 * relay on another address. Both namespaces are ours (names with this PID), so nothing is added to the host's
 * network; deleting them removes the veth and its addresses.
 */
describe('ngrelay-bench against an ngrelay in a network namespace, over a veth', () => {
  const net = new VethPair(`ngrb-${process.pid}-tool`, `ngrb-${process.pid}-relay`);
  const nsTool = net.tool;
  const nsRelay = net.relay;
  const TOOL_IP = VethPair.TOOL_IP;
  const RELAY_IP = VethPair.RELAY_IP;
  const NG_PORT = 22999;
  let relay: ManagedProcess | undefined;

  beforeAll(async () => {
    await net.create();
    relay = startProcess({
      name: 'ngrelay in netns',
      command: 'ip',
      args: ['netns', 'exec', nsRelay, process.execPath, NGRELAY_BIN, '--config-file=none', `--interface=${RELAY_IP}`, `--listen-ng=${RELAY_IP}:${NG_PORT}`, '--port-min=30000', '--port-max=30099', '--foreground', '--log-stderr'],
      cwd: REPO_ROOT,
    });
  });

  afterAll(async () => {
    await relay?.stop();
    await net.remove();
  });

  it('sets the calls up over ng on the veth, forwards, and reads the relay CPU by its PID', async () => {
    const pid = (relay as ManagedProcess).pid;
    // The tool waits for the relay's ng pong itself (up to 10 s) before setting calls up.
    const run = await runBench([`--ng=${RELAY_IP}:${NG_PORT}`, `--local=${TOOL_IP}`, `--relay-pid=${pid}`, '--name=ngrelay-netns', ...SHORT], nsTool);
    const res = expectFiguresForwarded(run);
    for (const row of res.rows) {
      expect(row.cpuSource).toBe('proc');
      expect(row.cpuSeconds).toBeGreaterThan(0);
      expect(row.softirqUs).toBeGreaterThanOrEqual(0); // metered over the veth too
    }
    expect(res.setup.join('\n')).toContain(`ng ${RELAY_IP}:${NG_PORT}, phones on ${TOOL_IP} / ${TOOL_IP}`);
    expect((relay as ManagedProcess).hasExited, (relay as ManagedProcess).describe()).toBe(false);
  }, 120_000);
});

describe('the NET_RX softirq meter (bench/bin/softirq-meter, real BPF on the softirq tracepoints)', () => {
  /** 3000 datagrams to a socket of this process on loopback: their NET_RX work runs in this process's send calls. */
  async function loopbackTraffic(): Promise<void> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    const port = sock.address().port;
    const payload = Buffer.alloc(172);
    try {
      for (let i = 0; i < 3000; i++) await new Promise<void>((resolve, reject) => sock.send(payload, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    } finally {
      sock.close();
    }
  }

  beforeAll(() => {
    // The tool builds it on its own first run; this test may run first.
    execFileSync('sh', [path.join(REPO_ROOT, 'bench', 'build.sh')], { stdio: 'ignore' });
  }, 120_000);

  it('counts NET_RX in the context of the process it is told is the generator', async () => {
    const meter = await startSoftirqMeter(null);
    meter.generator(process.pid);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the "gen PID" line reaches the meter
    await loopbackTraffic();
    const counts = await meter.stop();
    expect(counts.runs).toBeGreaterThan(0);
    expect(counts.gen_ns).toBeGreaterThan(0);
    expect(counts.relay_ns).toBe(0);
    // stop() is idempotent: the same counts.
    expect(await meter.stop()).toBe(counts);
  }, 30_000);

  it('splits off the relay\'s context by its PID', async () => {
    const meter = await startSoftirqMeter(process.pid);
    await loopbackTraffic();
    const counts = await meter.stop();
    expect(counts.relay_ns).toBeGreaterThan(0);
  }, 30_000);
});
