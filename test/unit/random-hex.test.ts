import { describe, expect, it } from 'vitest';
import { randomHex } from '../../src/call/random-hex';

describe('randomHex (loop-protect tokens from a pool of random bytes)', () => {
  it('gives `bytes` bytes as lowercase hex', () => {
    expect(randomHex(6)).toMatch(/^[0-9a-f]{12}$/);
    expect(randomHex(1)).toMatch(/^[0-9a-f]{2}$/);
    expect(randomHex(64)).toMatch(/^[0-9a-f]{128}$/);
  });

  it('never repeats across pool refills (20,000 tokens span ~30 refills)', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 20_000; i++) seen.add(randomHex(6));
    expect(seen.size).toBe(20_000);
  });

  it('refuses sizes outside 1..64', () => {
    for (const n of [0, -1, 65, 1.5]) expect(() => randomHex(n)).toThrow(RangeError);
  });
});
