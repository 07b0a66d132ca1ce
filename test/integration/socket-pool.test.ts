/**
 * The engine's pool of media sockets made ahead (native/include/socket_pool.hpp): unbound UDP sockets with
 * every option set, made on the event relay's thread, so that a new stream's socket costs the JS thread a
 * bind() only. Counted through /proc/self/fd. Relay streams use ports 35500-35599.
 */
import * as fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { waitUntil } from '../support/rtp-packets';
import { ownThreads, packed, PortRuns, rawEngineClass, type RawEngine, streamRule as rule } from '../support/dataplane-fixtures';

const relayPorts = new PortRuns(35500, 35599);
/** SocketPool::kTarget. */
const POOL_TARGET = 16;

/** The event relay's thread (it fills the pool): its task directory, e.g. /proc/self/task/1234. */
function eventThread(): string {
  const tasks = ownThreads('ngrelay-events');
  expect(tasks).toHaveLength(1);
  return tasks[0]!;
}

/** How often a thread went to sleep: each of its wake-ups ends in one of these. */
function voluntarySwitches(task: string): number {
  return Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(fs.readFileSync(`${task}/status`, 'utf8'))?.[1] ?? NaN);
}

function openDescriptors(): number {
  return fs.readdirSync('/proc/self/fd').length;
}

/** The descriptor count once it has not changed for 100 ms (the pool fills on another thread). */
async function settledDescriptors(): Promise<number> {
  let last = openDescriptors();
  for (let stable = 0; stable < 5; ) {
    await new Promise((r) => setTimeout(r, 20));
    const now = openDescriptors();
    stable = now === last ? stable + 1 : 0;
    last = now;
  }
  return last;
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function newEngine(): RawEngine {
  const NativeEngine = rawEngineClass();
  const sched = { policy: 'default', priority: null };
  const e = new NativeEngine(2, 1 << 20, () => {}, sched, sched, () => {});
  cleanups.push(() => e.close()); // a second close() does nothing
  return e;
}

describe('socket pool', () => {
  it('holds nothing at start, fills a family once a stream of it is added, and stays within its target', async () => {
    const before = await settledDescriptors();
    const e = newEngine();
    const started = await settledDescriptors();
    const port = await relayPorts.take(2);
    e.addStream({ id: 1, component: 'rtp', localAddress: '127.0.0.1', localPort: port }, ...packed(rule({ expected: null, sink: null })));
    // The stream's socket, then the pool's (made on the relay's thread).
    expect(await waitUntil(() => openDescriptors() > started + 1)).toBe(true);
    const filled = await settledDescriptors();
    expect(filled - started).toBeGreaterThan(1);
    expect(filled - started).toBeLessThanOrEqual(1 + POOL_TARGET);
    // Streams take from it; it is refilled, never beyond its target.
    for (let i = 0; i < 40; i++) {
      const p = await relayPorts.take(2);
      e.addStream({ id: 10 + i, component: 'rtp', localAddress: '127.0.0.1', localPort: p }, ...packed(rule({ expected: null, sink: null })));
      e.sync();
      e.removeStream(10 + i);
      e.sync();
    }
    const after = await settledDescriptors();
    expect(after - started).toBeLessThanOrEqual(1 + POOL_TARGET);
    // No IPv6 stream yet, so no IPv6 sockets either: closing gives back every descriptor the engine held.
    e.close();
    expect(await settledDescriptors()).toBe(before);
  });

  it('a pooled socket binds where a fresh one would: both families, and a taken port still fails', async () => {
    const e = newEngine();
    const port = await relayPorts.take(4);
    const idle = packed(rule({ expected: null, sink: null }));
    e.addStream({ id: 1, component: 'rtp', localAddress: '127.0.0.1', localPort: port }, ...idle);
    await settledDescriptors(); // the pool is full now
    e.addStream({ id: 2, component: 'rtp', localAddress: '127.0.0.1', localPort: port + 1 }, ...idle);
    e.addStream({ id: 3, component: 'rtp', localAddress: '::1', localPort: port + 2 }, ...idle);
    await settledDescriptors();
    e.addStream({ id: 4, component: 'rtp', localAddress: '::1', localPort: port + 3 }, ...idle);
    expect(() => e.addStream({ id: 5, component: 'rtp', localAddress: '127.0.0.1', localPort: port }, ...idle)).toThrow(/Address already in use/);
    e.sync();
  });

  it('is topped up while streams are added without the JS thread waking its thread per refill (it ticks)', async () => {
    const e = newEngine();
    const base = await settledDescriptors();
    const idle = packed(rule({ expected: null, sink: null }));
    // Port 0: the kernel picks one, so these streams need no port run.
    e.addStream({ id: 1, component: 'rtp', localAddress: '127.0.0.1', localPort: 0 }, ...idle);
    await settledDescriptors(); // the pool is full
    const task = eventThread();
    const before = voluntarySwitches(task);
    // A stream per 30 us at most (12 ms or more in all): woken for every refill (below half of its 16
    // sockets), the thread wakes once per 8-16 streams, ~25 times; ticking, once per 2 ms.
    const streams = 400;
    const started = performance.now();
    for (let i = 0; i < streams; i++) {
      e.addStream({ id: 100 + i, component: 'rtp', localAddress: '127.0.0.1', localPort: 0 }, ...idle);
      while (performance.now() < started + (i + 1) * 0.03);
    }
    const elapsedMs = performance.now() - started;
    const wakeUps = voluntarySwitches(task) - before;
    // One wake-up to start ticking, then one per EventRelay::kTickMs (2 ms).
    expect(wakeUps).toBeLessThanOrEqual(Math.ceil(elapsedMs / 2) + 3);
    // And it was topped up all the same: full again once the thread has ticked.
    expect((await settledDescriptors()) - base).toBe(1 + streams + POOL_TARGET);
    e.close();
  });
});
