import { describe, expect, it } from 'vitest';
import { CookieCache } from '../../src/ng/cookie-cache';

function fakeClock(start = 1_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('CookieCache', () => {
  it('runs a command once and serves the cached reply to a retransmit', async () => {
    const cache = new CookieCache({ now: fakeClock().now });
    let runs = 0;
    const compute = async (): Promise<Buffer> => Buffer.from(`reply-${++runs}`);
    const first = await cache.run('c1', compute);
    const second = await cache.run('c1', compute);
    expect(runs).toBe(1);
    expect(first.outcome).toBe('computed');
    expect(second.outcome).toBe('cached');
    expect(second.reply).toBe(first.reply);
  });

  it('keeps different cookies apart', async () => {
    const cache = new CookieCache({ now: fakeClock().now });
    const a = await cache.run('a', async () => Buffer.from('A'));
    const b = await cache.run('b', async () => Buffer.from('B'));
    expect(a.reply.toString()).toBe('A');
    expect(b.reply.toString()).toBe('B');
    expect(cache.size).toBe(2);
  });

  it('makes duplicates that arrive while the first is running wait for the same reply', async () => {
    const cache = new CookieCache({ now: fakeClock().now });
    const gate = deferred<void>();
    let runs = 0;
    const compute = async (): Promise<Buffer> => {
      runs++;
      await gate.promise;
      return Buffer.from('slow reply');
    };
    const all = [1, 2, 3, 4, 5].map(() => cache.run('dup', compute));
    expect(cache.inFlightCount).toBe(1);
    gate.resolve();
    const results = await Promise.all(all);
    expect(runs).toBe(1);
    expect(results.map((r) => r.outcome)).toEqual(['computed', 'in-flight', 'in-flight', 'in-flight', 'in-flight']);
    for (const r of results) expect(r.reply).toBe(results[0]!.reply);
    expect(cache.inFlightCount).toBe(0);
    expect((await cache.run('dup', compute)).outcome).toBe('cached');
  });

  it('caches nothing when the computation fails, and all waiters see the failure', async () => {
    const cache = new CookieCache({ now: fakeClock().now });
    const gate = deferred<Buffer>();
    const p1 = cache.run('x', () => gate.promise);
    const p2 = cache.run('x', () => Promise.resolve(Buffer.from('never')));
    gate.reject(new Error('boom'));
    await expect(p1).rejects.toThrow('boom');
    await expect(p2).rejects.toThrow('boom');
    expect(cache.size).toBe(0);
    expect(cache.inFlightCount).toBe(0);
    const again = await cache.run('x', async () => Buffer.from('ok now'));
    expect(again.outcome).toBe('computed');
  });

  it('keeps a reply for at least one generation and drops it after two', async () => {
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now, generationMs: 30_000 });
    cache.set('c', Buffer.from('r'));
    clock.advance(29_999);
    expect(cache.get('c')?.toString()).toBe('r');
    clock.advance(1); // 30 s: the first swap, the reply moves to the old generation
    expect(cache.get('c')?.toString()).toBe('r');
    clock.advance(29_999);
    expect(cache.get('c')?.toString()).toBe('r');
    clock.advance(1); // second swap: gone
    expect(cache.get('c')).toBeUndefined();
  });

  it('gives a reply stored just before a swap at least 30 s', async () => {
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now, generationMs: 30_000 });
    clock.advance(29_000);
    cache.set('late', Buffer.from('r'));
    clock.advance(1_000); // swap right after insertion
    expect(cache.get('late')).toBeDefined();
    clock.advance(29_999);
    expect(cache.get('late')).toBeDefined();
    clock.advance(1);
    expect(cache.get('late')).toBeUndefined();
  });

  it('drops everything after a quiet period of two generations', async () => {
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now, generationMs: 30_000 });
    cache.set('a', Buffer.from('1'));
    clock.advance(60_000);
    expect(cache.size).toBe(0);
    expect(cache.get('a')).toBeUndefined();
  });

  it('recomputes a cookie once its reply has expired', async () => {
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now, generationMs: 30_000 });
    let runs = 0;
    const compute = async (): Promise<Buffer> => Buffer.from(String(++runs));
    await cache.run('c', compute);
    clock.advance(60_000);
    const r = await cache.run('c', compute);
    expect(r.outcome).toBe('computed');
    expect(r.reply.toString()).toBe('2');
  });
});
