/**
 * NET_RX softirq accounting: bench/bin/softirq-meter (bench/softirq-meter.c + .bpf.c, a BPF program on the
 * softirq_entry/exit raw tracepoints) runs around every measured loadgen run and says how many ns of
 * NET_RX work ran in whose context: the generator's (comm "loadgen"), the relay's, anyone else's
 * (ksoftirqd, idle). The kernel fast path forwards entirely in that work, so a row's honest cost is its
 * process CPU plus the NET_RX work that process CPU does not contain, minus what the generator alone
 * costs (its generator -> sink baseline). See bench/README.md "Accounting".
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { SOFTIRQ_METER, SOFTIRQ_METER_OBJ } from './paths';
import { stopChild, track } from './processes';

/** What the meter prints when it stops (ns summed over every CPU, and the number of NET_RX runs). */
export interface NetRxCounts {
  gen_ns: number;
  relay_ns: number;
  other_ns: number;
  runs: number;
}

/** Generator-only NET_RX ns per packet sent (generator -> sink, no relay): plain and with UDP GSO (the `max` step). */
export interface NetRxBaseline {
  plainNsPerPacket: number;
  gsoNsPerPacket: number;
}

export class SoftirqMeterError extends Error {
  override readonly name = 'SoftirqMeterError';
}

/** The counts line of the meter's output ("ready\n{...}\n"); null when there is none or it is malformed. */
export function parseMeterOutput(out: string): NetRxCounts | null {
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) return null;
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return null;
  }
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  const keys = ['gen_ns', 'relay_ns', 'other_ns', 'runs'] as const;
  if (!keys.every((k) => typeof o[k] === 'number' && Number.isFinite(o[k]) && (o[k] as number) >= 0)) return null;
  return { gen_ns: o.gen_ns as number, relay_ns: o.relay_ns as number, other_ns: o.other_ns as number, runs: o.runs as number };
}

/** The baseline from the two generator-only runs; null when either was not metered or sent nothing. */
export function netRxBaseline(plain: { sent: number; netrx: NetRxCounts | null }, gso: { sent: number; netrx: NetRxCounts | null }): NetRxBaseline | null {
  if (!plain.netrx || !gso.netrx || plain.sent <= 0 || gso.sent <= 0) return null;
  return { plainNsPerPacket: plain.netrx.gen_ns / plain.sent, gsoNsPerPacket: gso.netrx.gen_ns / gso.sent };
}

/**
 * Softirq µs per forwarded packet charged to the relay: NET_RX in the generator's context beyond the
 * generator-only baseline for the packets it sent, plus all of it in anyone else's context, plus (only
 * when the kernel accounts irq time apart from task time, CONFIG_IRQ_TIME_ACCOUNTING) the relay's own
 * context, which otherwise is in its process CPU already. Never negative; null when not measurable.
 */
export function softirqUsPerPacket(
  netrx: NetRxCounts | null,
  baseNsPerPacket: number | null,
  sent: number,
  received: number,
  relayContextInProcessCpu: boolean,
): number | null {
  if (!netrx || baseNsPerPacket === null || received <= 0) return null;
  const ns = netrx.gen_ns - baseNsPerPacket * sent + netrx.other_ns + (relayContextInProcessCpu ? 0 : netrx.relay_ns);
  return Math.max(0, ns) / 1e3 / received;
}

/**
 * Whether softirq time that runs in a task's context is in that task's utime+stime: true unless the
 * kernel was built with CONFIG_IRQ_TIME_ACCOUNTING=y (then irq time is accounted on its own). Read from
 * /proc/config.gz; without it, true (the default of most distribution kernels; the report says which).
 */
export function softirqInTaskTime(configGz = '/proc/config.gz'): { inTaskTime: boolean; known: boolean } {
  try {
    const config = zlib.gunzipSync(fs.readFileSync(configGz)).toString('utf8');
    return { inTaskTime: !/^CONFIG_IRQ_TIME_ACCOUNTING=y$/m.test(config), known: true };
  } catch {
    return { inTaskTime: true, known: false };
  }
}

/** A running meter: stop() closes its stdin, it prints its counts and exits. */
export interface SoftirqMeter {
  /** Names the generator's process (else the meter takes any process called "loadgen" for it). */
  generator(pid: number): void;
  stop(): Promise<NetRxCounts>;
}

/**
 * Starts the meter, counting until stop(); the relay's PID (0 = none) splits its context off. Rejects
 * with a SoftirqMeterError saying why when it is not built or cannot load (no CAP_BPF, no BPF).
 */
export async function startSoftirqMeter(relayPid: number | null): Promise<SoftirqMeter> {
  if (!fs.existsSync(SOFTIRQ_METER) || !fs.existsSync(SOFTIRQ_METER_OBJ))
    throw new SoftirqMeterError('bench/bin/softirq-meter not built (bench/build.sh needs clang and libbpf-dev)');
  const child = track(spawn(SOFTIRQ_METER, [String(relayPid ?? 0), SOFTIRQ_METER_OBJ], { stdio: ['pipe', 'pipe', 'pipe'] }));
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const ready = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    const check = (): void => {
      if (/^ready$/m.test(out)) {
        clearTimeout(timer);
        resolve(true);
      }
    };
    child.stdout.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(/^ready$/m.test(out));
    });
  });
  if (!ready) {
    await stopChild(child, 'softirq-meter');
    throw new SoftirqMeterError(`softirq-meter did not start: ${err.trim().split('\n').slice(-1)[0] || 'no "ready" within 5 s'}`);
  }
  let stopped: Promise<NetRxCounts> | null = null;
  return {
    generator: (pid) => {
      if (stopped === null) child.stdin.write(`gen ${pid}\n`);
    },
    // Idempotent: the first call closes stdin, every call gets the same counts.
    stop: () =>
      (stopped ??= (async () => {
        child.stdin.end();
        const guard = setTimeout(() => void stopChild(child, 'softirq-meter'), 5000);
        const code = await exited;
        clearTimeout(guard);
        const counts = parseMeterOutput(out);
        if (!counts) throw new SoftirqMeterError(`softirq-meter printed no counts (exit ${code}): ${err.trim().slice(0, 200)}`);
        return counts;
      })()),
  };
}

/**
 * Runs `body` with the meter counting around it: the counts, or null and why not. The first failure
 * to start is remembered, so a machine without the meter is reported once and not retried every step.
 */
export class SoftirqAccounting {
  private unavailable: string | null = null;

  /** `disabledBecause`: why the meter must not run at all (a relay without a PID on this host), or null. */
  constructor(disabledBecause: string | null = null) {
    this.unavailable = disabledBecause;
  }

  /** Why the meter did not run (null when it did or was not tried yet). */
  get whyNot(): string | null {
    return this.unavailable;
  }

  /** `body` gets a callback to name the generator's PID as soon as it is spawned. */
  async around<T>(relayPid: number | null, body: (generatorPid: (pid: number) => void) => Promise<T>): Promise<{ value: T; netrx: NetRxCounts | null }> {
    let meter: SoftirqMeter | null = null;
    if (this.unavailable === null) {
      try {
        meter = await startSoftirqMeter(relayPid);
      } catch (err) {
        if (!(err instanceof SoftirqMeterError)) throw err;
        this.unavailable = err.message;
      }
    }
    try {
      const value = await body((pid) => meter?.generator(pid));
      let netrx: NetRxCounts | null = null;
      if (meter) {
        try {
          netrx = await meter.stop();
        } catch (err) {
          if (!(err instanceof SoftirqMeterError)) throw err;
          this.unavailable = err.message;
        }
      }
      return { value, netrx };
    } finally {
      if (meter) await meter.stop().catch(() => null);
    }
  }
}
