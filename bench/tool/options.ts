/** `ngrelay-bench` command line: parsed into BenchOptions, or a BenchUsageError saying what is wrong. */
import { DEFAULT_FORWARDERS, ExternalRelay, FORWARDERS } from './forwarders';
import type { TopologyKind } from './topology';

export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

export interface BenchOptions {
  quick: boolean;
  /** Names from FORWARDERS (relays the tool starts); empty when `external` is set. */
  forwarders: string[];
  /** A relay already running (--ng=...). */
  external: (ExternalRelay & { label: string }) | null;
  /** Addresses the phones send from and receive on: side A, side B (the same one twice when one is given). */
  local: [string, string];
  /** First phone port (4 per side, even, on each --local address). */
  phonePort: number;
  calls: number[];
  /** Call counts of the recording/SRTP forwarders. */
  extraCalls: number[];
  stepSeconds: number;
  /** Explicit rate steps (pps, 0 = generator ceiling); null = stepped up to the ceiling. */
  rates: number[] | null;
  maxSteps: number;
  /** I/O thread counts of ngrelay and rtpengine (--num-threads); [1] unless --threads is given. */
  threads: number[];
  outDir: string | null;
  /** Re-render a saved results file instead of running. */
  report: string | null;
  /** Skip the generator-ceiling measurement (external relays: the steps are given with --rates). */
  noCeiling: boolean;
  /** Runs per rate step: the row is the median run, the spread of the runs is the report's noise. */
  repeat: number;
  /** A saved results file to check this run's figures against (within the noise), and its forwarder to take. */
  compareWith: string | null;
  compareName: string | null;
  /** Where the packets travel (topology.ts): loopback, or across a veth pair into a network namespace. */
  topology: TopologyKind;
}

export const USAGE = `usage: ngrelay-bench [options]            (npm run bench -- [options])
 relays it starts (one after another, pinned: relay on core 1, generator on core 0):
  --forwarders=${DEFAULT_FORWARDERS.join(',')}
               (all: ${Object.keys(FORWARDERS).join(', ')})
  --threads=1,2          ngrelay and rtpengine with N I/O threads (--num-threads=N) each
  --topology=veth        phones in a network namespace of their own, relays across a veth pair from them
                         (created and removed by the tool; root); default loopback
 a relay already running (ngrelay or rtpengine; on this host or reachable from --local):
  --ng=IP:PORT           its ng control address
  --local=IP[,IP]        the address(es) the phones send from and receive on (A side, B side)
  --phone-port=20000     first phone port (8 ports from there on each --local address)
  --relay-pid=PID        its PID on this host: CPU from /proc/PID/stat
  --metrics=URL          else: CPU from its Prometheus /metrics (process_cpu_seconds_total,
                         ngrelay_io_thread_cpu_seconds_total); neither: CPU "n/a"
  --name=LABEL           row name in the report (default: relay@IP:PORT)
 both:
  --calls=1,100,1000     call counts (with --calls, the recording/SRTP rows use them too)
  --extra-calls=100      call counts of the recording/SRTP rows
  --rates=50000,100000,0 rate steps in pps (0 = as fast as the generator goes; default: 50k up to the ceiling)
  --step-seconds=3       seconds per step (<= 10)
  --repeat=1             runs per step (1..9): the table shows the median run, the report states
                         the spread of the runs as its noise
  --compare-with=FILE.json  check each step against the same step (calls, rate) of a saved run:
                         within the noise of both, or not (exit code 3 when a figure is outside)
  --compare-name=NAME    the forwarder of FILE to compare with (default: FILE's only one, else the same name)
  --quick                smoke run: 1 s steps, rates 50k,100k,max
  --no-ceiling           do not measure the generator ceiling first (needs --rates)
  --out=DIR              where results/report go (default bench/out)
  --report=FILE.json     re-render the report of a saved run (with --compare-with: compared)`;

const list = (value: string, what: string): number[] => {
  const out = value.split(',').map((x) => Number(x.trim()));
  if (out.length === 0 || out.some((x) => !Number.isInteger(x) || x < 0)) throw new BenchUsageError(`${what}: expected a list of whole numbers, got "${value}"`);
  return out;
};

function hostPort(value: string, what: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || !(port > 0 && port < 65536)) throw new BenchUsageError(`${what}: expected IP:PORT, got "${value}"`);
  return { host: m[1] ?? '', port };
}

export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const o: BenchOptions = {
    quick: false,
    forwarders: [...DEFAULT_FORWARDERS],
    external: null,
    local: ['127.0.0.11', '127.0.0.12'],
    phonePort: 20000,
    calls: [1, 100, 1000],
    extraCalls: [100],
    stepSeconds: 3,
    rates: null,
    maxSteps: 9,
    threads: [1],
    outDir: null,
    report: null,
    noCeiling: false,
    repeat: 1,
    compareWith: null,
    compareName: null,
    topology: 'loopback',
  };
  let ng: { host: string; port: number } | null = null;
  let pid: number | null = null;
  let metricsUrl: string | null = null;
  let label: string | null = null;
  let localGiven = false;
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const value = eq < 0 ? '' : arg.slice(eq + 1);
    const need = (): string => {
      if (!value) throw new BenchUsageError(`${key} needs a value (${key}=...)`);
      return value;
    };
    switch (key) {
      case '--help':
      case '-h':
        return 'help';
      case '--quick':
        o.quick = true;
        break;
      case '--forwarders':
        o.forwarders = need().split(',');
        break;
      case '--calls':
        o.calls = o.extraCalls = list(need(), key);
        break;
      case '--extra-calls':
        o.extraCalls = list(need(), key);
        break;
      case '--step-seconds':
        o.stepSeconds = Number(need());
        break;
      case '--rates':
        o.rates = list(need(), key);
        break;
      case '--threads':
        o.threads = list(need(), key);
        break;
      case '--out':
        o.outDir = need();
        break;
      case '--report':
        o.report = need();
        break;
      case '--no-ceiling':
        o.noCeiling = true;
        break;
      case '--repeat':
        o.repeat = Number(need());
        if (!Number.isInteger(o.repeat) || o.repeat < 1 || o.repeat > 9) throw new BenchUsageError(`--repeat: 1..9, got "${value}"`);
        break;
      case '--compare-with':
      case '--compare-name':
        // A saved run to check this one against, and which of its forwarders (noise.ts).
        o[key === '--compare-with' ? 'compareWith' : 'compareName'] = need();
        break;
      case '--topology': {
        const t = need();
        if (t !== 'loopback' && t !== 'veth') throw new BenchUsageError(`--topology: loopback or veth, got "${t}"`);
        o.topology = t;
        break;
      }
      case '--ng':
        ng = hostPort(need(), key);
        break;
      case '--local': {
        const ips = need().split(',');
        if (ips.length > 2) throw new BenchUsageError('--local: one or two addresses');
        o.local = [ips[0] ?? '', ips[1] ?? ips[0] ?? ''];
        localGiven = true;
        break;
      }
      case '--phone-port':
        o.phonePort = Number(need());
        if (!Number.isInteger(o.phonePort) || o.phonePort < 1024 || o.phonePort > 65000) throw new BenchUsageError(`--phone-port: 1024..65000, got "${value}"`);
        break;
      case '--relay-pid':
        pid = Number(need());
        if (!Number.isInteger(pid) || pid <= 0) throw new BenchUsageError(`--relay-pid: expected a PID, got "${value}"`);
        break;
      case '--metrics':
        metricsUrl = need();
        if (!/^http:\/\//.test(metricsUrl)) throw new BenchUsageError(`--metrics: expected an http:// URL, got "${value}"`);
        break;
      case '--name':
        label = need();
        break;
      default:
        throw new BenchUsageError(`unknown option ${arg} (see --help)`);
    }
  }
  if (o.quick) {
    o.stepSeconds = Math.min(o.stepSeconds, 1);
    o.rates ??= [50000, 100000, 0];
  }
  if (!(o.stepSeconds > 0 && o.stepSeconds <= 10)) throw new BenchUsageError('--step-seconds must be in (0, 10]');
  if (o.calls.some((c) => c < 1 || c > 1000) || o.extraCalls.some((c) => c < 1 || c > 1000)) throw new BenchUsageError('call counts must be in 1..1000 (the relay port range holds 8000 ports)');
  if (o.threads.some((t) => t < 1 || t > 64)) throw new BenchUsageError('--threads: 1..64');
  if (o.noCeiling && !o.rates) throw new BenchUsageError('--no-ceiling needs --rates');
  if (o.compareName !== null && o.compareWith === null) throw new BenchUsageError('--compare-name goes with --compare-with');
  if (o.topology === 'veth' && (ng || localGiven)) throw new BenchUsageError('--topology=veth sets the addresses itself: not with --ng or --local');
  if (ng) {
    if (!localGiven) throw new BenchUsageError('--ng needs --local=IP (where the phones send from and receive on)');
    o.external = { ...ng, pid, metricsUrl, label: label ?? `relay@${ng.host}:${ng.port}` };
    o.forwarders = [];
  } else {
    if (pid !== null || metricsUrl !== null) throw new BenchUsageError('--relay-pid/--metrics describe a relay given with --ng');
    for (const f of o.forwarders) if (!FORWARDERS[f]) throw new BenchUsageError(`unknown forwarder ${f} (known: ${Object.keys(FORWARDERS).join(', ')})`);
  }
  return o;
}
