/** The off-heap byte store behind the ng reply cache: exact bytes back, and chunks freed once emptied. */
import { describe, expect, it } from 'vitest';
import { ReplyStore } from '../../src/ng/reply-store';

describe('ReplyStore', () => {
  it('gives back exactly the bytes put in, for many replies across chunks', () => {
    const store = new ReplyStore();
    const slots: [number, Buffer][] = [];
    for (let i = 0; i < 5000; i++) {
      const reply = Buffer.alloc(100 + (i % 700), i & 0xff);
      reply.writeUInt32BE(i, 0);
      slots.push([store.put(reply), reply]);
    }
    for (const [slot, reply] of slots) expect(store.get(slot).equals(reply)).toBe(true);
    expect(store.chunkBytes).toBeGreaterThan(1 << 20); // it did need more than one chunk
  });

  it('frees a chunk once no reply points into it, so memory comes back when replies leave', () => {
    const store = new ReplyStore();
    const slots = Array.from({ length: 3000 }, (_, i) => store.put(Buffer.alloc(1000, i & 0xff)));
    expect(store.chunkBytes).toBeGreaterThanOrEqual(3 << 20);
    for (const slot of slots) store.release(slot);
    expect(store.chunkBytes).toBeLessThanOrEqual(1 << 20); // at most the chunk still being filled
  });

  it('stores a reply larger than a chunk on its own, and reuses released slots', () => {
    const store = new ReplyStore();
    const big = Buffer.alloc(3 << 20, 7);
    const a = store.put(Buffer.from('small'));
    const b = store.put(big);
    expect(store.get(b).equals(big)).toBe(true);
    expect(store.get(a).toString()).toBe('small');
    store.release(b);
    const c = store.put(Buffer.from('again'));
    expect(c).toBe(b);
    expect(store.get(c).toString()).toBe('again');
    expect(store.get(a).toString()).toBe('small');
  });

  it('keeps each key in front of its reply: the reply comes back without it, and keyEquals compares bytes', () => {
    const store = new ReplyStore();
    const a = store.put(Buffer.from('reply-a'), '1234_5 \u00ff');
    const b = store.put(Buffer.from('reply-b'));
    expect(store.get(a).toString()).toBe('reply-a');
    expect(store.keyLength(a)).toBe(8);
    expect(store.length(a)).toBe(7);
    expect(store.keyEquals(a, '1234_5 \u00ff')).toBe(true);
    expect(store.keyEquals(a, '1234_5 \u00fe')).toBe(false);
    expect(store.keyEquals(a, '1234_5 ')).toBe(false);
    expect(store.keyEquals(b, '')).toBe(true);
    expect(store.get(b).toString()).toBe('reply-b');
  });
});
