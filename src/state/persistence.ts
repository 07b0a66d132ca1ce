/**
 * Calls survive a restart or a crash (`--state-dir`): each ng command's result is written before its reply
 * leaves (persist), media-driven state (learned endpoints, SRTP sequence state, last media time) by a tick
 * every TICK_MS when it moved enough to matter, and at start every call found is bound again (restore).
 */
import type { CallEndReason, CallManager } from '../call/call-manager';
import type { CallState, MediaState, StreamState } from '../call/state';
import { streamsOf } from '../call/ice-sockets';
import type { DataPlane, Endpoint, EngineEvent, DtlsSrtpKeys, SrtpKeys, SrtpProgress, StreamRule, StreamSrtpProgress } from '../dataplane/types';
import type { Logger } from '../logger';
import type { NgDict } from '../ng/types';
import { ngDict } from '../ng/dict';
import type { CallProgressState, CallStore, LoadedState, ProgressFile, StreamProgressState } from './call-store';
import type { RedisCallWriter, RedisStats } from './redis-store';

const TICK_MS = 500;
/**
 * A restored SRTP context estimates the ROC from the saved highest sequence number (RFC 3711 Appendix A),
 * which holds while fewer than 2^15 packets went by since; the tick writes again after half of that.
 */
const RTP_INDEX_STEP = 16384;
/** SRTCP indices are explicit: a restored sender skips this many, the tick writes again after half. */
export const SRTCP_INDEX_MARGIN = 64;
/** Media timeouts are whole seconds; the last media time is written when it moved by this much. */
const LAST_MEDIA_STEP_MS = 5000;

export interface PersistenceStats {
  lastWriteMs: number;
  writes: number;
  writeErrors: number;
  lastError: string | null;
  restoredCalls: number;
  failedCalls: number;
  skippedFiles: number;
  /** `--redis`: the Redis side's figures (absent without Redis). */
  redis?: RedisStats;
}

function sameEndpoint(a: Endpoint | null | undefined, b: Endpoint | null | undefined): boolean {
  return (a ?? null) === (b ?? null) || (!!a && !!b && a.address === b.address && a.port === b.port && a.family === b.family);
}

function rtpIndex(p: SrtpProgress | null | undefined): number | null {
  return p?.rtp ? p.rtp.roc * 65536 + p.rtp.seq : null;
}

/** True when `now` moved far enough from `saved` that a restore from `saved` could miss. */
function srtpMoved(saved: SrtpProgress | null | undefined, now: SrtpProgress | null | undefined): boolean {
  if (!now) return false;
  if (!saved) return true;
  if (now.rtp && (saved.rtp?.ssrc !== now.rtp.ssrc || Math.abs((rtpIndex(now) ?? 0) - (rtpIndex(saved) ?? 0)) >= RTP_INDEX_STEP)) return true;
  if (now.rtcp && (saved.rtcp?.ssrc !== now.rtcp.ssrc || now.rtcp.index - (saved.rtcp?.index ?? 0) >= SRTCP_INDEX_MARGIN / 2)) return true;
  return false;
}

/**
 * The resume state for a new context: the saved progress, SRTCP moved on past what may have been sent since.
 * DTLS-SRTP keys too: the engine applies it to contexts made from restored handshake keys only.
 */
function resumeOf<K extends SrtpKeys | DtlsSrtpKeys | null>(keys: K, saved: SrtpProgress | null | undefined): K {
  if (!keys || !saved) return keys;
  const resume: SrtpProgress = {
    ...(saved.rtp ? { rtp: saved.rtp } : {}),
    ...(saved.rtcp ? { rtcp: { ssrc: saved.rtcp.ssrc, index: (saved.rtcp.index + SRTCP_INDEX_MARGIN) & 0x7fffffff } } : {}),
  };
  return { ...keys, resume };
}

export class CallPersistence {
  private timer: NodeJS.Timeout | null = null;
  /** What the progress file holds (or will hold at the next write), per call. */
  private readonly progress = new Map<string, CallProgressState>();
  private progressDirty = false;
  private failing = false;
  readonly stats: PersistenceStats = {
    lastWriteMs: 0,
    writes: 0,
    writeErrors: 0,
    lastError: null,
    restoredCalls: 0,
    failedCalls: 0,
    skippedFiles: 0,
  };

  /** `--redis-write` (or `--redis`): this relay's calls are written there too; null = no Redis. */
  private redis: RedisCallWriter | null = null;
  /** `--subscribe-keyspace`: how many foreign calls are held (set by the Redis side). */
  foreignCount: () => number = () => 0;
  /** Calls restored from Redis (not from the state dir): the Redis writer adopts them. */
  private readonly fromRedis = new Set<string>();

  constructor(
    /** `--state-dir`; null when only Redis keeps the calls. */
    private readonly store: CallStore | null,
    private readonly manager: CallManager,
    private readonly dataPlane: DataPlane,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  private loaded: LoadedState | null = null;

  /** Read the state dir (a directory that cannot be used throws StateDirError: the start stops). */
  load(): void {
    if (this.store) {
      this.store.prepare();
      this.loaded = this.store.load();
    } else {
      this.loaded = { calls: [], progress: null, skipped: [] };
    }
  }

  /** Write this relay's calls to Redis as well (set before restore, so restored calls are adopted). */
  useRedis(writer: RedisCallWriter): void {
    this.redis = writer;
  }

  /**
   * Calls read from Redis join those of the state dir. A call in both is taken from the state dir: it is
   * written before each reply leaves, Redis a moment after, so the state dir's copy is never older.
   */
  addLoaded(fromRedis: LoadedState): void {
    if (!this.loaded) this.load();
    const loaded = this.loaded as LoadedState;
    const known = new Set(loaded.calls.map((c) => c.callId));
    const progressOf = new Map((loaded.progress?.calls ?? []).map((c) => [c.callId, c]));
    for (const call of fromRedis.calls) {
      if (known.has(call.callId)) continue;
      loaded.calls.push(call);
      this.fromRedis.add(call.callId);
    }
    for (const p of fromRedis.progress?.calls ?? []) {
      if (this.fromRedis.has(p.callId) && !progressOf.has(p.callId)) progressOf.set(p.callId, p);
    }
    loaded.progress = { writtenMs: loaded.progress?.writtenMs ?? 0, calls: [...progressOf.values()] };
    loaded.skipped.push(...fromRedis.skipped);
  }

  /**
   * Bind every stored call again; `resumeRecording` continues a restored call's recording. A call that cannot
   * be restored is logged with its reason; the others go on.
   */
  restore(resumeRecording: (call: CallState) => void = (call) => {
    call.recording = null;
  }): void {
    if (!this.loaded) this.load();
    const loaded = this.loaded as LoadedState;
    this.loaded = null;
    for (const s of loaded.skipped) {
      this.logger.error({ file: s.file, reason: s.reason, detail: s.detail }, s.action ?? 'state file skipped (renamed *.rejected)');
    }
    this.stats.skippedFiles = loaded.skipped.length;
    if (this.redis) this.redis.stats.skippedKeys = loaded.skipped.filter((x) => x.file.startsWith('redis ')).length;
    const progressOf = new Map((loaded.progress?.calls ?? []).map((c) => [c.callId, c]));
    for (const call of loaded.calls) {
      const saved = progressOf.get(call.callId);
      const streams = new Map((saved?.streams ?? []).map((s) => [s.id, s]));
      const source = this.fromRedis.has(call.callId) ? 'redis' : 'state-dir';
      try {
        this.restoreOne(call, saved);
        resumeRecording(call);
        if (source === 'redis') this.redis?.adopt(call, saved ?? null);
        // Restored from the state dir only: Redis gets it too.
        else this.redis?.writeCall(call);
        this.stats.restoredCalls++;
        if (source === 'redis' && this.redis) this.redis.stats.restoredCalls++;
        this.logger.info({ 'call-id': call.callId, streams: this.manager.streamIds(call).length, from: source }, 'call restored');
      } catch (err) {
        this.stats.failedCalls++;
        if (source === 'redis' && this.redis) this.redis.stats.failedCalls++;
        if (source === 'state-dir') this.store?.setAside(call.callId);
        const kept = source === 'state-dir' ? 'state file renamed *.failed' : 'key left in Redis';
        this.logger.error({ 'call-id': call.callId, reason: (err as Error).message, from: source }, `call not restored (${kept})`);
      }
    }
    // What was not restored leaves the progress file too.
    this.progressDirty = true;
    this.writeProgress();
  }

  /**
   * Bind one stored call again, with its media progress (learned endpoints, SRTP resume, last media time).
   * Throws (RestoreBindError, NgError) with nothing bound when it cannot.
   */
  restoreOne(call: CallState, saved: CallProgressState | undefined): void {
    const streams = new Map((saved?.streams ?? []).map((s) => [s.id, s]));
    if (saved && saved.lastMediaMs > 0) call.mediaBeforeRestoreMs = saved.lastMediaMs;
    this.manager.restore(call, (stream, rule) => this.restoredRule(stream, rule, streams.get(stream.id)));
    if (saved) this.progress.set(call.callId, { ...saved, streams: [...streams.values()] });
  }

  private restoredRule(stream: StreamState, rule: StreamRule, saved: StreamProgressState | undefined): StreamRule {
    if (!saved) return rule;
    let next = rule;
    // A learned endpoint is where the party really is: media goes there at once, before any packet comes in.
    if (saved.learned && sameEndpoint(saved.learned.forExpected, stream.expected)) next = { ...next, expected: saved.learned.endpoint };
    // A finished DTLS handshake of this very generation: its keys come back, no new handshake is run.
    if (next.dtls && saved.dtls && saved.dtls.generation === next.dtls.generation) next = { ...next, dtls: { ...next.dtls, restored: saved.dtls.keys } };
    if (next.crypto && saved.srtp) {
      next = {
        ...next,
        crypto: {
          ...next.crypto,
          inbound: resumeOf(next.crypto.inbound, saved.srtp.inbound),
          outbound: resumeOf(next.crypto.outbound, saved.srtp.outbound),
        },
      };
    }
    return next;
  }

  /**
   * After an ng command: the call's file is written (or removed when the call is gone) before the reply;
   * Redis gets it a moment later (never holding the reply), unless the command said `no-redis-update`.
   */
  persist(callId: string, redisUpdate = true): void {
    const call = this.manager.calls.get(callId);
    if (this.store) {
      const store = this.store;
      this.guard(() => {
        if (call) store.writeCall(call, this.now());
        else this.forgetLocal(callId);
      });
    } else if (!call) {
      this.forgetLocal(callId);
    }
    if (call && redisUpdate) this.redis?.writeCall(call);
    else if (!call) this.redis?.removeCall(callId);
  }

  /**
   * `standby`: the call stays bound but is no longer written to Redis; its key keeps the last state, for the
   * relay that takes over, and is not deleted when the call ends here.
   */
  release(callId: string): void {
    this.redis?.disown(callId);
  }

  /** A call ended (delete, timeout, terminate). Not on shutdown: SIGTERM keeps the calls for the next start. */
  callEnded(call: CallState, reason: CallEndReason): void {
    if (reason === 'shutdown') return;
    this.guard(() => this.forget(call.callId));
  }

  private forget(callId: string): void {
    this.redis?.removeCall(callId);
    this.forgetLocal(callId);
  }

  private forgetLocal(callId: string): void {
    this.store?.removeCall(callId);
    if (this.progress.delete(callId)) this.progressDirty = true;
  }

  /**
   * Learned endpoints come as engine events; they are written with the next tick. A finished DTLS handshake's
   * keys are written at once (a restart before the next tick would need a new handshake).
   */
  onEvents(events: EngineEvent[]): void {
    let dtlsDone = false;
    for (const e of events) {
      if (e.type === 'dtls') {
        if (e.ok) dtlsDone = this.saveDtlsKeys(e.id) || dtlsDone;
        continue;
      }
      // ICE's nominated address counts as learned: restored as the destination, media goes on to the party
      // (whose consent checks carry no nomination) before it nominates again.
      if (e.type !== 'learned' && e.type !== 'source-changed' && e.type !== 'ice-selected') continue;
      const callId = this.manager.callIdOfStream(e.id);
      const call = callId === undefined ? undefined : this.manager.calls.get(callId);
      if (!call) continue;
      const stream = this.findStream(call, e.id);
      if (!stream) continue;
      this.streamProgress(call.callId, e.id).learned = { endpoint: e.endpoint, forExpected: stream.expected };
      this.progressDirty = true;
    }
    if (dtlsDone) this.writeProgress();
  }

  /** The keys stream `id`'s handshake negotiated, with the generation of the DTLS state that ran it. */
  private saveDtlsKeys(id: number): boolean {
    const callId = this.manager.callIdOfStream(id);
    const call = callId === undefined ? undefined : this.manager.calls.get(callId);
    const generation = call ? this.findMedia(call, id)?.webrtc?.dtls?.generation : undefined;
    const keys = this.dataPlane.readDtlsKeys?.([id]).get(id);
    if (!call || generation === undefined || !keys) return false;
    this.streamProgress(call.callId, id).dtls = { generation, keys };
    this.progressDirty = true;
    return true;
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /** Stops the tick after a last one, so a SIGTERM keeps the freshest state. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.tick();
  }

  /** Reads SRTP progress and last media times; writes the progress file when something moved enough. */
  tick(): void {
    const calls = [...this.manager.calls.values()];
    const srtpIds: number[] = [];
    for (const call of calls) {
      // With DTLS-SRTP anywhere in the call, every stream may encrypt or decrypt with handshake keys (the
      // plain side's streams encrypt towards the DTLS party): all are read.
      const dtlsCall = call.monologues.some((mono) => mono.medias.some((m) => m.webrtc?.dtls));
      for (const mono of call.monologues) {
        for (const media of mono.medias) {
          if (!media.crypto && !dtlsCall) continue;
          for (const s of streamsOf(media)) if (s.id) srtpIds.push(s.id);
        }
      }
    }
    const srtp = srtpIds.length > 0 && this.dataPlane.readSrtpProgress ? this.dataPlane.readSrtpProgress(srtpIds) : new Map<number, StreamSrtpProgress>();
    for (const id of srtpIds) {
      const now = srtp.get(id);
      if (!now) continue;
      const callId = this.manager.callIdOfStream(id);
      if (callId === undefined) continue;
      const entry = this.streamProgress(callId, id);
      if (srtpMoved(entry.srtp?.inbound, now.inbound) || srtpMoved(entry.srtp?.outbound, now.outbound)) {
        entry.srtp = now;
        this.progressDirty = true;
      }
    }
    const idsOfCall = calls.map((c) => this.manager.streamIds(c));
    const ids = Int32Array.from(idsOfCall.flat());
    const times = this.dataPlane.lastPacketTimes(ids);
    let at = 0;
    calls.forEach((call, i) => {
      let last = 0;
      for (let k = 0; k < (idsOfCall[i]?.length ?? 0); k++) last = Math.max(last, times[at++] ?? 0);
      if (last === 0) return;
      const entry = this.callProgress(call.callId);
      if (last - entry.lastMediaMs >= LAST_MEDIA_STEP_MS) {
        entry.lastMediaMs = last;
        this.progressDirty = true;
      }
    });
    this.writeProgress();
  }

  private writeProgress(): void {
    if (!this.progressDirty) return;
    const file: ProgressFile = { writtenMs: this.now(), calls: [...this.progress.values()] };
    this.redis?.writeProgress(file);
    const store = this.store;
    if (!store) this.progressDirty = false;
    else if (this.guard(() => store.writeProgress(file))) this.progressDirty = false;
  }

  private callProgress(callId: string): CallProgressState {
    let entry = this.progress.get(callId);
    if (!entry) {
      entry = { callId, lastMediaMs: 0, streams: [] };
      this.progress.set(callId, entry);
    }
    return entry;
  }

  private streamProgress(callId: string, id: number): StreamProgressState {
    const call = this.callProgress(callId);
    let entry = call.streams.find((s) => s.id === id);
    if (!entry) {
      entry = { id };
      call.streams.push(entry);
    }
    return entry;
  }

  private findMedia(call: CallState, id: number): MediaState | undefined {
    for (const mono of call.monologues) for (const m of mono.medias) if (streamsOf(m).some((s) => s.id === id)) return m;
    return undefined;
  }

  private findStream(call: CallState, id: number): StreamState | undefined {
    for (const mono of call.monologues) for (const m of mono.medias) for (const s of streamsOf(m)) if (s.id === id) return s;
    return undefined;
  }

  /** Runs a write; a failure is counted and logged once per change from working to failing (and back). */
  private guard(write: () => void): boolean {
    try {
      write();
      this.stats.writes++;
      this.stats.lastWriteMs = this.now();
      if (this.failing) this.logger.info({ dir: this.store?.dir }, 'state dir writable again');
      this.failing = false;
      return true;
    } catch (err) {
      this.stats.writeErrors++;
      this.stats.lastError = (err as Error).message;
      if (!this.failing) this.logger.error({ dir: this.store?.dir, err: (err as Error).message }, 'cannot write call state');
      this.failing = true;
      return false;
    }
  }

  /** Figures of both stores, in one place (`statistics`, /metrics). */
  snapshot(): PersistenceStats {
    if (this.redis) this.stats.redis = { ...this.redis.snapshot(), foreignCalls: this.foreignCount() };
    return this.stats;
  }

  /** The `statistics` reply's `statedir` block (with a `redis` block under `--redis`). */
  statistics(): NgDict {
    const s = this.snapshot();
    const r = s.redis;
    const redis: Array<[string, NgDict]> = r
      ? [
          [
            'redis',
            ngDict([
              ['write', r.write],
              ['connected', r.connected ? 1 : 0],
              ['lastwrite', Math.floor(r.lastWriteMs / 1000)],
              ['writes', r.writes],
              ['writeerrors', r.writeErrors],
              ['lasterror', r.lastError ?? ''],
              ['pendingwrites', r.pending],
              ['restoredcalls', r.restoredCalls],
              ['failedcalls', r.failedCalls],
              ['skippedkeys', r.skippedKeys],
              ['foreigncalls', r.foreignCalls],
            ]),
          ],
        ]
      : [];
    return ngDict([
      ['dir', this.store?.dir ?? ''],
      ['lastwrite', Math.floor(s.lastWriteMs / 1000)],
      ['writes', s.writes],
      ['writeerrors', s.writeErrors],
      ['lasterror', s.lastError ?? ''],
      ['restoredcalls', s.restoredCalls],
      ['failedcalls', s.failedCalls],
      ['skippedfiles', s.skippedFiles],
      ...redis,
    ]);
  }
}
