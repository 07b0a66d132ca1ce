/**
 * Preload for the relay under bench:control: how long each ng command stays inside the relay (its datagram's
 * `message` event to the `send()` of the reply carrying the same cookie) and which of the slow ones a GC
 * overlapped. The client's latency adds the datagram's wait in the socket and the client's own wake-ups; this
 * separates the relay's part of the p99 from the rest.
 *
 *   npx tsc -p bench/tsconfig.json
 *   BENCH_NGRELAY_NODE_ARGS="-r $PWD/bench/out/bench/residence-preload.js" \
 *     node bench/out/bench/control.js --rates=500 --step-seconds=30 --relays=ngrelay
 *
 * At exit the relay writes one summary line to `RESIDENCE_OUT` (default /tmp/ngrelay-residence.txt; appended,
 * one line per relay process): residence p50/p90/p99/p999 (and p50/p99 per command), how many commands at or above the p99 a GC pause
 * overlapped, and GC pauses by kind. The first `RESIDENCE_SKIP` commands (default 9000: bench:control's 3000
 * warm-up cycles) are left out. Measurement only: it wraps dgram.Socket's emit and send.
 */
import dgram from 'node:dgram';
import { appendFileSync } from 'node:fs';
import { PerformanceObserver, constants, performance } from 'node:perf_hooks';
import type { NodeGCPerformanceDetail, PerformanceEntry } from 'node:perf_hooks';
import { percentile } from './control-summary';

/** A reply starts with its request's cookie and a space (ng protocol); cookies longer than this are not ours. */
const MAX_COOKIE = 64;

const out = process.env['RESIDENCE_OUT'] ?? '/tmp/ngrelay-residence.txt';
const skip = Number(process.env['RESIDENCE_SKIP'] ?? 9000);

/** Per cookie in flight: when its datagram arrived and which command it carries. */
const arrived = new Map<string, [number, string]>();
/** [arrival ms, residence ms, command] per replied command, in reply order. */
const residences: Array<[number, number, string]> = [];
/** [start ms, duration ms, kind] per GC pause. */
const pauses: Array<[number, number, number]> = [];

const COMMAND_KEY = Buffer.from('7:command');

/** The command name of a bencode request (`7:command<len>:<name>`), or '?' (JSON, or no command key). */
function commandOf(b: Buffer): string {
  const at = b.indexOf(COMMAND_KEY);
  if (at < 0) return '?';
  const colon = b.indexOf(58, at + COMMAND_KEY.length);
  if (colon < 0) return '?';
  const length = Number(b.toString('latin1', at + COMMAND_KEY.length, colon));
  return length > 0 && length < 32 ? b.toString('latin1', colon + 1, colon + 1 + length) : '?';
}

function cookieOf(b: Buffer): string | null {
  const space = b.indexOf(32);
  return space > 0 && space <= MAX_COOKIE ? b.toString('latin1', 0, space) : null;
}

type Emit = (this: dgram.Socket, event: string | symbol, ...args: unknown[]) => boolean;
type Send = (this: dgram.Socket, ...args: unknown[]) => void;
const proto = dgram.Socket.prototype as unknown as { emit: Emit; send: Send };
const originalEmit = proto.emit;
const originalSend = proto.send;

proto.emit = function (this: dgram.Socket, event: string | symbol, ...args: unknown[]): boolean {
  const msg = args[0];
  if (event === 'message' && Buffer.isBuffer(msg)) {
    const cookie = cookieOf(msg);
    if (cookie !== null) arrived.set(cookie, [performance.now(), commandOf(msg)]);
  }
  return originalEmit.call(this, event, ...args);
};

proto.send = function (this: dgram.Socket, ...args: unknown[]): void {
  const first = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (Buffer.isBuffer(first)) {
    const cookie = cookieOf(first);
    const request = cookie === null ? undefined : arrived.get(cookie);
    if (cookie !== null && request !== undefined) {
      arrived.delete(cookie);
      residences.push([request[0], performance.now() - request[0], request[1]]);
    }
  }
  originalSend.call(this, ...args);
};

new PerformanceObserver((list) => {
  for (const e of list.getEntries()) pauses.push([e.startTime, e.duration, ((e as PerformanceEntry & { detail?: NodeGCPerformanceDetail }).detail?.kind ?? 0)]);
}).observe({ entryTypes: ['gc'] });

const KIND_NAMES: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};

function summary(): string {
  const kept = residences.slice(skip);
  if (kept.length === 0) return `pid ${process.pid}: no commands after the first ${skip}`;
  const sorted = kept.map(([, d]) => d).sort((a, b) => a - b);
  const p99 = percentile(sorted, 99);
  const from = kept[0]![0];
  const gcs = pauses.filter(([start]) => start >= from);
  const slow = kept.filter(([, d]) => d >= p99);
  const overlapped = slow.filter(([t, d]) => gcs.some(([start, dur]) => start < t + d && start + dur > t)).length;
  const kinds = new Map<string, number[]>();
  for (const [, dur, kind] of gcs) {
    const name = KIND_NAMES[kind] ?? `kind${kind}`;
    kinds.set(name, [...(kinds.get(name) ?? []), dur]);
  }
  const gcText = [...kinds]
    .map(([name, durs]) => {
      const s = durs.sort((a, b) => a - b);
      return `${name} ${s.length}× p50 ${percentile(s, 50).toFixed(2)} max ${s[s.length - 1]!.toFixed(2)} ms`;
    })
    .join(', ');
  const f = (p: number): string => percentile(sorted, p).toFixed(2);
  const byCommand = new Map<string, number[]>();
  for (const [, d, command] of kept) byCommand.set(command, [...(byCommand.get(command) ?? []), d]);
  const commandText = [...byCommand]
    .map(([command, durs]) => {
      const s = durs.sort((a, b) => a - b);
      return `${command} ${percentile(s, 50).toFixed(2)}/${percentile(s, 99).toFixed(2)}`;
    })
    .join(', ');
  return (
    `pid ${process.pid}: ${kept.length} commands over ${((kept[kept.length - 1]![0] - from) / 1000).toFixed(1)} s, ` +
    `residence p50 ${f(50)} p90 ${f(90)} p99 ${f(99)} p99.9 ${f(99.9)} ms (p50/p99 by command: ${commandText}); ` +
    `${overlapped} of ${slow.length} at or above p99 overlapped a GC pause; GC: ${gcText || 'none'}`
  );
}

process.on('exit', () => {
  appendFileSync(out, summary() + '\n');
});
