/**
 * Calls in Redis (`--redis`, `--redis-write`): one key per call, named by its call-id as rtpengine names
 * them, holding the same encoded record as a state dir call file (state-file.ts) plus the call's media
 * progress, with `--redis-expires` as TTL.
 *
 * Writes never hold an ng reply up: a changed call is marked and written by the next flush (a pipeline, on
 * the next turn of the event loop); while Redis is down, slow or paused after errors, what changed waits in
 * that set and is written once Redis answers again (the newest state of each call, not every step).
 */
import { pack } from './msgpack';
import type { RedisConfig } from '../config/redis-config';
import type { CallState } from '../call/state';
import type { Logger } from '../logger';
import type { CallProgressState, LoadedState, ProgressFile, SkippedFile } from './call-store';
import { isCallState } from './call-store';
import { StateFileError, decodeStateFile, encodeStateFile } from './state-file';
import type { RedisConnection } from './redis-connection';
import { reconnectDelayMs } from './redis-connection';
import { DTLS_IDENTITY_KEY } from './redis-dtls-identity';

const DTLS_IDENTITY_KEY_BYTES = Buffer.from(DTLS_IDENTITY_KEY, 'latin1');

/** What one key holds. */
export interface RedisCallRecord {
  writtenMs: number;
  call: CallState;
  progress: CallProgressState | null;
}

export interface RedisStats {
  write: string;
  connected: boolean;
  lastWriteMs: number;
  writes: number;
  writeErrors: number;
  lastError: string | null;
  /** Calls changed but not yet in Redis (down, paused, in flight). */
  pending: number;
  restoredCalls: number;
  failedCalls: number;
  skippedKeys: number;
  foreignCalls: number;
}

/** Keys written per pipeline: big enough for bursts, small enough not to stall the loop. */
const FLUSH_BATCH = 500;

export function keyOf(callId: string): Buffer {
  // Call-ids are held one char per byte (ng/byte-string.ts): the key is exactly the call-id's bytes.
  return Buffer.from(callId, 'latin1');
}

function encodeRedisRecord(record: RedisCallRecord): Buffer {
  return encodeStateFile('call', record);
}

/** A key's value as a record, or StateFileError saying why not. */
export function decodeRedisRecord(bytes: Buffer): RedisCallRecord {
  const body = decodeStateFile('call', bytes);
  if (typeof body !== 'object' || body === null || !isCallState((body as { call?: unknown }).call)) {
    throw new StateFileError('corrupt', 'payload is not a call');
  }
  const record = body as Partial<RedisCallRecord> & { call: CallState };
  return { writtenMs: record.writtenMs ?? 0, call: record.call, progress: record.progress ?? null };
}

/** Reads every call of one database (restore at start, the foreign calls of a subscribed keyspace). */
export async function loadCalls(conn: RedisConnection, batches: number): Promise<LoadedState & { records: RedisCallRecord[] }> {
  const keys: Buffer[] = [];
  let cursor = '0';
  do {
    const [next, found] = await conn.client.scanBuffer(cursor, 'COUNT', 1000);
    cursor = next.toString();
    // The relay's DTLS certificate shares the database with the calls (redis-dtls-identity.ts).
    for (const key of found) if (!key.equals(DTLS_IDENTITY_KEY_BYTES)) keys.push(key);
  } while (cursor !== '0');
  const records: RedisCallRecord[] = [];
  const skipped: SkippedFile[] = [];
  const chunk = 200;
  const groups: Buffer[][] = [];
  for (let i = 0; i < keys.length; i += chunk) groups.push(keys.slice(i, i + chunk));
  // `--redis-num-threads` batches in flight at once.
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < groups.length) {
      const group = groups[next++] as Buffer[];
      const values = await conn.client.mgetBuffer(...group);
      group.forEach((key, i) => {
        const value = values[i];
        if (value === null || value === undefined) return; // expired or deleted meanwhile
        try {
          const record = decodeRedisRecord(value);
          if (!keyOf(record.call.callId).equals(key)) throw new StateFileError('corrupt', 'key does not match the call-id inside');
          records.push(record);
        } catch (err) {
          skipped.push(skippedKey(conn, key, err));
        }
      });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, batches) }, worker));
  const progress: ProgressFile = { writtenMs: 0, calls: records.flatMap((r) => (r.progress ? [r.progress] : [])) };
  return { calls: records.map((r) => r.call), progress, skipped, records };
}

/** A key that does not hold a call: kept in Redis for the operator (it expires by its TTL), never restored. */
export function skippedKey(conn: RedisConnection, key: Buffer, err: unknown): SkippedFile {
  return {
    file: `redis ${conn.where} key ${JSON.stringify(key.toString('latin1'))}`,
    reason: err instanceof StateFileError ? err.reason : 'unreadable',
    detail: (err as Error).message,
    action: 'Redis key skipped (left in Redis, not restored)',
  };
}

export class RedisCallWriter {
  /** The live state of every call this relay owns and writes (written at flush: the newest wins). */
  private readonly live = new Map<string, CallState>();
  private readonly progress = new Map<string, CallProgressState>();
  private readonly progressBytes = new Map<string, Buffer>();
  /** Keys this relay wrote (or restored): only those are deleted, so foreign calls' ends cost nothing. */
  private readonly owned = new Set<string>();
  /** What Redis is missing: 'set' = write the live state, 'del' = remove the key. */
  private readonly pending = new Map<string, 'set' | 'del'>();
  private flushing = false;
  private scheduled = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private errorsInRow = 0;
  private pausedUntilMs = 0;
  private failing = false;
  private closed = false;
  /** A call named like the DTLS certificate's key was refused (logged once). */
  private identityClashLogged = false;
  readonly stats: RedisStats;

  constructor(
    private readonly conn: RedisConnection,
    private readonly config: Pick<RedisConfig, 'expiresS' | 'allowedErrors' | 'disableTimeS'>,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.stats = {
      write: conn.where,
      connected: false,
      lastWriteMs: 0,
      writes: 0,
      writeErrors: 0,
      lastError: null,
      pending: 0,
      restoredCalls: 0,
      failedCalls: 0,
      skippedKeys: 0,
      foreignCalls: 0,
    };
    // Reconnected: every call goes again, not only those changed meanwhile (the server may have come back
    // empty, or from an old dump). The first connection has nothing to catch up on.
    let connectedBefore = conn.isUp;
    conn.onReady(() => {
      if (connectedBefore) for (const id of this.live.keys()) if (!this.pending.has(id)) this.pending.set(id, 'set');
      connectedBefore = true;
      this.schedule();
    });
  }

  /** A call restored from this database at start: its key is there and stays ours. */
  adopt(call: CallState, progress: CallProgressState | null): void {
    this.live.set(call.callId, call);
    this.owned.add(call.callId);
    if (progress) {
      this.progress.set(call.callId, progress);
      this.progressBytes.set(call.callId, pack(progress));
    }
  }

  writeCall(call: CallState): void {
    // Its key is the relay's DTLS certificate's: such a call is kept in the state dir only, if at all.
    if (call.callId === DTLS_IDENTITY_KEY) {
      if (!this.identityClashLogged) this.logger.warn({ 'call-id': call.callId }, 'call not written to Redis: its call-id is the key of the DTLS certificate');
      this.identityClashLogged = true;
      return;
    }
    this.live.set(call.callId, call);
    this.owned.add(call.callId);
    this.mark(call.callId, 'set');
  }

  removeCall(callId: string): void {
    this.live.delete(callId);
    this.progress.delete(callId);
    this.progressBytes.delete(callId);
    // Never written here (a foreign call, or the second notice of the same end): nothing to delete.
    if (!this.owned.delete(callId)) return;
    this.mark(callId, 'del');
  }

  /** `standby`: the call is no longer this relay's to write; its key stays as it is (not deleted). */
  disown(callId: string): void {
    this.live.delete(callId);
    this.progress.delete(callId);
    this.progressBytes.delete(callId);
    this.owned.delete(callId);
    this.pending.delete(callId);
  }

  /** The persistence tick's progress of every call: the keys whose part changed are written again. */
  writeProgress(file: ProgressFile): void {
    const seen = new Set<string>();
    for (const p of file.calls) {
      if (!this.live.has(p.callId)) continue;
      seen.add(p.callId);
      const bytes = pack(p);
      const before = this.progressBytes.get(p.callId);
      if (before && before.equals(bytes)) continue;
      this.progress.set(p.callId, p);
      this.progressBytes.set(p.callId, bytes);
      this.mark(p.callId, 'set');
    }
    for (const id of [...this.progress.keys()]) {
      if (!seen.has(id)) {
        this.progress.delete(id);
        this.progressBytes.delete(id);
      }
    }
  }

  private mark(callId: string, op: 'set' | 'del'): void {
    this.pending.set(callId, op);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush();
    });
  }

  /** Writes what is pending, batch by batch; stops (keeping the rest) at the first failure. */
  async flush(): Promise<void> {
    if (this.flushing || this.closed) return;
    if (this.now() < this.pausedUntilMs) return this.retryLater(this.pausedUntilMs - this.now());
    if (!this.conn.isUp) return; // onReady schedules the flush
    this.flushing = true;
    try {
      while (this.pending.size > 0 && !this.closed) {
        const batch = [...this.pending.entries()].slice(0, FLUSH_BATCH);
        for (const [id] of batch) this.pending.delete(id);
        const pipeline = this.conn.client.pipeline();
        const sent: Array<[string, 'set' | 'del']> = [];
        for (const [id, op] of batch) {
          const call = this.live.get(id);
          if (op === 'set' && call) {
            const record: RedisCallRecord = { writtenMs: this.now(), call, progress: this.progress.get(id) ?? null };
            pipeline.set(keyOf(id), encodeRedisRecord(record), 'EX', this.config.expiresS);
          } else {
            pipeline.del(keyOf(id));
          }
          sent.push([id, op]);
        }
        let results: Array<[Error | null, unknown]> | null;
        try {
          results = await pipeline.exec();
        } catch (err) {
          results = sent.map(() => [err as Error, null]);
        }
        let firstError: Error | null = null;
        sent.forEach(([id, op], i) => {
          const err = results?.[i]?.[0] ?? (results ? null : new Error('pipeline discarded'));
          if (!err) return;
          firstError ??= err;
          // Changed again meanwhile: the newer mark stands.
          if (!this.pending.has(id)) this.pending.set(id, op);
        });
        if (firstError) {
          this.failed(firstError, sent.length);
          return;
        }
        this.stats.writes += sent.length;
        this.stats.lastWriteMs = this.now();
        this.errorsInRow = 0;
        if (this.failing) this.logger.info({ redis: this.conn.where }, 'Redis writes going through again');
        this.failing = false;
      }
    } finally {
      this.flushing = false;
      this.stats.pending = this.pending.size;
    }
  }

  private failed(err: Error, count: number): void {
    this.stats.writeErrors += count;
    this.stats.lastError = err.message;
    this.errorsInRow++;
    if (!this.failing) this.logger.error({ redis: this.conn.where, err: err.message, pending: this.pending.size }, 'cannot write calls to Redis; they are kept and written when it answers');
    this.failing = true;
    if (this.config.allowedErrors >= 0 && this.errorsInRow > this.config.allowedErrors) {
      this.pausedUntilMs = this.now() + this.config.disableTimeS * 1000;
      this.errorsInRow = 0;
      this.logger.warn({ redis: this.conn.where, seconds: this.config.disableTimeS }, 'Redis writes paused after --redis-allowed-errors errors');
      this.retryLater(this.config.disableTimeS * 1000);
      return;
    }
    this.retryLater(reconnectDelayMs(this.errorsInRow));
  }

  private retryLater(ms: number): void {
    if (this.retryTimer || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flush();
    }, ms);
    this.retryTimer.unref();
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Waits (bounded) for what is pending to be written: a SIGTERM keeps the freshest state. */
  async drain(timeoutMs: number): Promise<void> {
    const until = this.now() + timeoutMs;
    while ((this.pending.size > 0 || this.flushing) && this.now() < until && this.conn.isUp) {
      await this.flush();
      if (this.pending.size > 0 || this.flushing) await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  snapshot(): RedisStats {
    this.stats.connected = this.conn.isUp;
    this.stats.pending = this.pending.size;
    return this.stats;
  }
}
