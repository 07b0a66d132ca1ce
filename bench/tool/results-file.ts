/**
 * Reads a saved results file: this tool's BenchResults, or the JSON of the former bench/run.js (same
 * loadgen figures; CPU in r.relay_cpu_s, no setup lines), so older runs render as charts too.
 */
import fs from 'node:fs';
import { FORWARDERS } from './forwarders';
import { NetRxCounts, softirqUsPerPacket } from './softirq';
import type { BenchResults, BlockInfo, LoadgenResult, StepRow } from './types';

export class ResultsFileError extends Error {
  override readonly name = 'ResultsFileError';
}

interface LegacyResults {
  info: { date: string; kernel: string; cpuModel: string; cores: number };
  opts: { stepSeconds: number };
  loadNote?: string;
  ceiling?: LoadgenResult;
  ceilingGso?: LoadgenResult;
  srtpCeil?: { plain: LoadgenResult; gso: LoadgenResult } | null;
  /** r.netrx / r.netrx_base_ns_per_pkt: its NET_RX softirq meter (the ngrelay-kernel row's run.js, H4). */
  rows: { name: string; calls: number; rate: number; r: LoadgenResult & { netrx?: NetRxCounts | null; netrx_base_ns_per_pkt?: number | null }; overload: string | null }[];
  blocks?: BlockInfo[];
  notes?: string[];
}

function fromLegacy(old: LegacyResults): BenchResults {
  const rows: StepRow[] = old.rows.map((x) => ({
    ...x,
    cpuSeconds: x.r.relay_cpu_s >= 0 ? x.r.relay_cpu_s : null,
    cpuSource: x.r.relay_cpu_s >= 0 ? 'proc' : 'none',
    netrx: x.r.netrx ?? null,
    // run.js ran on kernels without CONFIG_IRQ_TIME_ACCOUNTING: the relay's own NET_RX was in its process CPU.
    softirqUs: softirqUsPerPacket(x.r.netrx ?? null, x.r.netrx_base_ns_per_pkt ?? null, x.r.sent, x.r.received, true),
  }));
  const blocks = (old.blocks ?? []).map((b): BlockInfo => {
    const extra = FORWARDERS[b.name]?.extra;
    return extra ? { ...b, base: extra.base, what: extra.what } : b;
  });
  return {
    info: { ...old.info, hostname: 'unknown' },
    setup: [
      '- relay pinned to core 1 (whole process, --num-threads=1); generator+sink (one thread) and runner on core 0',
      `- 172-byte RTP (PCMA), one stream per call direction, ${old.opts.stepSeconds} s per step; CPU from /proc/<pid>/stat (utime+stime) over the step`,
      '- (run by the former bench/run.js)',
    ],
    stepSeconds: old.opts.stepSeconds,
    loadNote: old.loadNote ?? '',
    ceiling: old.ceiling ?? null,
    ceilingGso: old.ceilingGso ?? null,
    srtpCeiling: old.srtpCeil ?? null,
    rows,
    blocks,
    notes: old.notes ?? [],
  };
}

export function readResults(file: string): BenchResults {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ResultsFileError(`${file}: not a readable JSON file (${(err as Error).message})`);
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray((parsed as { rows?: unknown }).rows)) throw new ResultsFileError(`${file}: no rows: not a benchmark results file`);
  if ('setup' in parsed) return parsed as BenchResults;
  if ('opts' in parsed) return fromLegacy(parsed as LegacyResults);
  throw new ResultsFileError(`${file}: neither ngrelay-bench nor bench/run.js results`);
}
