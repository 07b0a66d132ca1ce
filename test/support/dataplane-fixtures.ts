/**
 * Shared by the tests that drive the native data plane directly: stream rules with defaults, endpoints of
 * test parties, runs of free relay ports, and the addon's engine class without NativeDataPlane around it.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RulePacker } from '../../src/dataplane/rule-packing';
import type { Endpoint, StreamRule, StreamSocketSpec } from '../../src/dataplane/types';

/** A rule that forwards nothing to nobody, with `partial` on top; `learning` is each suite's usual mode. */
export function streamRule(partial: Partial<StreamRule>, learning: StreamRule['learning'] = 'heuristic'): StreamRule {
  return {
    expected: null,
    learning,
    strictSource: false,
    mediaHandover: false,
    asymmetric: false,
    sink: null,
    signalGeneration: 1,
    ...partial,
  };
}

export function endpointOf(party: { address: string; port: number }): Endpoint {
  return { family: party.address.includes(':') ? 'IPv6' : 'IPv4', address: party.address, port: party.port };
}

/** /proc/self/task/<tid> of this process's threads whose name starts with `prefix` (the engine names its own). */
export function ownThreads(prefix: string): string[] {
  const out: string[] = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').startsWith(prefix)) out.push(`/proc/self/task/${tid}`);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** True when `port` can be bound on `address` right now (the probe socket is closed again). */
export async function portFree(port: number, address: string): Promise<boolean> {
  const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, address, () => resolve(true));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/**
 * True once `port` can be bound on `address`, probed every 10 ms for up to `timeoutMs`: a batched engine closes a
 * removed socket only when the I/O threads ran the removal's fence (the queued-fence wake-up, ~50 ms).
 */
export async function portFreeWithin(port: number, address: string, timeoutMs = 2000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await portFree(port, address)) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Runs of consecutive free ports (even base) in one range, handed out round the range. Probed, because other
 * relays on this machine (rtpengine for comparison) take ports from a shuffled 30000-40000 range on
 * loopback too.
 */
export class PortRuns {
  private next: number;

  constructor(
    private readonly first: number,
    private readonly last: number,
  ) {
    this.next = first;
  }

  async take(count: number, address = '127.0.0.1'): Promise<number> {
    for (let attempt = 0; attempt < 500; attempt++) {
      const base = this.next;
      this.next += count + (count % 2);
      if (this.next + count > this.last) this.next = this.first;
      let free = base + count - 1 <= this.last;
      for (let i = 0; i < count && free; i++) free = await portFree(base + i, address);
      if (free) return base;
    }
    throw new Error(`no ${count} free relay ports in ${this.first}-${this.last}`);
  }
}

/** The addon's own arguments for a rule (what NativeDataPlane passes). */
export type PackedRule = [Float64Array, string | null, StreamRule | null];

export function packed(r: StreamRule): PackedRule {
  const p = new RulePacker();
  p.pack(r);
  return [p.slots, p.address, p.extras];
}

/** The addon's NativeEngine, as the tests that bypass NativeDataPlane call it. */
export interface RawEngine {
  addStream(spec: StreamSocketSpec, ...rule: PackedRule): void;
  updateStream(id: number, ...rule: PackedRule): void;
  removeStream(id: number): void;
  requestQuality(ids: number[]): number;
  fence(): number;
  wakeQueued(): void;
  sync(): void;
  close(): void;
}
export type RawCtor = new (threads: number, rcvbuf: number, onEvents: () => void, s: object, i: object, onFence: (id: number) => void) => RawEngine;

/** The built addon's NativeEngine class. */
export function rawEngineClass(): RawCtor {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require(path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'ngrelay_engine.node')) as { NativeEngine: RawCtor }).NativeEngine;
}
