import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../src/call/port-allocator';
import { PortsExhaustedError } from '../../src/errors';

/** Deterministic RNG (mulberry32) so shuffles are reproducible. */
function seeded(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * n);
  };
}

/** Never shuffles: block order stays ascending, which makes list order observable. */
const identity = (n: number): number => n - 1;

function drainPairs(a: PortAllocator): number[] {
  const out: number[] = [];
  for (;;) {
    try {
      out.push(a.acquirePair());
    } catch (err) {
      if (err instanceof PortsExhaustedError) return out;
      throw err;
    }
  }
}

describe('PortAllocator', () => {
  it('hands out even RTP ports with RTP+1 reserved, every pair once, then throws PortsExhaustedError', () => {
    const a = new PortAllocator({ portMin: 30000, portMax: 30099, randomInt: seeded(1) });
    const ports = drainPairs(a);
    expect(ports).toHaveLength(50);
    expect(new Set(ports).size).toBe(50);
    for (const p of ports) {
      expect(p % 2).toBe(0);
      expect(p).toBeGreaterThanOrEqual(30000);
      expect(p + 1).toBeLessThanOrEqual(30099);
      expect(a.inUse(p)).toBe(true);
      expect(a.inUse(p + 1)).toBe(true);
    }
    expect(() => a.acquirePair()).toThrow(PortsExhaustedError);
    expect(() => a.acquirePair()).toThrow('Ran out of ports');
    expect(() => a.acquireSingle()).toThrow(PortsExhaustedError);
    expect(a.counts()).toEqual({ total: 100, free: 0, used: 100, quarantined: 0, freePairs: 0 });
  });

  it('uses odd/even range edges only as single ports', () => {
    // 30001 (odd, partner 30000 outside) and 30010 (even, partner 30011 outside) cannot form pairs.
    const a = new PortAllocator({ portMin: 30001, portMax: 30010, randomInt: seeded(2) });
    const pairs = drainPairs(a);
    expect(pairs.sort()).toEqual([30002, 30004, 30006, 30008]);
    const singles = [a.acquireSingle(), a.acquireSingle()].sort();
    expect(singles).toEqual([30001, 30010]);
    expect(() => a.acquireSingle()).toThrow(PortsExhaustedError);
    expect(a.counts().total).toBe(10);
  });

  it('shuffles: different seeds give different orders, the same seed the same order', () => {
    const order = (seed: number) => drainPairs(new PortAllocator({ portMin: 20000, portMax: 20999, randomInt: seeded(seed) }));
    const x = order(7);
    expect(order(7)).toEqual(x);
    expect(order(8)).not.toEqual(x);
    expect([...x].sort((p, q) => p - q)).not.toEqual(x);
  });

  it('shuffles with the default crypto RNG as well', () => {
    const a = new PortAllocator({ portMin: 20000, portMax: 29999 });
    const first = Array.from({ length: 20 }, () => a.acquirePair());
    const ascending = [...first].sort((p, q) => p - q);
    expect(first).not.toEqual(ascending);
  });

  it('reuses a released pair only after every other free pair (freed ports go to the tail)', () => {
    const a = new PortAllocator({ portMin: 40000, portMax: 40009, randomInt: seeded(3) });
    const first = a.acquirePair();
    expect(a.release(first)).toBe(true);
    expect(a.release(first + 1)).toBe(true);
    const next = [a.acquirePair(), a.acquirePair(), a.acquirePair(), a.acquirePair()];
    expect(next).not.toContain(first);
    expect(a.acquirePair()).toBe(first);
    expect(() => a.acquirePair()).toThrow(PortsExhaustedError);
  });

  it('refuses a double release and a release of a port it never gave out', () => {
    const a = new PortAllocator({ portMin: 40000, portMax: 40003, randomInt: seeded(4) });
    const p = a.acquirePair();
    expect(a.release(p)).toBe(true);
    expect(a.release(p)).toBe(false);
    expect(a.release(12345)).toBe(false);
    expect(a.counts().used).toBe(1);
  });

  it('a pair is not available again until both halves are released', () => {
    const a = new PortAllocator({ portMin: 40000, portMax: 40001, randomInt: seeded(5) });
    const p = a.acquirePair();
    a.release(p);
    expect(() => a.acquirePair()).toThrow(PortsExhaustedError);
    expect(a.acquireSingle()).toBe(p); // the free half can still serve a single
    a.release(p);
    a.release(p + 1);
    expect(a.acquirePair()).toBe(p);
  });

  it('acquireSingle prefers even ports while whole pairs remain, then fills the leftover halves', () => {
    const a = new PortAllocator({ portMin: 50000, portMax: 50009, randomInt: seeded(6) });
    const evens = Array.from({ length: 5 }, () => a.acquireSingle());
    expect(evens.every((p) => p % 2 === 0)).toBe(true);
    const odds = Array.from({ length: 5 }, () => a.acquireSingle());
    expect(odds.every((p) => p % 2 === 1)).toBe(true);
    expect(new Set([...evens, ...odds]).size).toBe(10);
    expect(() => a.acquireSingle()).toThrow(PortsExhaustedError);
  });

  it('never gives one port to two holders under mixed random use', () => {
    const rng = seeded(99);
    const a = new PortAllocator({ portMin: 30000, portMax: 30063, randomInt: seeded(10) });
    const held = new Set<number>();
    for (let step = 0; step < 5000; step++) {
      const op = rng(3);
      if (op === 0) {
        try {
          const p = a.acquirePair();
          expect(held.has(p) || held.has(p + 1)).toBe(false);
          held.add(p).add(p + 1);
        } catch (err) {
          expect(err).toBeInstanceOf(PortsExhaustedError);
          expect(a.counts().freePairs).toBe(0);
        }
      } else if (op === 1) {
        try {
          const p = a.acquireSingle();
          expect(held.has(p)).toBe(false);
          held.add(p);
        } catch (err) {
          expect(err).toBeInstanceOf(PortsExhaustedError);
          expect(held.size).toBe(64);
        }
      } else if (held.size > 0) {
        const list = [...held];
        const p = list[rng(list.length)]!;
        expect(a.release(p)).toBe(true);
        held.delete(p);
      }
      const c = a.counts();
      expect(c.used).toBe(held.size);
      expect(c.free).toBe(64 - held.size);
    }
  });

  it('reserveSpecific takes exactly the requested free ports and nothing when any is taken', () => {
    const a = new PortAllocator({ portMin: 30000, portMax: 30009, randomInt: identity });
    expect(a.reserveSpecific(30004, true)).toBe(true);
    expect(a.inUse(30004) && a.inUse(30005)).toBe(true);
    expect(a.reserveSpecific(30005)).toBe(false);
    expect(a.reserveSpecific(30003, true)).toBe(false); // 30004 is taken
    expect(a.inUse(30003)).toBe(false);
    expect(a.reserveSpecific(30009, true)).toBe(false); // 30010 is outside the range
    expect(a.inUse(30009)).toBe(false);
    expect(a.reserveSpecific(29998)).toBe(false);
    expect(a.reserveSpecific(30007)).toBe(true);
    const pairs = drainPairs(a);
    expect(pairs).not.toContain(30004);
    expect(pairs).not.toContain(30006); // its odd half is reserved
    expect(pairs.sort()).toEqual([30000, 30002, 30008]);
    expect(a.acquireSingle()).toBe(30006);
  });

  it('quarantine takes an acquired port out of rotation until it expires, then it comes back last', () => {
    let now = 1000;
    const a = new PortAllocator({ portMin: 30000, portMax: 30005, randomInt: seeded(11), now: () => now, quarantineMs: 5000 });
    const p = a.acquirePair();
    // The engine could not bind p: quarantine both halves, as the stream layer does.
    expect(a.quarantine(p)).toBe(true);
    expect(a.quarantine(p + 1)).toBe(true);
    expect(a.inUse(p)).toBe(false);
    expect(a.isQuarantined(p)).toBe(true);
    expect(a.counts()).toEqual({ total: 6, free: 4, used: 0, quarantined: 2, freePairs: 2 });
    expect(a.release(p)).toBe(false); // a quarantined port is not the caller's to release
    const others = [a.acquirePair(), a.acquirePair()];
    expect(others).not.toContain(p);
    expect(() => a.acquirePair()).toThrow(PortsExhaustedError);
    now += 4999;
    expect(() => a.acquirePair()).toThrow(PortsExhaustedError);
    now += 1;
    expect(a.acquirePair()).toBe(p);
    expect(a.counts().quarantined).toBe(0);
  });

  it('quarantine of a free port keeps it from being handed out; a second quarantine extends it', () => {
    let now = 0;
    const a = new PortAllocator({ portMin: 30000, portMax: 30001, randomInt: identity, now: () => now, quarantineMs: 100 });
    expect(a.quarantine(30001)).toBe(true);
    expect(a.acquireSingle()).toBe(30000);
    expect(() => a.acquireSingle()).toThrow(PortsExhaustedError);
    now = 50;
    a.quarantine(30001); // seen busy again: now until 150
    now = 120;
    expect(() => a.acquireSingle()).toThrow(PortsExhaustedError);
    now = 150;
    expect(a.acquireSingle()).toBe(30001);
    expect(a.quarantine(29999)).toBe(false);
  });

  it('rejects an invalid range and a broken RNG', () => {
    expect(() => new PortAllocator({ portMin: 40000, portMax: 30000 })).toThrow(RangeError);
    expect(() => new PortAllocator({ portMin: 0, portMax: 10 })).toThrow(RangeError);
    expect(() => new PortAllocator({ portMin: 30000, portMax: 30010, randomInt: () => 99 })).toThrow(RangeError);
  });

  it('handles a full 1024..65535 range', () => {
    const a = new PortAllocator({ portMin: 1024, portMax: 65535, randomInt: seeded(12) });
    expect(a.counts()).toEqual({ total: 64512, free: 64512, used: 0, quarantined: 0, freePairs: 32256 });
    const p = a.acquirePair();
    expect(p % 2).toBe(0);
    expect(a.counts().freePairs).toBe(32255);
  });
});
