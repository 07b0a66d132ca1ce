/**
 * An in-memory data plane for unit tests of the control plane: it binds nothing, remembers the streams and
 * rules it was given, refuses ports marked as taken, and lets a test set counters.
 */
import type {
  DataPlane,
  DtlsFingerprint,
  DataPlaneInfo,
  EngineEvent,
  EngineTotals,
  RecordingCounters,
  RecordingSpec,
  StreamCounters,
  StreamQuality,
  MosTotals,
  StreamRule,
  StreamSocketSpec,
} from '../../src/dataplane/types';
import { BindError } from '../../src/dataplane/types';

/** The fake's certificate: a fixed digest per hash, so tests can expect the exact a=fingerprint. */
export function fakeFingerprint(hash: DtlsFingerprint['hash']): DtlsFingerprint {
  const bytes = { 'sha-1': 20, 'sha-224': 28, 'sha-256': 32, 'sha-384': 48, 'sha-512': 64 }[hash];
  return { hash, value: Buffer.alloc(bytes, 0xab) };
}

export interface FakeDataPlaneOptions {
  /** Answer dtlsFingerprint() (a data plane with DTLS-SRTP); default false: the method is absent. */
  dtls?: boolean;
}

export class FakeDataPlane implements DataPlane {
  readonly streams = new Map<number, { spec: StreamSocketSpec; rule: StreamRule }>();
  readonly counters = new Map<number, StreamCounters>();
  /** Call-quality figures a test sets per stream id. */
  readonly quality = new Map<number, StreamQuality>();
  mos: MosTotals = { samples: 0, mosX10Sum: 0, mosX10SquareSum: 0 };
  /** "address:port" held by some other process. */
  readonly foreign = new Set<string>();
  private listener: ((events: EngineEvent[]) => void) | null = null;
  /** Present only with `{ dtls: true }`, like a data plane that has a DTLS certificate. */
  readonly dtlsFingerprint?: (hash: DtlsFingerprint['hash']) => DtlsFingerprint;
  /** Every hash dtlsFingerprint() was asked for. */
  readonly fingerprintHashes: DtlsFingerprint['hash'][] = [];

  constructor(options: FakeDataPlaneOptions = {}) {
    if (options.dtls) {
      this.dtlsFingerprint = (hash) => {
        this.fingerprintHashes.push(hash);
        return fakeFingerprint(hash);
      };
    }
  }
  /** Recordings started and the streams that currently feed each. */
  readonly recordings = new Map<number, { spec: RecordingSpec; streams: number[]; counters: RecordingCounters }>();

  readQualities(ids: readonly number[]): Promise<Map<number, StreamQuality>> {
    // Copied now, as the engine copies before any later removeStream runs.
    const result = new Map<number, StreamQuality>();
    for (const id of ids) {
      const q = this.quality.get(id);
      if (q) result.set(id, q);
    }
    return Promise.resolve(result);
  }

  mosTotals(): MosTotals {
    return this.mos;
  }

  addStream(spec: StreamSocketSpec, rule: StreamRule): void {
    if (this.streams.has(spec.id)) throw new Error(`duplicate stream id ${spec.id}`);
    if (spec.muxedWith === undefined) {
      const key = `${spec.localAddress}:${spec.localPort}`;
      if (this.foreign.has(key)) throw new BindError('in use', 'EADDRINUSE', spec.localAddress, spec.localPort);
      for (const s of this.streams.values()) {
        if (s.spec.muxedWith === undefined && `${s.spec.localAddress}:${s.spec.localPort}` === key) {
          throw new Error(`port ${key} bound twice`);
        }
      }
    } else if (!this.streams.has(spec.muxedWith)) {
      throw new Error(`muxed on unknown stream ${spec.muxedWith}`);
    }
    this.streams.set(spec.id, { spec, rule });
  }

  updateStream(id: number, rule: StreamRule): void {
    const s = this.streams.get(id);
    if (!s) throw new Error(`unknown stream ${id}`);
    s.rule = rule;
  }

  settled(): Promise<void> {
    return Promise.resolve();
  }

  removeStream(id: number): void {
    if (!this.streams.delete(id)) throw new Error(`unknown stream ${id}`);
  }

  readCounters(ids: readonly number[]): Map<number, StreamCounters> {
    const out = new Map<number, StreamCounters>();
    for (const id of ids) {
      if (!this.streams.has(id)) continue;
      out.set(
        id,
        this.counters.get(id) ?? {
          packets: 0,
          bytes: 0,
          errors: 0,
          lastPacketMs: 0,
          endpoint: this.streams.get(id)?.rule.expected ?? null,
          confirmed: false,
          ssrc: null,
          lastSeq: null,
        },
      );
    }
    return out;
  }

  totals(): EngineTotals {
    return { packets: 0, bytes: 0, errors: 0, malformed: 0, dropped: 0 };
  }

  lastPacketTimes(ids: Int32Array): Float64Array {
    return Float64Array.from(ids, (id) => (this.streams.has(id) ? (this.counters.get(id)?.lastPacketMs ?? 0) : 0));
  }

  info(): DataPlaneInfo {
    const unchanged = { policy: 'default' as const, priority: null, error: null };
    return { threads: 1, descriptorTables: 'shared', scheduling: unchanged, idleScheduling: unchanged };
  }

  startRecording(spec: RecordingSpec): void {
    if (this.recordings.has(spec.id)) throw new Error(`duplicate recording id ${spec.id}`);
    const counters = { queued: 0, written: 0, dropped: 0, bytes: 0, error: null };
    this.recordings.set(spec.id, { spec, streams: [], counters });
  }

  setRecordingStreams(recordingId: number, streamIds: readonly number[]): void {
    const r = this.recordings.get(recordingId);
    if (!r) throw new Error(`unknown recording ${recordingId}`);
    r.streams = streamIds.filter((id) => this.streams.has(id));
  }

  stopRecording(recordingId: number): RecordingCounters | null {
    const r = this.recordings.get(recordingId);
    if (!r) return null;
    this.recordings.delete(recordingId);
    return r.counters;
  }

  readRecording(recordingId: number): RecordingCounters | null {
    return this.recordings.get(recordingId)?.counters ?? null;
  }

  onEvents(listener: (events: EngineEvent[]) => void): void {
    this.listener = listener;
  }

  emit(events: EngineEvent[]): void {
    this.listener?.(events);
  }

  close(): void {
    this.streams.clear();
  }

  /** Stream bound to a local port (not muxed). */
  byPort(port: number): { spec: StreamSocketSpec; rule: StreamRule } | undefined {
    return [...this.streams.values()].find((s) => s.spec.localPort === port && s.spec.muxedWith === undefined);
  }
}
