/**
 * Bytes allocated per cycle, by whose code allocated them, for `control-inproc --allocation`: V8's sampling
 * heap profiler with the objects that scavenges and major GCs collected kept in the profile (a command's
 * garbage is what makes the scavenges that make the relay's p99 tail; bench/README). Each sample is charged
 * to the deepest frame of its stack that is the relay's (`dist/`) or the bench's own code, so builtins such
 * as Buffer.concat count for whoever called them.
 */
import { Session } from 'node:inspector';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  callFrame: CallFrame;
  selfSize: number;
  children: ProfileNode[];
}
interface SamplingHeapProfile {
  head: ProfileNode;
}

/** Sampling interval in bytes: V8's default (32 kB) needs ~100k cycles for stable figures per function. */
const SAMPLING_INTERVAL = 4096;

export class AllocationSampling {
  private readonly session = new Session();

  constructor(private readonly distDir: string) {}

  private post<T>(method: string, params?: object): Promise<T> {
    return new Promise((resolve, reject) => {
      this.session.post(method, params ?? {}, (err, result) => (err ? reject(err) : resolve(result as T)));
    });
  }

  async start(): Promise<void> {
    this.session.connect();
    await this.post('HeapProfiler.startSampling', {
      samplingInterval: SAMPLING_INTERVAL,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  /** Stops sampling; returns the lines to print (total, relay, bench, then the relay's top functions). */
  async stop(cycles: number, top = 20): Promise<string[]> {
    const { profile } = await this.post<{ profile: SamplingHeapProfile }>('HeapProfiler.stopSampling');
    this.session.disconnect();
    const byFrame = new Map<string, number>();
    let relay = 0;
    let bench = 0;
    let other = 0;
    const walk = (node: ProfileNode, owner: CallFrame | null): void => {
      const url = node.callFrame.url;
      const mine = url.includes(this.distDir) || url.includes(`${path.sep}bench${path.sep}`) ? node.callFrame : null;
      const charged = mine ?? owner;
      if (node.selfSize > 0) {
        if (charged === null) other += node.selfSize;
        else if (charged.url.includes(this.distDir)) {
          relay += node.selfSize;
          const key = `${charged.functionName || '(anonymous)'} ${path.relative(this.distDir, charged.url.replace(/^file:\/\//, ''))}:${charged.lineNumber + 1}`;
          byFrame.set(key, (byFrame.get(key) ?? 0) + node.selfSize);
        } else bench += node.selfSize;
      }
      for (const child of node.children) walk(child, charged);
    };
    walk(profile.head, null);
    const kb = (bytes: number): string => (bytes / cycles / 1024).toFixed(1);
    const lines = [`allocated per cycle: relay ${kb(relay)} kB, bench ${kb(bench)} kB, other ${kb(other)} kB (sampled every ${SAMPLING_INTERVAL} B)`];
    for (const [key, bytes] of [...byFrame].sort((a, b) => b[1] - a[1]).slice(0, top)) {
      lines.push(`  ${kb(bytes).padStart(6)} kB  ${key}`);
    }
    return lines;
  }
}
