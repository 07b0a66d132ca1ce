/**
 * Per-cookie reply cache for ng retransmits.
 *
 * Kamailio resends the same cookie (up to 5 times, 1 s apart by default) when a reply is late or lost. The
 * command must run once, and every copy must get the identical reply bytes — also a copy that arrives while
 * the first is still being handled (it waits for that same result).
 *
 * Like rtpengine's cookie_cache.c: two generations; every `generationMs` (30 s) the current one becomes the
 * old one and the old one is dropped, so a reply lives between 30 and 60 s. Rotation is done lazily on access
 * (no timer keeps the process alive); after a quiet period of two generations or more both are dropped at
 * once. The clock is injectable for tests.
 *
 * Unlike rtpengine, the cache is also bounded by entries and by bytes (ngrelay's `--ng-cache-max-entries`,
 * `--ng-cache-max-bytes`): anyone who can reach the ng port could otherwise grow it without limit with
 * distinct cookies. When a bound is exceeded the oldest replies go first (old generation, then current).
 *
 * Nothing of a cached reply is on the JavaScript heap: its cookie and bytes live in a ReplyStore
 * (reply-store.ts), the index is a hash table in typed arrays (cookie-index.ts), and the order replies came
 * in (which generation drops and which reply is evicted first) is a ring of slot numbers here. Only
 * commands still running are held in a Map, a handful at a time.
 */
import { CookieIndex, cookieHash, randomSeed } from './cookie-index';
import { ReplyStore, doubled } from './reply-store';


export interface CookieCacheOptions {
  /** Length of one generation in ms (default 30 000). */
  generationMs?: number;
  /** Monotonic milliseconds (default: performance.now()). */
  now?: () => number;
  /** Most replies held (default DEFAULT_MAX_ENTRIES). */
  maxEntries?: number;
  /** Most bytes held, cookies plus reply bytes (default DEFAULT_MAX_BYTES). */
  maxBytes?: number;
  /** Seed of the cookie hash (default: random per cache; tests fix it). */
  seed?: number;
}

/** Enough for ~13 s of replies at 2,500 offer+answer+delete cycles/s, far beyond Kamailio's retransmit window. */
export const DEFAULT_MAX_ENTRIES = 100_000;
export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

/** How `run` got its reply: computed now, taken from the cache, or shared with a still-running first copy. */
export type CookieOutcome = 'computed' | 'cached' | 'in-flight';

export interface CookieResult {
  reply: Buffer;
  outcome: CookieOutcome;
}

/** Size figures for `statistics`. */
export interface CookieCacheStats {
  entries: number;
  bytes: number;
  maxEntries: number;
  maxBytes: number;
  /** Replies dropped early because a bound was reached. */
  evicted: number;
}

export class CookieCache {
  private readonly generationMs: number;
  private readonly now: () => number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  private readonly store = new ReplyStore();
  private readonly index = new CookieIndex(this.store);
  private readonly seed: number;
  /** Per slot: its key's hash, the generation it was stored in, and its place in the arrival ring (0: none). */
  private slotHash: Int32Array = new Int32Array(1024);
  private slotGeneration: Int32Array = new Int32Array(1024);
  private slotStamp: Int32Array = new Int32Array(1024);
  /**
   * Slots in the order their replies were stored (oldest at `head`), each with the stamp it had then: an entry
   * whose slot has since been released or reused (a replaced reply) no longer matches and is skipped.
   */
  private ringSlot: Int32Array = new Int32Array(1024);
  private ringStamp: Int32Array = new Int32Array(1024);
  private head = 0;
  private ringLength = 0;
  private nextStamp = 1;
  /** The current generation's number; replies of the one before it are the old generation. */
  private generation = 0;
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private lastSwap: number;
  private heldBytes = 0;
  private evictedCount = 0;

  constructor(options: CookieCacheOptions = {}) {
    this.generationMs = options.generationMs ?? 30_000;
    this.now = options.now ?? (() => performance.now());
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    this.seed = options.seed ?? randomSeed();
    if (!(this.maxEntries >= 0) || !(this.maxBytes >= 0)) throw new RangeError('cookie cache bounds must be >= 0');
    this.lastSwap = this.now();
  }

  private rotate(): void {
    const elapsed = this.now() - this.lastSwap;
    if (elapsed < this.generationMs) return;
    if (elapsed >= 2 * this.generationMs) {
      this.clear();
    } else {
      this.generation++;
      // The old generation's replies are the oldest, so they sit at the head of the ring.
      for (let slot = this.oldest(); slot >= 0 && this.slotGeneration[slot]! < this.generation - 1; slot = this.oldest()) this.remove(slot);
    }
    this.lastSwap = this.now();
  }

  /** The slot of the oldest reply held (skipping ring entries of replies already gone), or -1. */
  private oldest(): number {
    while (this.ringLength > 0) {
      const slot = this.ringSlot[this.head]!;
      if (this.slotStamp[slot] === this.ringStamp[this.head]) return slot;
      this.head = (this.head + 1) % this.ringSlot.length;
      this.ringLength--;
    }
    return -1;
  }

  /** Appends `slot` to the arrival ring with a fresh stamp. */
  private enqueue(slot: number): void {
    if (this.ringLength === this.ringSlot.length) {
      // Unroll the ring into arrays twice as long, oldest first.
      const order = (a: Int32Array): Int32Array => {
        const b = new Int32Array(a.length * 2);
        b.set(a.subarray(this.head));
        b.set(a.subarray(0, this.head), a.length - this.head);
        return b;
      };
      this.ringSlot = order(this.ringSlot);
      this.ringStamp = order(this.ringStamp);
      this.head = 0;
    }
    const stamp = this.nextStamp;
    this.nextStamp = stamp === 0x7fffffff ? 1 : stamp + 1;
    const at = (this.head + this.ringLength) % this.ringSlot.length;
    this.ringSlot[at] = slot;
    this.ringStamp[at] = stamp;
    this.ringLength++;
    this.slotStamp[slot] = stamp;
  }

  /** Forgets the reply in `slot` and gives its memory back (its ring entry goes stale). */
  private remove(slot: number): void {
    this.index.remove(this.slotHash[slot]!, slot);
    this.heldBytes -= this.store.entryBytes(slot);
    this.slotStamp[slot] = 0;
    this.store.release(slot);
  }

  /** Drops oldest replies until both bounds hold. */
  private evict(): void {
    while (this.index.size > this.maxEntries || this.heldBytes > this.maxBytes) {
      const slot = this.oldest();
      if (slot < 0) return;
      this.remove(slot);
      this.evictedCount++;
    }
  }

  /** The cached reply for a cookie, if it is still alive. */
  get(cookie: string): Buffer | undefined {
    return this.lookup(cookie, cookieHash(cookie, this.seed));
  }

  /** Stores a finished reply (in the current generation), evicting the oldest ones beyond the bounds. */
  set(cookie: string, reply: Buffer): void {
    this.keep(cookie, cookieHash(cookie, this.seed), reply);
  }

  /** `get` with the cookie's hash already made (`run` makes it once for the lookup and the store). */
  private lookup(cookie: string, hash: number): Buffer | undefined {
    this.rotate();
    const slot = this.index.find(cookie, hash);
    return slot < 0 ? undefined : this.store.get(slot);
  }

  /** `set` with the hash already made. */
  private keep(cookie: string, hash: number, reply: Buffer): void {
    this.rotate();
    const existing = this.index.find(cookie, hash);
    if (existing >= 0) this.remove(existing);
    const slot = this.store.put(reply, cookie);
    while (slot >= this.slotHash.length) {
      this.slotHash = doubled(this.slotHash);
      this.slotGeneration = doubled(this.slotGeneration);
      this.slotStamp = doubled(this.slotStamp);
    }
    this.slotHash[slot] = hash;
    this.slotGeneration[slot] = this.generation;
    this.enqueue(slot);
    this.index.insert(hash, slot);
    this.heldBytes += this.store.entryBytes(slot);
    this.evict();
  }

  /**
   * Returns the cached reply, or joins the copy being handled, or runs `compute` once and caches its reply.
   * If `compute` rejects, nothing is cached and every waiting copy gets the same rejection.
   */
  async run(cookie: string, compute: () => Promise<Buffer>): Promise<CookieResult> {
    const hash = cookieHash(cookie, this.seed);
    const cached = this.lookup(cookie, hash);
    if (cached) return { reply: cached, outcome: 'cached' };
    const pending = this.inFlight.get(cookie);
    if (pending) return { reply: await pending, outcome: 'in-flight' };

    // A compute that throws at once rejects like one that fails later (no async wrapper per command for it).
    let promise: Promise<Buffer>;
    try {
      promise = compute();
    } catch (err) {
      promise = Promise.reject(err as Error);
    }
    this.inFlight.set(cookie, promise);
    try {
      const reply = await promise;
      this.keep(cookie, hash, reply);
      return { reply, outcome: 'computed' };
    } finally {
      this.inFlight.delete(cookie);
    }
  }

  /**
   * Drops the generations that have aged out, without a command arriving (the relay calls it on an idle
   * timer, so the replies' memory comes back once the load is gone); returns how many replies went.
   */
  expire(): number {
    const before = this.index.size;
    this.rotate();
    return before - this.index.size;
  }

  /** Replies held in both generations (in-flight ones not counted). */
  get size(): number {
    this.rotate();
    return this.index.size;
  }

  /** Bytes held (cookies plus replies) in both generations. */
  get bytes(): number {
    this.rotate();
    return this.heldBytes;
  }

  /** Commands being handled right now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  stats(): CookieCacheStats {
    return { entries: this.size, bytes: this.bytes, maxEntries: this.maxEntries, maxBytes: this.maxBytes, evicted: this.evictedCount };
  }

  clear(): void {
    this.index.clear();
    this.store.clear();
    this.slotStamp.fill(0);
    this.head = 0;
    this.ringLength = 0;
    this.heldBytes = 0;
  }
}
