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
    expect(second.reply).toEqual(first.reply); // byte-identical (held as a string in between)
  });

  it('expire() drops aged-out generations without a command arriving', async () => {
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now });
    for (const c of ['a', 'b', 'c']) await cache.run(c, async () => Buffer.from(c));
    expect(cache.expire()).toBe(0); // still young
    clock.advance(30_000);
    await cache.run('d', async () => Buffer.from('d'));
    clock.advance(30_000);
    expect(cache.expire()).toBe(3); // a, b, c were in the generation that aged out; d is kept
    clock.advance(60_000);
    expect(cache.expire()).toBe(1);
    expect(cache.stats()).toMatchObject({ entries: 0, bytes: 0 });
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

  describe('bounds', () => {
    const reply = (n: number): Buffer => Buffer.alloc(n, 0x61);

    it('holds at most maxEntries replies, dropping the oldest first', async () => {
      const cache = new CookieCache({ now: fakeClock().now, maxEntries: 3 });
      for (const c of ['a', 'b', 'c', 'd', 'e']) cache.set(c, reply(10));
      expect(cache.size).toBe(3);
      expect(cache.get('a')).toBeUndefined();
      expect(cache.get('b')).toBeUndefined();
      expect(cache.get('c')).toBeDefined();
      expect(cache.get('e')).toBeDefined();
      expect(cache.stats()).toMatchObject({ entries: 3, maxEntries: 3, evicted: 2 });
    });

    it('holds at most maxBytes (cookie plus reply bytes), dropping the oldest first', () => {
      const cache = new CookieCache({ now: fakeClock().now, maxBytes: 100 });
      cache.set('k1', reply(38)); // 40 bytes
      cache.set('k2', reply(38)); // 80
      expect(cache.bytes).toBe(80);
      cache.set('k3', reply(38)); // 120 > 100: k1 goes
      expect(cache.bytes).toBe(80);
      expect(cache.get('k1')).toBeUndefined();
      expect(cache.get('k2')).toBeDefined();
      expect(cache.get('k3')).toBeDefined();
    });

    it('evicts the old generation before the current one', () => {
      const clock = fakeClock();
      const cache = new CookieCache({ now: clock.now, maxEntries: 2 });
      cache.set('older', reply(1));
      clock.advance(30_000); // 'older' moves to the old generation
      cache.set('new1', reply(1));
      cache.set('new2', reply(1));
      expect(cache.get('older')).toBeUndefined();
      expect(cache.get('new1')).toBeDefined();
      expect(cache.get('new2')).toBeDefined();
    });

    it('does not hold a reply larger than maxBytes at all', () => {
      const cache = new CookieCache({ now: fakeClock().now, maxBytes: 50 });
      cache.set('big', reply(100));
      expect(cache.get('big')).toBeUndefined();
      expect(cache.bytes).toBe(0);
    });

    it('charges a replaced reply once, and forgets the bytes of a dropped generation', () => {
      const clock = fakeClock();
      const cache = new CookieCache({ now: clock.now });
      cache.set('k', reply(10));
      cache.set('k', reply(20));
      expect(cache.bytes).toBe(21);
      clock.advance(30_000);
      cache.set('j', reply(5));
      expect(cache.bytes).toBe(27);
      clock.advance(30_000); // 'k' was in the old generation and goes now
      expect(cache.bytes).toBe(6);
      clock.advance(60_000);
      expect(cache.bytes).toBe(0);
      expect(cache.size).toBe(0);
    });

    it('keeps 200k distinct cookies from growing it past its entry bound', async () => {
      const cache = new CookieCache({ now: fakeClock().now, maxEntries: 1000 });
      for (let i = 0; i < 200_000; i++) await cache.run(`c${i}`, async () => reply(16));
      expect(cache.size).toBe(1000);
      expect(cache.stats().evicted).toBe(199_000);
      expect(cache.get('c199999')).toBeDefined();
    });

    it('has defaults that bound it', () => {
      const cache = new CookieCache();
      expect(cache.maxEntries).toBeGreaterThan(0);
      expect(Number.isFinite(cache.maxEntries)).toBe(true);
      expect(Number.isFinite(cache.maxBytes)).toBe(true);
    });
  });

  it('keeps long cookies that differ only in their last byte apart (the whole cookie is hashed and compared)', async () => {
    const cache = new CookieCache({ now: fakeClock().now });
    const long = (i: number): string => `${'c'.repeat(20_000)}${String.fromCharCode(0x41 + i)}`;
    for (let i = 0; i < 5; i++) await cache.run(long(i), async () => Buffer.from(`reply-${i}`));
    for (let i = 0; i < 5; i++) expect(cache.get(long(i))?.toString()).toBe(`reply-${i}`);
    expect(cache.size).toBe(5);
    expect(cache.get('c')).toBeUndefined();
    expect(cache.get('c'.repeat(20_001))).toBeUndefined();
  });

  it('keeps every latin1 byte of a cookie: cookies that differ only in a high byte are apart', () => {
    const cache = new CookieCache({ now: fakeClock().now });
    cache.set('ab\u00ff', Buffer.from('ff'));
    cache.set('ab\u00fe', Buffer.from('fe'));
    cache.set('ab', Buffer.from('short'));
    expect(cache.get('ab\u00ff')?.toString()).toBe('ff');
    expect(cache.get('ab\u00fe')?.toString()).toBe('fe');
    expect(cache.get('ab')?.toString()).toBe('short');
    expect(cache.get('ab\u00fd')).toBeUndefined();
  });

  it('serves a replaced reply, and still drops the oldest first after the replacement', () => {
    const cache = new CookieCache({ now: fakeClock().now, maxEntries: 3 });
    cache.set('a', Buffer.from('a1'));
    cache.set('b', Buffer.from('b1'));
    cache.set('a', Buffer.from('a2')); // now the newest
    cache.set('c', Buffer.from('c1'));
    cache.set('d', Buffer.from('d1')); // over the bound: b is the oldest now
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.toString()).toBe('a2');
    expect(cache.size).toBe(3);
    expect(cache.bytes).toBe(3 + 6);
  });

  it('keeps serving under churn far beyond its table size, with the same answers as a Map', () => {
    // Generations rotate and the entry bound evicts while cookies come and go: every lookup must agree with
    // a plain model of what should still be there.
    const clock = fakeClock();
    const cache = new CookieCache({ now: clock.now, generationMs: 1000, maxEntries: 5000, seed: 1 });
    const model = new Map<string, { reply: string; gen: number }>();
    let generation = 0;
    for (let i = 0; i < 60_000; i++) {
      if (i % 4000 === 3999) {
        clock.advance(1000);
        generation++;
        for (const [k, v] of model) if (v.gen < generation - 1) model.delete(k);
      }
      const key = `k${(i * 7919) % 12_000}`;
      cache.set(key, Buffer.from(`r${i}`));
      model.delete(key);
      model.set(key, { reply: `r${i}`, gen: generation });
      while (model.size > 5000) model.delete(model.keys().next().value!);
      if (i % 997 === 0) for (const [k, v] of model) expect(cache.get(k)?.toString()).toBe(v.reply);
    }
    expect(cache.size).toBe(model.size);
    for (let k = 0; k < 12_000; k++) expect(cache.get(`k${k}`)?.toString()).toBe(model.get(`k${k}`)?.reply);
  });
});
