/**
 * Standby for other relays (`--subscribe-keyspace`): the calls of the subscribed Redis databases are held
 * here as foreign calls, as rtpengine does. At start every key of those databases is read; after that
 * Redis keyspace notifications (`__keyspace@DB__:<call-id>`, `set` / `del` / `expired`) keep them current.
 *
 * Like rtpengine, a foreign call's ports are bound at once (on a service address the relay does not hold
 * yet this needs `net.ipv4.ip_nonlocal_bind=1`), so media flows the moment the address moves here. Where
 * the bind fails (the ports are still the other relay's on the same host, or a VIP without nonlocal bind)
 * the call is kept unbound and the bind retried every RETRY_BIND_MS and before any ng command for it.
 *
 * A foreign call is never written to this relay's own database, and only `final-timeout` ends it (the media
 * goes to the active relay meanwhile). The first ng command naming it takes it over: from then on it is this
 * relay's own call, written and timed out like any other, and later notifications of its old key are ignored.
 */
import { Packr } from 'msgpackr';
import type { CallManager } from '../call/call-manager';
import type { CallState } from '../call/state';
import type { CallProgressState } from './call-store';
import type { RedisConfig, RedisEndpoint } from '../config/redis-config';
import type { Logger } from '../logger';
import { idFromWire } from '../ng/byte-string';
import { getValue } from '../ng/request';
import type { NgDict } from '../ng/types';
import type { CallPersistence } from './persistence';
import { RedisConnection } from './redis-connection';
import { decodeRedisRecord, keyOf, loadCalls, skippedKey, type RedisCallRecord } from './redis-store';

export const RETRY_BIND_MS = 250;

const packr = new Packr({ useRecords: false, moreTypes: false });

interface ForeignCall {
  db: number;
  record: RedisCallRecord;
  /** The call part of the record, packed: an update that changes only media progress binds nothing again. */
  callBytes: Buffer;
  /** Bound (in the call manager) or still waiting for its ports. */
  bound: boolean;
  lastFailure?: string;
}

export interface ForeignStats {
  calls: number;
  unbound: number;
  takenOver: number;
  skippedKeys: number;
}

const KEYSPACE = /^__keyspace@(\d+)__:/;

export class ForeignCalls {
  private readonly calls = new Map<string, ForeignCall>();
  /** Calls taken over by an ng command: their old keys in the other relay's database no longer count. */
  private readonly taken = new Set<string>();
  private readonly readers = new Map<number, RedisConnection>();
  private subscriber: RedisConnection | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  readonly stats: ForeignStats = { calls: 0, unbound: 0, takenOver: 0, skippedKeys: 0 };

  constructor(
    private readonly config: RedisConfig,
    private readonly manager: CallManager,
    private readonly persistence: CallPersistence,
    private readonly logger: Logger,
  ) {}

  /** Subscribe, then read what the subscribed databases hold now (a notification racing that read wins). */
  async start(): Promise<void> {
    const sub = this.config.subscribe as RedisEndpoint;
    this.subscriber = new RedisConnection(sub, this.config, this.logger, 'subscribe');
    for (const db of this.config.subscribeKeyspace) {
      this.readers.set(db, new RedisConnection({ ...sub, db }, this.config, this.logger, `keyspace ${db}`));
    }
    const client = this.subscriber.client;
    client.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => this.onNotification(channel, message));
    const patterns = this.config.subscribeKeyspace.map((db) => `__keyspace@${db}__:*`);
    // Subscriptions are renewed by ioredis after each reconnect (autoResubscribe); then every key is read
    // again, since notifications sent while disconnected are lost. A reader coming back reads its database.
    let started = false;
    this.subscriber.onReady(() => {
      if (started) void this.resync();
    });
    for (const [db, reader] of this.readers) {
      reader.onReady(() => {
        if (started) void this.resyncDb(db, reader);
      });
    }
    await this.subscriber.connect(this.config.required);
    await Promise.all([...this.readers.values()].map((r) => r.connect(this.config.required)));
    if (this.subscriber.isUp) await client.psubscribe(...patterns);
    else this.subscriber.onReady(() => void client.psubscribe(...patterns).catch(() => undefined));
    // Subscribed first, then read: a key written in between is seen by one or the other.
    started = true;
    await this.resync();
    this.retryTimer = setInterval(() => this.bindWaiting(), RETRY_BIND_MS);
    this.retryTimer.unref();
  }

  /** Every key of every subscribed database, as foreign calls; those gone from Redis are dropped. */
  private async resync(): Promise<void> {
    for (const [db, reader] of this.readers) await this.resyncDb(db, reader);
  }

  private async resyncDb(db: number, reader: RedisConnection): Promise<void> {
    if (!reader.isUp) return;
    try {
      const loaded = await loadCalls(reader, this.config.numThreads);
      for (const s of loaded.skipped) this.logger.error({ key: s.file, reason: s.reason, detail: s.detail }, 'foreign call key skipped');
      this.stats.skippedKeys = loaded.skipped.length;
      const present = new Set(loaded.records.map((r) => r.call.callId));
      for (const [id, f] of [...this.calls]) if (f.db === db && !present.has(id)) this.drop(id, 'gone from Redis');
      for (const r of loaded.records) this.hold(db, r);
    } catch (err) {
      this.logger.error({ db, err: (err as Error).message }, 'cannot read foreign calls');
    }
  }

  private onNotification(channel: Buffer, message: Buffer): void {
    const text = channel.toString('latin1');
    const m = KEYSPACE.exec(text);
    if (!m) return;
    const db = Number(m[1]);
    const callId = text.slice(m[0].length);
    const event = message.toString('latin1');
    if (event === 'set') void this.fetch(db, callId);
    else if (event === 'del' || event === 'expired' || event === 'evicted') this.drop(callId, `key ${event}`);
  }

  private async fetch(db: number, callId: string): Promise<void> {
    const reader = this.readers.get(db);
    if (!reader) return;
    let value: Buffer | null;
    try {
      value = await reader.client.getBuffer(keyOf(callId));
    } catch (err) {
      this.logger.error({ db, 'call-id': callId, err: (err as Error).message }, 'cannot read foreign call');
      return;
    }
    if (value === null) return;
    try {
      this.hold(db, decodeRedisRecord(value));
    } catch (err) {
      const s = skippedKey(reader, keyOf(callId), err);
      this.stats.skippedKeys++;
      this.logger.error({ key: s.file, reason: s.reason, detail: s.detail }, 'foreign call key skipped');
    }
  }

  /** A call of another relay's database: held (or updated) here, unless it is ours or was taken over. */
  private hold(db: number, record: RedisCallRecord): void {
    const id = record.call.callId;
    if (this.taken.has(id)) return;
    const before = this.calls.get(id);
    if (!before && this.manager.calls.has(id)) {
      this.logger.warn({ 'call-id': id, db }, 'call is in another relay\'s database but is this relay\'s own; ignored');
      return;
    }
    if (before && before.record.writtenMs > record.writtenMs) return;
    const callBytes = packr.pack(record.call);
    // Only the media progress moved (the other relay's tick): nothing to bind again.
    if (before && before.callBytes.equals(callBytes)) {
      before.record = { ...before.record, writtenMs: record.writtenMs, progress: record.progress };
      return;
    }
    // An update re-binds the call from its new state (sockets closed and opened again: a moment of
    // standby-side media, which goes to the active relay anyway).
    if (before?.bound) {
      const live = this.manager.calls.get(id);
      if (live) this.manager.destroy(live, 'foreign-gone');
    }
    const entry: ForeignCall = { db, record, callBytes, bound: false };
    this.calls.set(id, entry);
    if (!before) this.logger.info({ 'call-id': id, db }, 'foreign call held');
    this.tryBind(entry);
    this.count();
  }

  private tryBind(entry: ForeignCall): boolean {
    if (entry.bound) return true;
    // A fresh copy each attempt: a failed restore must not leave ids or sockets in the record.
    const call = structuredClone(entry.record.call);
    const progress = entry.record.progress ? structuredClone(entry.record.progress) : undefined;
    this.renumber(call, progress);
    // The other relay's recording stays its own: a foreign call is not recorded here.
    call.recording = null;
    try {
      this.persistence.restoreOne(call, progress);
      entry.bound = true;
      return true;
    } catch (err) {
      const reason = (err as Error).message;
      // One line per distinct reason, not one per retry.
      if (entry.lastFailure !== reason) this.logger.info({ 'call-id': call.callId, db: entry.db, reason }, 'foreign call waiting for its ports');
      entry.lastFailure = reason;
      return false;
    }
  }

  /** Stream ids are the other relay's numbering: each gets one of this relay's, links and progress follow. */
  private renumber(call: CallState, progress: CallProgressState | undefined): void {
    const ids = new Map<number, number>();
    const streams = call.monologues.flatMap((m) => m.medias.flatMap((media) => [media.rtp, media.rtcp]));
    for (const s of streams) if (s.id !== 0) ids.set(s.id, this.manager.sockets.freshId());
    for (const s of streams) {
      if (s.id !== 0) s.id = ids.get(s.id) ?? 0;
      if (s.muxedWith !== null) s.muxedWith = ids.get(s.muxedWith) ?? null;
    }
    if (progress) progress.streams = progress.streams.flatMap((p) => (ids.has(p.id) ? [{ ...p, id: ids.get(p.id) as number }] : []));
  }

  /**
   * Binds waiting calls until the first that still cannot be: while the other relay lives that is the first
   * one tried, so a tick costs one attempt, not one per call. The call that failed goes to the back, so one
   * that can never bind (its port is outside this relay's range) holds no other up for more than a tick.
   */
  private bindWaiting(): void {
    let changed = false;
    for (const [id, f] of [...this.calls]) {
      if (f.bound) continue;
      if (!this.tryBind(f)) {
        this.calls.delete(id);
        this.calls.set(id, f);
        break;
      }
      changed = true;
      this.logger.info({ 'call-id': id, db: f.db }, 'foreign call bound (its ports are free here now)');
    }
    if (changed) this.count();
  }

  private drop(callId: string, why: string): void {
    const f = this.calls.get(callId);
    if (!f) return;
    this.calls.delete(callId);
    if (f.bound) {
      const live = this.manager.calls.get(callId);
      if (live) this.manager.destroy(live, 'foreign-gone');
    }
    this.logger.info({ 'call-id': callId, db: f.db, why }, 'foreign call dropped');
    this.count();
  }

  has(callId: string): boolean {
    return this.calls.has(callId);
  }

  /**
   * Before an ng command for `callId`: a foreign call becomes this relay's own (bound now if it was
   * waiting). Returns false when the call is not foreign.
   */
  takeOver(callId: string): boolean {
    const f = this.calls.get(callId);
    if (!f) return false;
    if (!this.tryBind(f)) {
      this.logger.error({ 'call-id': callId, db: f.db }, 'foreign call cannot be taken over: its ports cannot be bound here');
      return true;
    }
    this.calls.delete(callId);
    this.taken.add(callId);
    this.stats.takenOver++;
    // The call is written to this relay's database from now on; the old key goes, so the other relay, back
    // again, does not restore a second copy of it.
    this.readers.get(f.db)?.client.del(keyOf(callId)).catch(() => undefined);
    this.logger.info({ 'call-id': callId, db: f.db }, 'foreign call taken over (now this relay\'s own)');
    this.count();
    return true;
  }

  /** Before an ng command: a foreign call it names is taken over (a `query` only binds it, it stays foreign). */
  beforeCommand(request: NgDict): void {
    const rawId = getValue(request, 'call-id');
    if (!Buffer.isBuffer(rawId) && typeof rawId !== 'string') return;
    const id = idFromWire(rawId);
    if (!this.calls.has(id)) return;
    const command = getValue(request, 'command');
    const name = Buffer.isBuffer(command) ? command.toString('latin1') : command;
    if (name === 'query') this.bindNow(id);
    else this.takeOver(id);
  }

  /** A query for a foreign call: bind it now if it is still waiting (it stays foreign). */
  bindNow(callId: string): void {
    const f = this.calls.get(callId);
    if (f && !f.bound && this.tryBind(f)) this.count();
  }

  /** The call ended (any reason): a later key of the same call-id may be held again. */
  forget(callId: string): void {
    this.taken.delete(callId);
  }

  private count(): void {
    this.stats.calls = this.calls.size;
    let unbound = 0;
    for (const f of this.calls.values()) if (!f.bound) unbound++;
    this.stats.unbound = unbound;
  }

  close(): void {
    if (this.retryTimer) clearInterval(this.retryTimer);
    this.subscriber?.close();
    for (const r of this.readers.values()) r.close();
  }
}
