/**
 * The index of the ng reply cache (cookie-cache.ts): cookie -> slot in its ReplyStore, in typed arrays.
 *
 * It replaced two Maps keyed by cookie strings. Under load those held ~90,000 keys, were rebuilt every 30 s (a
 * generation restarts empty and doubles its tables as it fills) and kept 2-6 MB live in V8's old generation,
 * which every mark-compact had to mark: at 500 cycles/s the old generation after a mark-compact was 9-14 MB
 * with them and is 7-8 MB without, the same as with the cache off. Here the table is two Int32Arrays (outside
 * the V8 heap, nothing to trace, kept across generations) and the cookie bytes live with the reply in the
 * store, so a cached reply costs the garbage collector nothing.
 *
 * Open addressing with linear probing and backward-shift deletion (no tombstones, so a table under steady
 * churn never degrades), at most half full. The hash is seeded per process, so no client can choose cookies
 * that all land in one probe run. Every byte of a cookie is hashed and compared, long ones too (the Maps
 * needed a SHA-256 key for those: V8 hashes a string of 16,384 chars or more by its length alone).
 */
import { randomInt } from 'node:crypto';
import type { ReplyStore } from './reply-store';

const INITIAL_CAPACITY = 1024;

/** A 32-bit hash of a latin1 cookie (each char is one byte), mixed with `seed`. */
export function cookieHash(key: string, seed: number): number {
  let h = (seed ^ key.length) | 0;
  for (let i = 0; i < key.length; i++) {
    h = Math.imul(h ^ key.charCodeAt(i), 0x5bd1e995);
    h ^= h >>> 13;
  }
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/** A fresh random seed for `cookieHash`. */
export const randomSeed = (): number => randomInt(0, 2 ** 31) | 0;

export class CookieIndex {
  /** Slot + 1 at each position (0: empty). */
  private table = new Int32Array(INITIAL_CAPACITY);
  /** The full hash of the entry at each position (its home is `hash & mask`). */
  private hashes = new Int32Array(INITIAL_CAPACITY);
  private mask = INITIAL_CAPACITY - 1;
  private count = 0;

  constructor(private readonly store: ReplyStore) {}

  get size(): number {
    return this.count;
  }

  /** Positions the table has (for tests: it grows to keep at most half of them used). */
  get capacity(): number {
    return this.table.length;
  }

  /** The slot whose stored key is `key`, or -1. */
  find(key: string, hash: number): number {
    for (let pos = hash & this.mask; ; pos = (pos + 1) & this.mask) {
      const entry = this.table[pos]!;
      if (entry === 0) return -1;
      if (this.hashes[pos] === hash && this.store.keyEquals(entry - 1, key)) return entry - 1;
    }
  }

  /** Adds `slot` under `hash` (the caller has made sure its key is not in the index yet). */
  insert(hash: number, slot: number): void {
    if ((this.count + 1) * 2 > this.table.length) this.resize(this.table.length * 2);
    this.place(hash, slot);
    this.count++;
  }

  /** Takes `slot` (stored under `hash`) out; shifts the entries after it back so no probe run is broken. */
  remove(hash: number, slot: number): void {
    const mask = this.mask;
    let hole = hash & mask;
    while (this.table[hole] !== slot + 1) {
      if (this.table[hole] === 0) throw new Error(`cookie index: slot ${slot} is not indexed`);
      hole = (hole + 1) & mask;
    }
    this.table[hole] = 0;
    this.count--;
    for (let pos = (hole + 1) & mask; this.table[pos] !== 0; pos = (pos + 1) & mask) {
      const home = this.hashes[pos]! & mask;
      // The entry at `pos` may stay only if its home lies cyclically in (hole, pos]; else it moves into the hole.
      const stays = hole <= pos ? hole < home && home <= pos : hole < home || home <= pos;
      if (stays) continue;
      this.table[hole] = this.table[pos]!;
      this.hashes[hole] = this.hashes[pos]!;
      this.table[pos] = 0;
      hole = pos;
    }
  }

  /** Forgets every entry, and gives a grown table's memory back. */
  clear(): void {
    this.table = new Int32Array(INITIAL_CAPACITY);
    this.hashes = new Int32Array(INITIAL_CAPACITY);
    this.mask = INITIAL_CAPACITY - 1;
    this.count = 0;
  }

  private place(hash: number, slot: number): void {
    let pos = hash & this.mask;
    while (this.table[pos] !== 0) pos = (pos + 1) & this.mask;
    this.table[pos] = slot + 1;
    this.hashes[pos] = hash;
  }

  private resize(capacity: number): void {
    const { table, hashes } = this;
    this.table = new Int32Array(capacity);
    this.hashes = new Int32Array(capacity);
    this.mask = capacity - 1;
    for (let pos = 0; pos < table.length; pos++) if (table[pos] !== 0) this.place(hashes[pos]!, table[pos]! - 1);
  }
}
