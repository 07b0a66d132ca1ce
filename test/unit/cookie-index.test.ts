/** The reply cache's typed-array hash table: collisions, deletion inside probe runs, growth, the seeded hash. */
import { describe, expect, it } from 'vitest';
import { CookieIndex, cookieHash } from '../../src/ng/cookie-index';
import { ReplyStore } from '../../src/ng/reply-store';

function filled(keys: string[]): { store: ReplyStore; index: CookieIndex; slots: number[] } {
  const store = new ReplyStore();
  const index = new CookieIndex(store);
  return { store, index, slots: keys.map((k) => store.put(Buffer.from(`reply-${k}`), k)) };
}

describe('CookieIndex', () => {
  it('finds every key among entries that share one hash, and loses none when one in the middle goes', () => {
    const keys = ['a', 'b', 'c', 'd', 'e'];
    const { index, slots } = filled(keys);
    const same = 42; // every entry in one probe run
    slots.forEach((slot) => index.insert(same, slot));
    keys.forEach((k, i) => expect(index.find(k, same)).toBe(slots[i]));
    index.remove(same, slots[2]!);
    expect(index.find('c', same)).toBe(-1);
    for (const i of [0, 1, 3, 4]) expect(index.find(keys[i]!, same)).toBe(slots[i]);
    expect(index.size).toBe(4);
  });

  it('keeps entries reachable when a removal closes a run that wraps around the end of the table', () => {
    const keys = ['w', 'x', 'y', 'z'];
    const { index, slots } = filled(keys);
    const last = index.capacity - 1; // home at the last position: the run wraps to positions 0, 1, 2
    slots.slice(0, 3).forEach((slot) => index.insert(last, slot));
    index.insert(0, slots[3]!); // home 0, pushed further by the wrapped run
    index.remove(last, slots[0]!);
    expect(index.find('x', last)).toBe(slots[1]);
    expect(index.find('y', last)).toBe(slots[2]);
    expect(index.find('z', 0)).toBe(slots[3]);
    index.remove(last, slots[1]!);
    index.remove(last, slots[2]!);
    expect(index.find('z', 0)).toBe(slots[3]);
  });

  it('grows to stay at most half full, and clear() gives the grown table back', () => {
    const keys = Array.from({ length: 3000 }, (_, i) => `cookie-${i}`);
    const { index, slots } = filled(keys);
    keys.forEach((k, i) => index.insert(cookieHash(k, 7), slots[i]!));
    expect(index.capacity).toBeGreaterThanOrEqual(6000);
    keys.forEach((k, i) => expect(index.find(k, cookieHash(k, 7))).toBe(slots[i]));
    index.clear();
    expect(index.size).toBe(0);
    expect(index.capacity).toBe(1024);
    expect(index.find('cookie-1', cookieHash('cookie-1', 7))).toBe(-1);
  });

  it('refuses to remove a slot that is not in it (a bookkeeping bug must not pass silently)', () => {
    const { index, slots } = filled(['a']);
    expect(() => index.remove(5, slots[0]!)).toThrow(/not indexed/);
  });

  it('hashes with a seed: the same cookie lands elsewhere under another seed, and every byte counts', () => {
    expect(cookieHash('12345_1', 1)).toBe(cookieHash('12345_1', 1));
    expect(cookieHash('12345_1', 1)).not.toBe(cookieHash('12345_1', 2));
    expect(cookieHash('ab\u00ff', 1)).not.toBe(cookieHash('ab\u00fe', 1));
    expect(cookieHash('', 1)).not.toBe(cookieHash('\u0000', 1));
    // Sequential cookies (Kamailio's are a counter) spread over the table's positions.
    const homes = new Set(Array.from({ length: 1024 }, (_, i) => cookieHash(`2840_${i}`, 9) & 1023));
    expect(homes.size).toBeGreaterThan(550);
  });
});
