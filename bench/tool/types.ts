/**
 * The shapes the benchmark passes between its parts: what the C generator prints per run, one measured
 * step (a row of the report), and the saved results file a report is rendered from.
 */
import type { Comparison, RepeatFigures } from './noise';
import type { NetRxBaseline, NetRxCounts } from './softirq';

/** SRTP counters of one loadgen run (bench/loadgen.c). */
export interface LoadgenSrtp {
  tx_live: number;
  rx_unchecked: number;
  tx_errors: number;
  rx_ok: number;
  rx_auth_fail: number;
  rx_replay_fail: number;
  rx_other_fail: number;
}

/** One line of JSON printed by bench/bin/loadgen. */
export interface LoadgenResult {
  streams: number;
  sockets: number;
  rate_target: number;
  sent: number;
  received: number;
  loss_pct: number;
  offered_pps: number;
  forwarded_pps: number;
  active_s: number;
  lat_p50_us: number;
  lat_p99_us: number;
  /** CPU seconds of --watch-pid over the run; negative when not watched. */
  relay_cpu_s: number;
  /** Clock ticks per second of that figure (/proc/<pid>/stat counts whole ticks: its resolution). */
  clk_tck?: number;
  silent_streams: number;
  foreign?: number;
  gen_cpu_s?: number;
  srtp?: LoadgenSrtp;
  per_stream_received?: number[];
}

/** Where the CPU figure of a step came from. */
export type CpuSourceKind = 'proc' | 'metrics' | 'metrics-io-threads' | 'none';

/** One measured rate step: a row of the table and a point of each chart. */
export interface StepRow {
  /** Forwarder name as listed in the table (e.g. `ngrelay`, `rtpengine-srtp-rtp`, `ngrelay ×2 threads`). */
  name: string;
  calls: number;
  /** Target rate, pps; 0 = as fast as the generator goes. */
  rate: number;
  r: LoadgenResult;
  /** Relay CPU seconds over the step; null when the tool cannot see the relay ("n/a"). */
  cpuSeconds: number | null;
  cpuSource: CpuSourceKind;
  /** Set on the last step of a block: whether every stream forwards again at a low rate. */
  overload: string | null;
  /** NET_RX softirq counts over the step (bench/bin/softirq-meter); null/absent when the meter did not run. */
  netrx?: NetRxCounts | null;
  /** NET_RX softirq µs per forwarded packet charged to the relay (softirq.ts softirqUsPerPacket); null = n/a. */
  softirqUs?: number | null;
  /** --repeat=N: the figures of each of the step's N runs (the row shows the median one); absent = one run. */
  repeats?: RepeatFigures[];
  /** Steal time (runner.ts unstolenRun): runs measured again because the hypervisor took a core, and the most it took of one in a run kept, %. */
  steal?: StepSteal;
}

export interface StepSteal {
  reruns: number;
  worstKeptPct: number;
}

export interface SrtpVerify {
  ok: boolean;
  sent: number;
  received: number;
  loss_pct: number;
  silent: number;
  minPerStream: number;
  maxPerStream: number;
  srtp: LoadgenSrtp;
  relayErrorsDuring: number | string;
}

/** Per (forwarder, calls) extras: SRTP correctness check, recording counters. */
export interface BlockInfo {
  name: string;
  calls: number;
  /** Recording/SRTP blocks: the plain row they are compared with, and what the row does. */
  base?: string;
  what?: string;
  verify?: SrtpVerify;
  afterOverloadSrtp?: LoadgenSrtp;
  extra?: { text: string; written?: number; dropped?: number };
}

export interface MachineInfo {
  date: string;
  kernel: string;
  cpuModel: string;
  cores: number;
  hostname: string;
}

/** Everything a run measured; saved as JSON first so a report bug cannot lose a run. */
export interface BenchResults {
  info: MachineInfo;
  /** How the relays ran and were measured, one line each (shown at the top of the report). */
  setup: string[];
  stepSeconds: number;
  loadNote: string;
  ceiling: LoadgenResult | null;
  ceilingGso: LoadgenResult | null;
  srtpCeiling: { plain: LoadgenResult; gso: LoadgenResult } | null;
  rows: StepRow[];
  blocks: BlockInfo[];
  notes: string[];
  /** Generator-only NET_RX per packet (generator -> sink) subtracted from every row; null/absent = not measured. */
  netrxBaseline?: NetRxBaseline | null;
  /** --repeat: runs per step (absent = 1). */
  repeat?: number;
  /** --compare-with: this run's steps against a saved run's; absent = not compared. */
  comparison?: Comparison | null;
}
