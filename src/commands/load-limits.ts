/**
 * rtpengine's `--max-sessions`, `--max-load`, `--max-cpu` and `--max-bandwidth`: while one is reached, an
 * offer that would create a NEW call is refused with loadLimitReply() (ng/load-limit.ts); re-offers, answers
 * and every other command of existing calls go on. Checked in rtpengine's order (sessions, load, CPU,
 * bandwidth); the first one reached names the refusal. `set maxsessions N` (rtpengine-ctl) changes the
 * session limit live.
 */
import os from 'node:os';
import type { LoadLimitConfig } from '../config/types';
import { PARALLEL_SESSION_LIMIT_REASON } from '../ng/load-limit';

export const SESSION_LIMIT_MESSAGE = PARALLEL_SESSION_LIMIT_REASON;
export const LOAD_LIMIT_MESSAGE = 'Load limit exceeded';
export const CPU_LIMIT_MESSAGE = 'CPU usage limit exceeded';
export const BANDWIDTH_LIMIT_MESSAGE = 'Bandwidth limit exceeded';

/** What the limits are compared with; injectable so tests need not load the machine. */
export interface LoadProbe {
  /** 1-minute load average. */
  loadAverage(): number;
  /** CPU usage in percent of all cores, over the last interval. */
  cpuPercent(): number;
  /** Bytes relayed per second, over the last interval. */
  bytesPerSecond(): number;
}

/** Thrown by LoadLimits.setMaxSessions for a value rtpengine refuses too. */
export class LimitValueError extends Error {
  override readonly name = 'LimitValueError';
}

export class LoadLimits {
  private limits: LoadLimitConfig;

  constructor(
    limits: LoadLimitConfig,
    private readonly probe: LoadProbe,
  ) {
    this.limits = { ...limits };
  }

  get current(): Readonly<LoadLimitConfig> {
    return this.limits;
  }

  /** -1 = no limit, 0 = refuse every new call. */
  setMaxSessions(n: number): void {
    if (!Number.isSafeInteger(n) || n < -1) throw new LimitValueError('either positive or -1 values allowed');
    this.limits = { ...this.limits, maxSessions: n };
  }

  /** Why a new call must be refused now, or null when it may start. `sessions`: calls running now. */
  refusal(sessions: number): string | null {
    const l = this.limits;
    if (l.maxSessions >= 0 && sessions >= l.maxSessions) return SESSION_LIMIT_MESSAGE;
    if (l.maxLoad > 0 && this.probe.loadAverage() >= l.maxLoad) return LOAD_LIMIT_MESSAGE;
    if (l.maxCpu > 0 && this.probe.cpuPercent() >= l.maxCpu) return CPU_LIMIT_MESSAGE;
    if (l.maxBandwidth > 0 && this.probe.bytesPerSecond() >= l.maxBandwidth) return BANDWIDTH_LIMIT_MESSAGE;
    return null;
  }
}

/** Minimum time between two samples of the rates, so a burst of offers does not measure a 0 ms interval. */
const SAMPLE_MS = 1000;

/** The system's figures: os.loadavg(), CPU time from os.cpus(), relayed bytes from a counter. */
export class SystemLoadProbe implements LoadProbe {
  private cpu = { busy: 0, total: 0, percent: 0, atMs: -Infinity };
  private bw = { bytes: 0, rate: 0, atMs: -Infinity };

  constructor(
    private readonly relayedBytes: () => number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.cpuPercent();
    this.bytesPerSecond();
  }

  loadAverage(): number {
    return os.loadavg()[0] ?? 0;
  }

  cpuPercent(): number {
    const t = this.now();
    if (t - this.cpu.atMs < SAMPLE_MS) return this.cpu.percent;
    let busy = 0;
    let total = 0;
    for (const c of os.cpus()) {
      const sum = c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
      total += sum;
      busy += sum - c.times.idle;
    }
    const dTotal = total - this.cpu.total;
    const percent = this.cpu.atMs === -Infinity || dTotal <= 0 ? 0 : ((busy - this.cpu.busy) / dTotal) * 100;
    this.cpu = { busy, total, percent, atMs: t };
    return percent;
  }

  bytesPerSecond(): number {
    const t = this.now();
    if (t - this.bw.atMs < SAMPLE_MS) return this.bw.rate;
    const bytes = this.relayedBytes();
    const rate = this.bw.atMs === -Infinity ? 0 : ((bytes - this.bw.bytes) * 1000) / (t - this.bw.atMs);
    this.bw = { bytes, rate, atMs: t };
    return rate;
  }
}
