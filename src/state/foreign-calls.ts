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
 * goes to the active relay meanwhile); a recorded one is recorded here too once bound, as rtpengine does.
 * The first ng command naming it takes it over: from then on it is this relay's own call, written and timed
 * out like any other, and later notifications of its old key are ignored. `rtpengine-ctl` adds and removes
 * subscriptions at runtime (ksadd/ksrm) and sets all calls foreign or own (standby/active).
 */
import { pack } from './msgpack';
import type { CallManager } from '../call/call-manager';
import type { CallState } from '../call/state';
import { streamsOf } from '../call/ice-sockets';
import type { CallProgressState } from './call-store';
import type { RedisConfig, RedisEndpoint } from '../config/redis-config';
import type { Logger } from '../logger';
import { idFromWire } from '../ng/byte-string';
import { getValue } from '../ng/request';
import type { NgDict } from '../ng/types';
import type { CallPersistence } from './persistence';
import { RedisConnection } from './redis-connection';
import { DTLS_IDENTITY_KEY } from './redis-dtls-identity';
import { decodeRedisRecord, keyOf, loadCalls, skippedKey, type RedisCallRecord } from './redis-store';

export const RETRY_BIND_MS = 250;

interface ForeignCall {
  /** The database it was read from (`keyspace`), or this relay's own (`standby`: one of its calls, set foreign). */
  db: number;
  origin: 'keyspace' | 'standby';
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

function patternOf(db: number): string {
  return `__keyspace@${db}__:*`;
}

export class ForeignCalls {
  private readonly calls = new Map<string, ForeignCall>();
  /** Calls taken over by an ng command: their old keys in the other relay's database no longer count. */
  private readonly taken = new Set<string>();
  private readonly readers = new Map<number, RedisConnection>();
  private subscriber: RedisConnection | null = null;
  /** After the first read of every database: later (re)connections read again. */
  private started = false;
  private retryTimer: NodeJS.Timeout | null = null;
  readonly stats: ForeignStats = { calls: 0, unbound: 0, takenOver: 0, skippedKeys: 0 };
  /** A recorded foreign call just bound here: its recording goes on (set by the relay; default: not recorded). */
  continueRecording: (call: CallState) => void = (call) => {
    call.recording = null;
  };

  constructor(
    private readonly config: RedisConfig,
    private readonly manager: CallManager,
    private readonly persistence: CallPersistence,
    private readonly logger: Logger,
  ) {}

  /**
   * Subscribe, then read what the subscribed databases hold now (a notification racing that read wins).
   * Without `--subscribe-keyspace` nothing connects until `ksadd` names a database.
   */
  async start(): Promise<void> {
    for (const db of this.config.subscribeKeyspace) await this.follow(db, this.config.required);
    this.started = true;
    await this.resync();
    this.retryTimer = setInterval(() => this.bindWaiting(), RETRY_BIND_MS);
    this.retryTimer.unref();
  }

  /** The subscribe connection, made on first use. */
  private async subscriberFor(required: boolean): Promise<RedisConnection> {
    if (this.subscriber) return this.subscriber;
    const sub = new RedisConnection(this.config.subscribe as RedisEndpoint, this.config, this.logger, 'subscribe');
    this.subscriber = sub;
    sub.client.on('pmessageBuffer', (_pattern: Buffer, channel: Buffer, message: Buffer) => this.onNotification(channel, message));
    // Subscriptions are renewed by ioredis after each reconnect (autoResubscribe); then every key is read
    // again, since notifications sent while disconnected are lost.
    sub.onReady(() => {
      if (this.started) void this.resync();
    });
    await sub.connect(required);
    return sub;
  }

  /**
   * Follow one more database (`--subscribe-keyspace` at start, `ksadd` at runtime): subscribed first, then
   * read, so a key written in between is seen by one or the other. False when it is followed already.
   */
  async follow(db: number, required = false): Promise<boolean> {
    if (this.readers.has(db)) return false;
    const reader = new RedisConnection({ ...(this.config.subscribe as RedisEndpoint), db }, this.config, this.logger, `keyspace ${db}`);
    this.readers.set(db, reader);
    // A reader coming back reads its database again.
    reader.onReady(() => {
      if (this.started && this.readers.get(db) === reader) void this.resyncDb(db, reader);
    });
    const sub = await this.subscriberFor(required);
    await reader.connect(required);
    const pattern = patternOf(db);
    const subscribe = (): void => {
      if (this.readers.get(db) === reader) void sub.client.psubscribe(pattern).catch(() => undefined);
    };
    if (sub.isUp) await sub.client.psubscribe(pattern);
    else sub.onReady(subscribe);
    if (this.started) await this.resyncDb(db, reader);
    return true;
  }

  /**
   * Stop following a database (`ksrm`): unsubscribed, and its foreign calls dropped (rtpengine's "removed
   * all foreign calls for keyspace"). False when it was not followed.
   */
  unfollow(db: number): boolean {
    const reader = this.readers.get(db);
    if (!reader) return false;
    this.readers.delete(db);
    reader.close();
    this.subscriber?.client.punsubscribe(patternOf(db)).catch(() => undefined);
    for (const [id, f] of [...this.calls]) if (f.db === db && f.origin === 'keyspace') this.drop(id, 'keyspace unsubscribed');
    this.logger.info({ db }, 'keyspace unsubscribed');
    return true;
  }

  /** `ksadd`: follow `db`, answered at once (subscribing and the first read go on in the background). */
  add(db: number): boolean {
    if (this.readers.has(db)) return false;
    this.follow(db).catch((err: Error) => this.logger.error({ db, err: err.message }, 'cannot follow keyspace'));
    this.logger.info({ db }, 'keyspace subscribed');
    return true;
  }

  /** `ksrm`. */
  remove(db: number): boolean {
    return this.unfollow(db);
  }

  /** The databases followed now, in the order they were added (`kslist`). */
  keyspaces(): number[] {
    return [...this.readers.keys()];
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
      for (const [id, f] of [...this.calls]) if (f.db === db && f.origin === 'keyspace' && !present.has(id)) this.drop(id, 'gone from Redis');
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
    if (callId === DTLS_IDENTITY_KEY) return; // the other relay's certificate, read at start only
    const event = message.toString('latin1');
    if (event === 'set') void this.fetch(db, callId);
    else if ((event === 'del' || event === 'expired' || event === 'evicted') && this.calls.get(callId)?.db === db) this.drop(callId, `key ${event}`);
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
    const callBytes = pack(record.call);
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
    const entry: ForeignCall = { db, origin: 'keyspace', record, callBytes, bound: false };
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
    try {
      this.persistence.restoreOne(call, progress);
      entry.bound = true;
      // Recorded here too, as rtpengine does (CallRecorder.continueForeign: same file, or same name).
      const live = this.manager.calls.get(call.callId);
      if (live) this.continueRecording(live);
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
    const streams = call.monologues.flatMap((m) => m.medias.flatMap(streamsOf));
    for (const s of streams) if (s.id !== 0) ids.set(s.id, this.manager.sockets.freshId());
    for (const s of streams) {
      if (s.id !== 0) s.id = ids.get(s.id) ?? 0;
      if (s.muxedWith !== null) s.muxedWith = ids.get(s.muxedWith) ?? null;
    }
    // The nominated and the DTLS-keying sockets of media with several addresses (src/call/ice-sockets.ts) are
    // named by id too.
    const renumbered = (sel: { rtp?: number; rtcp?: number }): { rtp?: number; rtcp?: number } => ({
      ...(sel.rtp !== undefined && ids.has(sel.rtp) ? { rtp: ids.get(sel.rtp) } : {}),
      ...(sel.rtcp !== undefined && ids.has(sel.rtcp) ? { rtcp: ids.get(sel.rtcp) } : {}),
    });
    for (const media of call.monologues.flatMap((m) => m.medias)) {
      if (media.iceSelected) media.iceSelected = renumbered(media.iceSelected);
      if (media.iceDtls) media.iceDtls = renumbered(media.iceDtls);
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
    if (f.origin === 'keyspace') this.readers.get(f.db)?.client.del(keyOf(callId)).catch(() => undefined);
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

  /**
   * `rtpengine-ctl standby`: every call of this relay's own becomes foreign, as rtpengine sets them: no longer
   * written (its key and the state dir keep what they hold for the relay taking over), ended only by
   * final-timeout, its media still relayed. Returns how many calls changed.
   */
  standby(ownDb: number): number {
    let changed = 0;
    const now = Date.now();
    for (const call of [...this.manager.calls.values()]) {
      if (this.calls.has(call.callId)) continue;
      this.persistence.release(call.callId);
      this.taken.delete(call.callId);
      const snapshot = structuredClone(call);
      const record: RedisCallRecord = { writtenMs: now, call: snapshot, progress: null };
      this.calls.set(call.callId, { db: ownDb, origin: 'standby', record, callBytes: pack(snapshot), bound: true });
      changed++;
    }
    if (changed > 0) this.logger.info({ calls: changed }, 'standby: own calls set foreign');
    this.count();
    return changed;
  }

  /**
   * `rtpengine-ctl active`: every foreign call becomes this relay's own (taken over as by an ng command, and
   * written at once). Calls whose ports cannot be bound here stay foreign. Returns how many calls changed.
   */
  active(): number {
    let changed = 0;
    for (const id of [...this.calls.keys()]) {
      if (!this.takeOver(id) || this.calls.has(id)) continue;
      this.persistence.persist(id);
      changed++;
    }
    if (changed > 0) this.logger.info({ calls: changed }, 'active: foreign calls set own');
    return changed;
  }

  /** The database a foreign call came from (undefined: not foreign). */
  keyspaceOf(callId: string): number | undefined {
    return this.calls.get(callId)?.db;
  }

  /** `terminate foreign`: every foreign call ends here (its key stays the other relay's). */
  terminateAll(): void {
    for (const id of [...this.calls.keys()]) this.drop(id, 'terminated by operator');
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
