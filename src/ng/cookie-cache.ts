/**
 * Per-cookie reply cache for ng retransmits.
 *
 * Kamailio resends the same cookie (up to 5 times, 1 s apart by default) when a reply is late or lost. The
 * command must run once, and every copy must get the identical reply bytes — also a copy that arrives while
 * the first is still being handled (it waits for that same result).
 *
 * Like rtpengine's cookie_cache.c: two generations (maps); every `generationMs` (30 s) the current one
 * becomes the old one and the old one is dropped, so a reply lives between 30 and 60 s. Rotation is done
 * lazily on access (no timer keeps the process alive); after a quiet period of two generations or more both
 * are dropped at once. The clock is injectable for tests.
 *
 * Unlike rtpengine, the cache is also bounded by entries and by bytes (ngrelay's `--ng-cache-max-entries`,
 * `--ng-cache-max-bytes`): anyone who can reach the ng port could otherwise grow it without limit with
 * distinct cookies. When a bound is exceeded the oldest replies go first (old generation, then current; a
 * Map iterates in insertion order, so the first key is the oldest).
 *
 * Reply bytes live off the JavaScript heap in a ReplyStore (reply-store.ts); the generations map each cookie
 * to its slot there, so the cache holds no object per reply.
 *
 * Long cookies are keyed by a digest: V8 hashes a string of 16,384 chars or more by its length alone, so
 * same-length long cookies would all collide in the Maps and every lookup would compare them one by one
 * (measured: 10 ms per request with 16 kB cookies, a flood any client could send).
 */
import { createHash } from 'node:crypto';
import { ReplyStore } from './reply-store';


export interface CookieCacheOptions {
  /** Length of one generation in ms (default 30 000). */
  generationMs?: number;
  /** Monotonic milliseconds (default: performance.now()). */
  now?: () => number;
  /** Most replies held (default DEFAULT_MAX_ENTRIES). */
  maxEntries?: number;
  /** Most bytes held, cookies plus reply bytes (default DEFAULT_MAX_BYTES). */
  maxBytes?: number;
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

/** Cookies longer than this are keyed by their SHA-256 (Kamailio's are ~20 bytes). */
const MAX_PLAIN_KEY = 256;

/**
 * The Map key of a cookie. A digest key starts with U+0100, which no latin1 cookie contains, so the two
 * kinds never meet.
 */
function keyOf(cookie: string): string {
  if (cookie.length <= MAX_PLAIN_KEY) return cookie;
  return `\u0100${createHash('sha256').update(cookie, 'latin1').digest('base64')}`;
}

/** Bytes an entry is charged: its key (latin1, one byte per char) and its reply. */
function entryBytes(cookie: string, replyLength: number): number {
  return cookie.length + replyLength;
}

export class CookieCache {
  private readonly generationMs: number;
  private readonly now: () => number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Cookie -> slot in `store`, per generation (a Map iterates in insertion order: the first key is the oldest). */
  private current = new Map<string, number>();
  private old = new Map<string, number>();
  private readonly store = new ReplyStore();
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private lastSwap: number;
  private heldBytes = 0;
  private evictedCount = 0;

  constructor(options: CookieCacheOptions = {}) {
    this.generationMs = options.generationMs ?? 30_000;
    this.now = options.now ?? (() => performance.now());
    this.maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    if (!(this.maxEntries >= 0) || !(this.maxBytes >= 0)) throw new RangeError('cookie cache bounds must be >= 0');
    this.lastSwap = this.now();
  }

  /** Gives back every slot of `map` and forgets it. */
  private drop(map: Map<string, number>): void {
    for (const [cookie, slot] of map) {
      this.heldBytes -= entryBytes(cookie, this.store.length(slot));
      this.store.release(slot);
    }
    map.clear();
  }

  private rotate(): void {
    const elapsed = this.now() - this.lastSwap;
    if (elapsed < this.generationMs) return;
    if (elapsed >= 2 * this.generationMs) {
      this.old = new Map();
      this.current = new Map();
      this.store.clear();
      this.heldBytes = 0;
    } else {
      this.drop(this.old);
      this.old = this.current;
      this.current = new Map();
    }
    this.lastSwap = this.now();
  }

  private remove(map: Map<string, number>, cookie: string): void {
    const slot = map.get(cookie);
    if (slot === undefined) return;
    map.delete(cookie);
    this.heldBytes -= entryBytes(cookie, this.store.length(slot));
    this.store.release(slot);
  }

  /** Drops oldest replies until both bounds hold. */
  private evict(): void {
    while (this.current.size + this.old.size > this.maxEntries || this.heldBytes > this.maxBytes) {
      const map = this.old.size > 0 ? this.old : this.current;
      const oldest = map.keys().next();
      if (oldest.done) return;
      this.remove(map, oldest.value);
      this.evictedCount++;
    }
  }

  private getKeyed(cookie: string): Buffer | undefined {
    this.rotate();
    const slot = this.current.get(cookie) ?? this.old.get(cookie);
    return slot === undefined ? undefined : this.store.get(slot);
  }

  private setKeyed(cookie: string, reply: Buffer): void {
    this.rotate();
    this.remove(this.old, cookie);
    this.remove(this.current, cookie);
    this.current.set(cookie, this.store.put(reply));
    this.heldBytes += entryBytes(cookie, reply.length);
    this.evict();
  }

  /**
   * Returns the cached reply, or joins the copy being handled, or runs `compute` once and caches its reply.
   * If `compute` rejects, nothing is cached and every waiting copy gets the same rejection.
   */
  run(cookie: string, compute: () => Promise<Buffer>): Promise<CookieResult> {
    return this.runKeyed(keyOf(cookie), compute);
  }

  /** The cached reply for a cookie, if it is still alive. */
  get(cookie: string): Buffer | undefined {
    return this.getKeyed(keyOf(cookie));
  }

  /** Stores a finished reply (in the current generation), evicting the oldest ones beyond the bounds. */
  set(cookie: string, reply: Buffer): void {
    this.setKeyed(keyOf(cookie), reply);
  }

  private async runKeyed(cookie: string, compute: () => Promise<Buffer>): Promise<CookieResult> {
    const cached = this.getKeyed(cookie);
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
      this.setKeyed(cookie, reply);
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
    const before = this.current.size + this.old.size;
    this.rotate();
    return before - (this.current.size + this.old.size);
  }

  /** Replies held in both generations (in-flight ones not counted). */
  get size(): number {
    this.rotate();
    return this.current.size + this.old.size;
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
    this.current.clear();
    this.old.clear();
    this.store.clear();
    this.heldBytes = 0;
  }
}
