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
 */

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

/** Bytes an entry is charged: its key (latin1, one byte per char) and its reply. */
function entryBytes(cookie: string, reply: Buffer): number {
  return cookie.length + reply.length;
}

export class CookieCache {
  private readonly generationMs: number;
  private readonly now: () => number;
  readonly maxEntries: number;
  readonly maxBytes: number;
  private current = new Map<string, Buffer>();
  private old = new Map<string, Buffer>();
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

  private static mapBytes(map: Map<string, Buffer>): number {
    let n = 0;
    for (const [k, v] of map) n += entryBytes(k, v);
    return n;
  }

  private rotate(): void {
    const elapsed = this.now() - this.lastSwap;
    if (elapsed < this.generationMs) return;
    if (elapsed >= 2 * this.generationMs) {
      this.old = new Map();
      this.current = new Map();
      this.heldBytes = 0;
    } else {
      this.heldBytes -= CookieCache.mapBytes(this.old);
      this.old = this.current;
      this.current = new Map();
    }
    this.lastSwap = this.now();
  }

  private remove(map: Map<string, Buffer>, cookie: string): void {
    const reply = map.get(cookie);
    if (reply === undefined) return;
    map.delete(cookie);
    this.heldBytes -= entryBytes(cookie, reply);
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

  /** The cached reply for a cookie, if it is still alive. */
  get(cookie: string): Buffer | undefined {
    this.rotate();
    return this.current.get(cookie) ?? this.old.get(cookie);
  }

  /** Stores a finished reply (in the current generation), evicting the oldest ones beyond the bounds. */
  set(cookie: string, reply: Buffer): void {
    this.rotate();
    this.remove(this.old, cookie);
    this.remove(this.current, cookie);
    this.current.set(cookie, reply);
    this.heldBytes += entryBytes(cookie, reply);
    this.evict();
  }

  /**
   * Returns the cached reply, or joins the copy being handled, or runs `compute` once and caches its reply.
   * If `compute` rejects, nothing is cached and every waiting copy gets the same rejection.
   */
  async run(cookie: string, compute: () => Promise<Buffer>): Promise<CookieResult> {
    const cached = this.get(cookie);
    if (cached) return { reply: cached, outcome: 'cached' };
    const pending = this.inFlight.get(cookie);
    if (pending) return { reply: await pending, outcome: 'in-flight' };

    const promise = (async () => compute())();
    this.inFlight.set(cookie, promise);
    try {
      const reply = await promise;
      this.set(cookie, reply);
      return { reply, outcome: 'computed' };
    } finally {
      this.inFlight.delete(cookie);
    }
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
    this.heldBytes = 0;
  }
}
