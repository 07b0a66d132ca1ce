/**
 * The one module that loads the native forwarding engine (native/build/Release/ngrelay_engine.node) and
 * exposes it as the typed `DataPlane` contract. Packets never cross into JS; this module only moves rules
 * in and counters/events out.
 *
 * Engine semantics worth knowing (native/src, see also src/dataplane/types.ts):
 * - `threads <= 0` means one I/O thread per core. Every call is synchronous: it returns once the owning I/O
 *   thread has applied it (tens of microseconds), so traffic right after addStream/updateStream obeys the rule.
 *   With `batchChanges` changes are only queued; a fence (one per event-loop turn that changed something,
 *   issued in an immediate) makes the I/O threads apply them without the JS thread waiting, and `settled()` resolves
 *   once every change made before it is in place (see EngineOptions.batchChanges): the relay's ng replies
 *   wait for that.
 * - A muxed RTCP stream shares its RTP stream's party: learning, strict-source and the endpoint reported in
 *   its counters are those of the RTP stream.
 * - Datagrams larger than 4096 bytes are truncated by the receive slot and counted as malformed.
 * - SRTP (rule.crypto): contexts are created on the JS thread in addStream/updateStream (bad keys throw there),
 *   kept when a direction's keys are unchanged, and used only by the owner thread of the stream that
 *   *receives* the packet: `inbound` decrypts on arrival, `outbound` encrypts what this stream forwards to
 *   its sink's party, so no context is ever shared between threads. SRTP failures count in `errors` and in
 *   `srtpAuthFailed`/`srtpReplayed`. Recording gets the decrypted packets (pass-through: a decrypted copy).
 * - Recording: the I/O threads build each pcap record into a bounded per-thread ring (full = dropped and
 *   counted, forwarding goes on); one writer thread writes each record with one write() to an O_APPEND file.
 */
import * as path from 'node:path';
import {
  BindError,
  type DataPlane,
  type DataPlaneInfo,
  type DtlsCertificateOptions,
  type DtlsCertificatePem,
  type DtlsFingerprint,
  type DtlsSessionKeys,
  type DtmfPlayOutcome,
  type DtmfPlayRequest,
  type EngineEvent,
  type EngineOptions,
  type KernelPathInfo,
  type EngineTotals,
  type MosTotals,
  RecordingFileError,
  type RecordingCounters,
  type RecordingFormat,
  type RecordingSpec,
  type SettleOptions,
  type StreamCounters,
  type StreamQuality,
  type StreamSrtpProgress,
  type StreamRule,
  type StreamSocketSpec,
  type ThreadScheduling,
} from './types';
import { RulePacker, checkRuleLayout, type NativeRuleLayout } from './rule-packing';
import { CounterBuffer, checkCounterLayout, unpackCounters, type CounterAux } from './counter-unpacking';

/** Shape of the addon's exported class (see native/src/addon.cpp). */
interface NativeEngineInstance {
  /**
   * The rule as RulePacker packs it (rule-packing.ts). Every field is checked, by the packer (types) or
   * natively (ranges, spec, nested objects): a missing or mistyped one throws a TypeError naming it.
   */
  addStream(spec: StreamSocketSpec, ruleSlots: Float64Array, expectedAddress: string | null, ruleExtras: StreamRule | null): void;
  updateStream(id: number, ruleSlots: Float64Array, expectedAddress: string | null, ruleExtras: StreamRule | null): void;
  removeStream(id: number): void;
  sync(): void;
  /** Positive: acknowledged later through onFence; negative: nobody waits (queued without waking the threads). */
  fence(): number;
  wakeQueued(): void;
  /** Numbers into `slots` (counter-unpacking.ts), per id the endpoint address or the ICE/DTLS statuses. */
  readCounters(ids: readonly number[], slots: Float64Array): CounterAux[];
  requestQuality(ids: readonly number[]): number;
  takeQuality(token: number): (StreamQuality | null)[];
  playDtmf(id: number, request: DtmfPlayRequest): DtmfPlayOutcome;
  readSrtpProgress(ids: readonly number[]): (StreamSrtpProgress | null)[];
  lastPacketTimes(ids: Int32Array): Float64Array;
  totals(): EngineTotals;
  info(): DataPlaneInfo;
  enableKernelPath(addresses: readonly string[]): KernelPathInfo;
  startRecording(id: number, path: string, format: RecordingFormat, egress: boolean, append: boolean): void;
  setRecordingStreams(id: number, streamIds: readonly number[]): void;
  stopRecording(id: number): RecordingCounters | null;
  readRecording(id: number): RecordingCounters | null;
  dtlsFingerprint(hash: DtlsFingerprint['hash']): Buffer;
  dtlsCertificate(): DtlsCertificatePem;
  readDtlsKeys(ids: readonly number[]): (DtlsSessionKeys | null)[];
  close(): void;
}

interface NativeAddon {
  version: string;
  qualityTotals(): MosTotals;
  ruleLayout: NativeRuleLayout;
  counterLayout: string[];
  NativeEngine: new (
    threads: number,
    receiveBufferBytes: number,
    onEvents: (events: EngineEvent[]) => void,
    scheduling: ThreadScheduling,
    idleScheduling: ThreadScheduling,
    onFence: (id: number) => void,
    dtls: DtlsCertificateOptions | undefined,
  ) => NativeEngineInstance;
}

/**
 * How soon after a queued fence the I/O threads holding its commands are woken. Every fence queued meanwhile
 * shares that one wake-up per thread; until then removed sockets stay bound (their ports stay out of the
 * allocator's rotation anyway, see PortAllocator, and a bind that needs one closes the retired sockets
 * first). A wake-up is an eventfd write the JS thread pays for, and on this VM a cross-CPU wake-up costs it
 * ~100-200 µs: at 10 ms that was 3 % of its time under ng load, at 50 ms it is a fifth of that.
 */
const QUEUED_FENCE_WAKE_MS = 50;

/** Both src/dataplane and dist/dataplane sit two levels below the package root. */
const ADDON_PATH = path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'ngrelay_engine.node');

let addon: NativeAddon | undefined;
function loadAddon(): NativeAddon {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  addon ??= require(ADDON_PATH) as NativeAddon;
  return addon;
}

function errorCode(err: unknown): string | undefined {
  if (err instanceof Error && 'code' in err) {
    const code = (err as Error & { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

class NativeDataPlane implements DataPlane {
  private readonly engine: NativeEngineInstance;
  /** The arguments every addStream/updateStream packs its rule into (reused: the calls are synchronous). */
  private readonly packer = new RulePacker();
  /** What readCounters writes the numbers into (reused). */
  private readonly counterBuffer = new CounterBuffer();
  private readonly listeners: ((events: EngineEvent[]) => void)[] = [];
  private closed = false;
  private readonly batchChanges: boolean;
  /** Set when `table` asked for the kernel path (whether or not the kernel accepted it). */
  private readonly kernelPath: KernelPathInfo | undefined;
  /** Batch mode: changes were made since the last fence. */
  private unfenced = false;
  /**
   * Batch mode: the queued immediate that issues the fence at the turn's end (kept so that a fence issued
   * earlier, settled({ fenceNow }), can take it back).
   */
  private fenceImmediate: NodeJS.Immediate | undefined;
  private lastFenceIssued = 0;
  /** Every fence up to this id has passed (the changes before it are in place). */
  private lastFencePassed = 0;
  /** Fences above the watermark that passed early (fences on different I/O threads pass in any order). */
  private readonly passedEarly = new Set<number>();
  /** settled() promises, each waiting for the watermark to reach `fence`, in fence order. */
  private readonly waiters: { fence: number; resolve: () => void }[] = [];
  private readonly issueQueuedFence = (): void => {
    this.fenceImmediate = undefined;
    this.issueFence();
  };
  /** A queued fence left commands with I/O threads that were not woken (see issueFence). */
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly wakeQueued = (): void => {
    this.wakeTimer = undefined;
    if (!this.closed) this.engine.wakeQueued();
  };

  constructor(options: EngineOptions) {
    const { NativeEngine, ruleLayout, counterLayout } = loadAddon();
    checkRuleLayout(ruleLayout);
    checkCounterLayout(counterLayout);
    this.engine = new NativeEngine(
      options.threads,
      options.receiveBufferBytes,
      (events) => this.dispatch(events),
      options.scheduling ?? { policy: 'default', priority: null },
      options.idleScheduling ?? { policy: 'default', priority: null },
      (id) => this.fencePassed(id),
      options.dtls,
    );
    this.batchChanges = options.batchChanges ?? false;
    if (options.table !== undefined && options.table >= 0)
      this.kernelPath = this.engine.enableKernelPath(options.kernelAddresses ?? []);
  }

  settled(options?: SettleOptions): Promise<void> {
    if (options?.fenceNow && this.unfenced) {
      // The queued immediate would find nothing left to fence: taken back, so that an idle loop can block
      // in its poll again instead of running one more turn for it.
      if (this.fenceImmediate) clearImmediate(this.fenceImmediate);
      this.fenceImmediate = undefined;
      this.issueFence();
    }
    // Unfenced changes are covered by the fence the queued immediate issues next (ids grow by one).
    const fence = this.unfenced ? this.lastFenceIssued + 1 : this.lastFenceIssued;
    if (this.closed || fence <= this.lastFencePassed) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ fence, resolve }));
  }

  private issueFence(): void {
    if (!this.unfenced || this.closed) return;
    this.unfenced = false;
    const fence = this.engine.fence();
    this.lastFenceIssued = Math.abs(fence);
    if (fence > 0) return;
    // Negative: nobody needs to wait (see Engine::fence). The I/O threads apply the commands before they read
    // another packet; they are woken shortly, once for every fence queued meanwhile, so that the fence passes
    // and what the batch retired (sockets, ports) is freed.
    this.fencePassed(-fence);
    this.wakeTimer ??= setTimeout(this.wakeQueued, QUEUED_FENCE_WAKE_MS).unref();
  }

  private fencePassed(id: number): void {
    // A queued fence passed on the JS side when it was issued; the engine still reports it when it retired
    // something (so that it is freed), which changes nothing here.
    if (id <= this.lastFencePassed) return;
    if (id !== this.lastFencePassed + 1) {
      this.passedEarly.add(id);
      return;
    }
    this.lastFencePassed = id;
    while (this.passedEarly.delete(this.lastFencePassed + 1)) this.lastFencePassed++;
    let done = 0;
    while (done < this.waiters.length && this.waiters[done]!.fence <= this.lastFencePassed) this.waiters[done++]!.resolve();
    if (done > 0) this.waiters.splice(0, done);
  }

  /**
   * After a change: wait for it now, or (batch mode) fence it without waiting, once per event-loop turn:
   * under load one turn handles many ng datagrams, and one fence (a wake-up per I/O thread) covers them all.
   */
  private changed(): void {
    if (!this.batchChanges) {
      this.engine.sync();
      return;
    }
    this.unfenced = true;
    this.fenceImmediate ??= setImmediate(this.issueQueuedFence);
  }

  addStream(spec: StreamSocketSpec, rule: StreamRule): void {
    try {
      const p = this.packer;
      p.pack(rule);
      this.engine.addStream(spec, p.slots, p.address, p.extras);
    } catch (err) {
      const code = errorCode(err);
      if (code !== undefined) {
        throw new BindError((err as Error).message, code, spec.localAddress, spec.localPort);
      }
      throw err;
    } finally {
      // A failed add may still have re-pointed nothing, but a sync is cheap when nothing is queued.
      this.changed();
    }
  }

  updateStream(id: number, rule: StreamRule): void {
    try {
      const p = this.packer;
      p.pack(rule);
      this.engine.updateStream(id, p.slots, p.address, p.extras);
    } finally {
      this.changed();
    }
  }

  removeStream(id: number): void {
    // After close() every socket is already gone; tearing down calls during shutdown is not an error.
    if (this.closed) return;
    this.engine.removeStream(id);
    this.changed();
  }

  readCounters(ids: readonly number[]): Map<number, StreamCounters> {
    const result = new Map<number, StreamCounters>();
    if (this.closed) return result;
    const slots = this.counterBuffer.forStreams(ids.length);
    const aux = this.engine.readCounters(ids, slots);
    for (let i = 0; i < ids.length; i++) {
      const row = unpackCounters(slots, i, aux[i]);
      if (row) result.set(ids[i]!, row);
    }
    return result;
  }

  async readQualities(ids: readonly number[]): Promise<Map<number, StreamQuality>> {
    const result = new Map<number, StreamQuality>();
    if (this.closed || ids.length === 0) return result;
    const token = this.engine.requestQuality(ids);
    this.changed(); // the copies are queued commands: the next fence (or, unbatched, a sync now) runs them
    await this.settled();
    if (this.closed) return result;
    this.engine.takeQuality(token).forEach((q, i) => {
      if (q) result.set(ids[i]!, q);
    });
    return result;
  }

  playDtmf(id: number, request: DtmfPlayRequest): DtmfPlayOutcome {
    if (this.closed) return 'unknown-stream';
    return this.engine.playDtmf(id, request);
  }

  mosTotals(): MosTotals {
    return loadAddon().qualityTotals();
  }

  readSrtpProgress(ids: readonly number[]): Map<number, StreamSrtpProgress> {
    const result = new Map<number, StreamSrtpProgress>();
    if (this.closed) return result;
    const rows = this.engine.readSrtpProgress(ids);
    ids.forEach((id, i) => {
      const row = rows[i];
      if (row) result.set(id, row);
    });
    return result;
  }

  lastPacketTimes(ids: Int32Array): Float64Array {
    if (this.closed) return new Float64Array(ids.length);
    return this.engine.lastPacketTimes(ids);
  }

  info(): DataPlaneInfo {
    const info = this.engine.info();
    return this.kernelPath ? { ...info, kernelPath: this.kernelPath } : info;
  }

  totals(): EngineTotals {
    return this.engine.totals();
  }

  startRecording(spec: RecordingSpec): void {
    try {
      this.engine.startRecording(spec.id, spec.path, spec.format, spec.egress, spec.append === true);
    } catch (err) {
      const code = errorCode(err);
      if (code !== undefined) throw new RecordingFileError((err as Error).message, code, spec.path);
      throw err;
    }
  }

  setRecordingStreams(recordingId: number, streamIds: readonly number[]): void {
    if (this.closed) return;
    this.engine.setRecordingStreams(recordingId, streamIds);
    this.changed();
  }

  stopRecording(recordingId: number): RecordingCounters | null {
    // After close() the engine has written and closed every file already.
    if (this.closed) return null;
    return this.engine.stopRecording(recordingId);
  }

  readRecording(recordingId: number): RecordingCounters | null {
    if (this.closed) return null;
    return this.engine.readRecording(recordingId);
  }

  dtlsFingerprint(hash: DtlsFingerprint['hash']): DtlsFingerprint {
    return { hash, value: this.engine.dtlsFingerprint(hash) };
  }

  dtlsCertificate(): DtlsCertificatePem {
    return this.engine.dtlsCertificate();
  }

  readDtlsKeys(ids: readonly number[]): Map<number, DtlsSessionKeys> {
    const result = new Map<number, DtlsSessionKeys>();
    if (this.closed) return result;
    const rows = this.engine.readDtlsKeys(ids);
    ids.forEach((id, i) => {
      const row = rows[i];
      if (row) result.set(id, row);
    });
    return result;
  }

  onEvents(listener: (events: EngineEvent[]) => void): void {
    this.listeners.push(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.wakeTimer);
    this.engine.close();
    // Every queued change ran before the I/O threads ended.
    for (const w of this.waiters.splice(0)) w.resolve();
  }

  private dispatch(events: EngineEvent[]): void {
    // A batch queued just before close() is not delivered: the caller has moved on.
    if (this.closed) return;
    for (const listener of this.listeners) listener(events);
  }
}

export function createNativeDataPlane(options: EngineOptions): DataPlane {
  return new NativeDataPlane(options);
}

/**
 * A named extra export of the addon, e.g. `srtpTest` (the SRTP test/bench functions of
 * native/src/srtp_binding.cpp, typed in src/dataplane/srtp-binding.ts). Lives here so that this module stays
 * the only one that loads the .node file.
 */
export function nativeAddonExport(name: string): unknown {
  return (loadAddon() as unknown as Record<string, unknown>)[name];
}
