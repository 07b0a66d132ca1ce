/**
 * Call recording on the control-plane side: which calls are recorded, their files and metadata, and keeping
 * the engine's recording fed with the call's current streams. Packets never come here: the engine writes the
 * pcap (src/dataplane/types.ts `startRecording`); this module names the files, writes the metadata and moves
 * both from DIR/spool/ to DIR/pcaps/ and DIR/metadata/ when the recording ends.
 *
 * Failures to record never fail a call: offer/answer still succeed (the reply carries a `warning`), only an
 * explicit `start recording` answers an error.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RelayConfig } from '../config/types';
import type { DataPlane, RecordingCounters } from '../dataplane/types';
import type { CallRecordingState, CallState } from '../call/state';
import type { Logger } from '../logger';
import { NgError } from '../errors';
import { metadataText } from './metadata-file';
import { recordingDirs, type RecordingDirs } from './recording-dir';
import { giveTo, ownerFor, type FileOwner } from './file-owner';
import { cutToLastRecord } from './spool-recovery';

/** What `query` shows of a running recording (src/commands/recording-reply.ts turns it into the ng dict). */
export interface RecordingStatus {
  recording: Readonly<CallRecordingState>;
  /** The engine's counters; null if the engine no longer knows the recording. */
  counters: RecordingCounters | null;
}

/** rtpengine's wording, with ngrelay's option name. */
export const NO_RECORDING_DIR = 'Call recording requested, but no recording directory configured (--recording-dir)';

/** Call-ids may hold '/', spaces, anything: keep file names to a safe alphabet and a sane length. */
export function fileStem(callId: string): string {
  const safe = callId.replace(/[^A-Za-z0-9._@+=-]/g, '_').replace(/^\.+/, '_');
  return safe.slice(0, 120) || 'call';
}

export interface SignalForRecording {
  mode: 'offer' | 'answer';
  fromTag: string;
  sdp: Buffer;
  metadata: string | null;
  /** `record-call` as sent: true = start, false = stop, null = unchanged. */
  recordCall: boolean | null;
}

export class CallRecorder {
  private readonly dirs: RecordingDirs | null;
  /** Owner of the files we create when the recording dir belongs to another user (file-owner.ts). */
  private readonly owner: FileOwner | null;
  private nextId = 1;
  /** Spool pcaps of foreign calls started here (not continued from the other relay's file). */
  private readonly startedHere = new Set<string>();

  constructor(
    private readonly config: Pick<RelayConfig, 'recordingDir' | 'recordingFormat' | 'recordEgress'>,
    private readonly dataPlane: DataPlane,
    private readonly streamIds: (call: CallState) => number[],
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.dirs = config.recordingDir === null ? null : recordingDirs(config.recordingDir);
    this.owner = this.dirs === null ? null : ownerFor(this.dirs.root);
  }

  /** Refuses a request that asks for recording when there is nowhere to record to (before any change). */
  checkRequest(recordCall: boolean | null): void {
    if (recordCall === true && !this.dirs) throw new NgError(NO_RECORDING_DIR);
  }

  /**
   * After an offer/answer was applied: start, stop or keep recording, note the SDP and metadata, feed the
   * call's current streams. Returns a warning for the reply when recording could not start.
   */
  afterSignal(call: CallState, signal: SignalForRecording): string | null {
    let warning: string | null = null;
    if (signal.recordCall === false) {
      this.stop(call);
      return null;
    }
    if (call.recordCall && !call.recording) {
      try {
        this.start(call);
      } catch (err) {
        warning = err instanceof NgError ? err.reason : String(err);
      }
    }
    const rec = call.recording;
    if (!rec) return warning;
    rec.sdps.push({
      mode: signal.mode,
      fromTag: signal.fromTag,
      packetsBefore: this.dataPlane.readRecording(rec.id)?.queued ?? 0,
      atMs: this.now(),
      sdp: signal.sdp.toString('utf8'),
    });
    if (signal.metadata !== null && !rec.metadata.includes(signal.metadata)) rec.metadata.push(signal.metadata);
    this.feed(call);
    this.writeSpoolMetadata(call, rec);
    return warning;
  }

  /** `start recording` (or record-call): a new recording, or resume a paused one. Throws NgError. */
  start(call: CallState): void {
    if (!this.dirs) throw new NgError(NO_RECORDING_DIR);
    call.recordCall = true;
    const existing = call.recording;
    if (existing) {
      if (existing.paused) {
        existing.paused = false;
        this.feed(call);
        this.logger.info({ 'call-id': call.callId, pcap: existing.pcapPath }, 'recording resumed');
      }
      return;
    }
    const name = `${fileStem(call.callId)}-${randomBytes(8).toString('hex')}`;
    const rec: CallRecordingState = {
      id: this.nextId++,
      name,
      pcapSpoolPath: path.join(this.dirs.spool, `${name}.pcap`),
      pcapPath: path.join(this.dirs.pcaps, `${name}.pcap`),
      metaSpoolPath: path.join(this.dirs.spool, `${name}.meta`),
      metaPath: path.join(this.dirs.metadata, `${name}.meta`),
      paused: false,
      startedMs: this.now(),
      sdps: [],
      metadata: call.metadata !== null ? [call.metadata] : [],
    };
    try {
      this.dataPlane.startRecording({
        id: rec.id,
        path: rec.pcapSpoolPath,
        format: this.config.recordingFormat,
        egress: this.config.recordEgress,
      });
    } catch (err) {
      call.recordCall = false;
      const message = err instanceof Error ? err.message : String(err);
      this.logger.error({ 'call-id': call.callId, err: message }, 'cannot start recording');
      throw new NgError(`Failed to start call recording: ${message}`);
    }
    call.recording = rec;
    try {
      giveTo(rec.pcapSpoolPath, this.owner);
    } catch (err) {
      this.logger.error({ 'call-id': call.callId, path: rec.pcapSpoolPath, err: (err as Error).message }, 'cannot give the pcap to the recording directory\'s owner');
    }
    this.feed(call);
    this.writeSpoolMetadata(call, rec);
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'recording started');
  }

  /**
   * A call restored after a restart (src/state/): its pcap in the spool goes on (cut to whole records, then
   * appended to), so one file holds the packets from before and after. Without the file, the call goes on
   * unrecorded (logged).
   */
  resume(call: CallState): void {
    const rec = call.recording;
    if (!rec) return;
    const fail = (why: string): void => {
      call.recording = null;
      this.logger.warn({ 'call-id': call.callId, pcap: rec.pcapSpoolPath, why }, 'restored call: its recording is not continued');
    };
    if (!this.dirs) return fail('no --recording-dir');
    if (!existsSync(rec.pcapSpoolPath)) return fail('the spool pcap is gone');
    if (cutToLastRecord(rec.pcapSpoolPath) === null) return fail('the spool file is not a pcap');
    rec.id = this.nextId++;
    try {
      this.dataPlane.startRecording({
        id: rec.id,
        path: rec.pcapSpoolPath,
        format: this.config.recordingFormat,
        egress: this.config.recordEgress,
        append: true,
      });
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
    this.feed(call);
    this.writeSpoolMetadata(call, rec);
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'recording continued after restart');
  }

  /**
   * A foreign call (src/state/foreign-calls.ts) bound here is recorded here too, as rtpengine records the
   * calls it reads from Redis: with the same file names, under this relay's --recording-dir. Where that spool
   * pcap exists (one host, one recording dir: the other relay is gone) it goes on in the same file (cut to
   * whole records, appended to); else a pcap of the same name starts here.
   */
  continueForeign(call: CallState): void {
    const rec = call.recording;
    if (!rec) return;
    if (!this.dirs) {
      call.recording = null;
      this.logger.warn({ 'call-id': call.callId }, 'foreign call: its recording is not continued here (no --recording-dir)');
      return;
    }
    rec.pcapSpoolPath = path.join(this.dirs.spool, `${rec.name}.pcap`);
    rec.pcapPath = path.join(this.dirs.pcaps, `${rec.name}.pcap`);
    rec.metaSpoolPath = path.join(this.dirs.spool, `${rec.name}.meta`);
    rec.metaPath = path.join(this.dirs.metadata, `${rec.name}.meta`);
    if (existsSync(rec.pcapSpoolPath) && cutToLastRecord(rec.pcapSpoolPath) !== null) {
      this.resume(call);
      return;
    }
    rec.id = this.nextId++;
    try {
      this.dataPlane.startRecording({ id: rec.id, path: rec.pcapSpoolPath, format: this.config.recordingFormat, egress: this.config.recordEgress });
    } catch (err) {
      call.recording = null;
      this.logger.warn({ 'call-id': call.callId, pcap: rec.pcapSpoolPath, why: (err as Error).message }, 'foreign call: its recording is not continued here');
      return;
    }
    this.startedHere.add(rec.pcapSpoolPath);
    this.feed(call);
    this.writeSpoolMetadata(call, rec);
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'foreign call: recording started here under its name');
  }

  /**
   * A foreign call dropped (the other relay ended it, or `ksrm`): a pcap started here that holds no packet is
   * removed (the recording is the other relay's); anything else is finished as usual.
   */
  dropForeign(call: CallState): void {
    const rec = call.recording;
    if (!rec || !this.startedHere.delete(rec.pcapSpoolPath)) {
      this.stop(call);
      return;
    }
    call.recording = null;
    const counters = this.dataPlane.stopRecording(rec.id);
    if ((counters?.written ?? 0) > 0) {
      this.finish(call, rec, counters);
      return;
    }
    for (const file of [rec.pcapSpoolPath, rec.metaSpoolPath]) rmSync(file, { force: true });
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'foreign call dropped: its empty recording here removed');
  }

  /**
   * The relay stops while it keeps its calls (--state-dir): the pcap is flushed and closed but stays in the
   * spool, with no end in its metadata, for `resume` at the next start.
   */
  detach(call: CallState): void {
    const rec = call.recording;
    if (!rec) return;
    this.dataPlane.stopRecording(rec.id);
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'recording left in the spool for the next start');
  }

  /** `pause recording`: the file stays open, nothing is written until `start recording`. */
  pause(call: CallState): void {
    const rec = call.recording;
    if (!rec || rec.paused) return;
    rec.paused = true;
    this.dataPlane.setRecordingStreams(rec.id, []);
    this.logger.info({ 'call-id': call.callId, pcap: rec.pcapSpoolPath }, 'recording paused');
  }

  /** `stop recording`, record-call=no, delete, timeout: close the pcap and move both files to their final place. */
  stop(call: CallState): RecordingCounters | null {
    call.recordCall = false;
    const rec = call.recording;
    if (!rec) return null;
    call.recording = null;
    const counters = this.dataPlane.stopRecording(rec.id);
    this.finish(call, rec, counters);
    return counters;
  }

  /** A stopped recording's files move to their final place (metadata with its end). */
  private finish(call: CallState, rec: CallRecordingState, counters: RecordingCounters | null): void {
    this.writeSpoolMetadata(call, rec, this.now());
    for (const [from, to] of [
      [rec.pcapSpoolPath, rec.pcapPath],
      [rec.metaSpoolPath, rec.metaPath],
    ] as const) {
      try {
        renameSync(from, to);
      } catch (err) {
        this.logger.error({ 'call-id': call.callId, from, to, err: (err as Error).message }, 'cannot move recording file');
      }
    }
    this.logger.info(
      {
        'call-id': call.callId,
        pcap: rec.pcapPath,
        written: counters?.written ?? null,
        dropped: counters?.dropped ?? null,
        error: counters?.error ?? null,
      },
      'recording finished',
    );
  }

  /** A running recording's state and counters; null when the call is not being recorded. */
  status(call: CallState): RecordingStatus | null {
    const recording = call.recording;
    if (!recording) return null;
    return { recording, counters: this.dataPlane.readRecording(recording.id) };
  }

  /** Points the engine's recording at the call's current streams (they change with re-INVITEs). */
  private feed(call: CallState): void {
    const rec = call.recording;
    if (!rec || rec.paused) return;
    this.dataPlane.setRecordingStreams(rec.id, this.streamIds(call));
  }

  private writeSpoolMetadata(call: CallState, rec: CallRecordingState, endMs: number | null = null): void {
    try {
      writeFileSync(rec.metaSpoolPath, metadataText(call, rec, endMs));
      giveTo(rec.metaSpoolPath, this.owner);
    } catch (err) {
      this.logger.error({ 'call-id': call.callId, path: rec.metaSpoolPath, err: (err as Error).message }, 'cannot write recording metadata');
    }
  }
}
