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
 */

export interface CookieCacheOptions {
  /** Length of one generation in ms (default 30 000). */
  generationMs?: number;
  /** Monotonic milliseconds (default: performance.now()). */
  now?: () => number;
}

/** How `run` got its reply: computed now, taken from the cache, or shared with a still-running first copy. */
export type CookieOutcome = 'computed' | 'cached' | 'in-flight';

export interface CookieResult {
  reply: Buffer;
  outcome: CookieOutcome;
}

export class CookieCache {
  private readonly generationMs: number;
  private readonly now: () => number;
  private current = new Map<string, Buffer>();
  private old = new Map<string, Buffer>();
  private readonly inFlight = new Map<string, Promise<Buffer>>();
  private lastSwap: number;

  constructor(options: CookieCacheOptions = {}) {
    this.generationMs = options.generationMs ?? 30_000;
    this.now = options.now ?? (() => performance.now());
    this.lastSwap = this.now();
  }

  private rotate(): void {
    const elapsed = this.now() - this.lastSwap;
    if (elapsed < this.generationMs) return;
    if (elapsed >= 2 * this.generationMs) {
      this.old = new Map();
      this.current = new Map();
    } else {
      this.old = this.current;
      this.current = new Map();
    }
    this.lastSwap = this.now();
  }

  /** The cached reply for a cookie, if it is still alive. */
  get(cookie: string): Buffer | undefined {
    this.rotate();
    return this.current.get(cookie) ?? this.old.get(cookie);
  }

  /** Stores a finished reply (in the current generation). */
  set(cookie: string, reply: Buffer): void {
    this.rotate();
    this.old.delete(cookie);
    this.current.set(cookie, reply);
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

  /** Commands being handled right now. */
  get inFlightCount(): number {
    return this.inFlight.size;
  }

  clear(): void {
    this.current.clear();
    this.old.clear();
  }
}
