/**
 * The state dir's files: `calls/<sha256 of call-id>.call`, one per call, rewritten whole on every change of
 * its signalling state; and `progress.state`, one file for what changes with media (learned endpoints, SRTP
 * sequence state, last media time), rewritten by the persistence tick. Unreadable files are renamed
 * `*.rejected` (kept for the operator, never read again) and reported.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { CallState } from '../call/state';
import type { DtlsSessionKeys, Endpoint, StreamSrtpProgress } from '../dataplane/types';
import { StateFileError, encodeStateFile, readStateFile, writeFileAtomic } from './state-file';

/** What the tick knows about one stream beyond the call file. */
export interface StreamProgressState {
  id: number;
  /** Endpoint learned from media, with the `expected` it was learned under (a re-offer elsewhere voids it). */
  learned?: { endpoint: Endpoint; forExpected: Endpoint | null };
  srtp?: StreamSrtpProgress;
  /** The keys of the stream's finished DTLS-SRTP handshake, for the rule generation that ran it. */
  dtls?: { generation: number; keys: DtlsSessionKeys };
}

export interface CallProgressState {
  callId: string;
  /** Last media on any of the call's streams (ms since the epoch; 0 = none). */
  lastMediaMs: number;
  streams: StreamProgressState[];
}

export interface ProgressFile {
  writtenMs: number;
  calls: CallProgressState[];
}

interface CallFile {
  writtenMs: number;
  call: CallState;
}

export interface SkippedFile {
  file: string;
  reason: string;
  detail: string;
  /** The log line's message (absent: a state file, "state file skipped (renamed *.rejected)"). */
  action?: string;
}

export interface LoadedState {
  calls: CallState[];
  progress: ProgressFile | null;
  skipped: SkippedFile[];
}

/** The state dir cannot be used: the start stops with this message. */
export class StateDirError extends Error {
  override readonly name = 'StateDirError';
  constructor(
    readonly dir: string,
    detail: string,
  ) {
    super(`state directory ${dir} (--state-dir): ${detail}`);
  }
}

const CALL_SUFFIX = '.call';
const PROGRESS_FILE = 'progress.state';

export function isCallState(v: unknown): v is CallState {
  if (typeof v !== 'object' || v === null) return false;
  const c = v as Partial<CallState>;
  return typeof c.callId === 'string' && Array.isArray(c.monologues) && typeof c.createdMs === 'number';
}

function isCallFile(v: unknown): v is CallFile {
  return typeof v === 'object' && v !== null && isCallState((v as { call?: unknown }).call);
}

function isProgressFile(v: unknown): v is ProgressFile {
  return typeof v === 'object' && v !== null && Array.isArray((v as { calls?: unknown }).calls);
}

export class CallStore {
  readonly callsDir: string;

  constructor(
    readonly dir: string,
    private readonly fsync: boolean,
  ) {
    this.callsDir = path.join(dir, 'calls');
  }

  /** Create the dirs; temporary files of a write cut short by a crash go (the old file is still whole). */
  prepare(): void {
    // Not recursive: a mistyped path fails here rather than creating a tree (and Node's recursive mkdir
    // loops forever under /proc).
    for (const d of [this.dir, this.callsDir]) {
      try {
        mkdirSync(d, { mode: 0o700 });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new StateDirError(d, (err as Error).message);
      }
    }
    for (const dir of [this.dir, this.callsDir]) {
      let names: string[];
      try {
        names = readdirSync(dir);
      } catch (err) {
        throw new StateDirError(dir, (err as Error).message);
      }
      for (const name of names) if (name.endsWith('.tmp')) unlinkSync(path.join(dir, name));
    }
  }

  fileOf(callId: string): string {
    return path.join(this.callsDir, createHash('sha256').update(callId).digest('hex').slice(0, 40) + CALL_SUFFIX);
  }

  writeCall(call: CallState, nowMs: number): void {
    const body: CallFile = { writtenMs: nowMs, call };
    writeFileAtomic(this.fileOf(call.callId), encodeStateFile('call', body), this.fsync);
  }

  removeCall(callId: string): void {
    try {
      unlinkSync(this.fileOf(callId));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  writeProgress(progress: ProgressFile): void {
    writeFileAtomic(path.join(this.dir, PROGRESS_FILE), encodeStateFile('progress', progress), this.fsync);
  }

  /** Every readable call file and the progress file; the others are set aside and listed in `skipped`. */
  load(): LoadedState {
    const skipped: SkippedFile[] = [];
    const calls: CallState[] = [];
    const reject = (file: string, err: unknown): void => {
      const reason = err instanceof StateFileError ? err.reason : 'unreadable';
      skipped.push({ file, reason, detail: (err as Error).message });
      try {
        renameSync(file, `${file}.rejected`);
      } catch {
        // Left in place: it is reported again next start, which is the right thing for a file we cannot move.
      }
    };
    for (const name of readdirSync(this.callsDir).sort()) {
      if (!name.endsWith(CALL_SUFFIX)) continue;
      const file = path.join(this.callsDir, name);
      try {
        const body = readStateFile('call', file);
        if (!isCallFile(body)) throw new StateFileError('corrupt', 'payload is not a call');
        calls.push(body.call);
      } catch (err) {
        reject(file, err);
      }
    }
    let progress: ProgressFile | null = null;
    const progressPath = path.join(this.dir, PROGRESS_FILE);
    try {
      const body = readStateFile('progress', progressPath);
      if (!isProgressFile(body)) throw new StateFileError('corrupt', 'payload is not a progress record');
      progress = body;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') reject(progressPath, err);
    }
    return { calls, progress, skipped };
  }

  /** A call that was read but could not be restored: its file is kept aside for the operator. */
  setAside(callId: string): void {
    const file = this.fileOf(callId);
    try {
      renameSync(file, `${file}.failed`);
    } catch {
      // Already gone: nothing to keep.
    }
  }
}
