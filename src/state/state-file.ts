/**
 * One state file: a fixed header, then a msgpackr payload. Written to a temporary name and renamed over the
 * old file, so a reader sees the old or the new content, never a mix; the checksum catches what rename cannot
 * (a file truncated or damaged on disk, a copy from elsewhere).
 *
 * Header (16 bytes, big-endian): "NGRS" | u16 format version | u16 kind | u32 payload length | u32 checksum
 * (first 4 bytes of the payload's SHA-256).
 */
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { pack, unpack } from './msgpack';

/** The state format this ngrelay reads and writes. Bump it when CallState changes incompatibly. */
export const STATE_FORMAT_VERSION = 1;

const MAGIC = Buffer.from('NGRS', 'latin1');
const HEADER_BYTES = 16;

export type StateFileKind = 'call' | 'progress' | 'dtls-identity';
const KIND_CODE: Record<StateFileKind, number> = { call: 1, progress: 2, 'dtls-identity': 3 };

/** Why a state file was not read; the file is skipped, everything else is restored. */
export class StateFileError extends Error {
  override readonly name = 'StateFileError';
  constructor(
    readonly reason: 'truncated' | 'corrupt' | 'not-a-state-file' | 'other-version' | 'wrong-kind',
    message: string,
  ) {
    super(message);
  }
}

function checksum(payload: Buffer): number {
  return createHash('sha256').update(payload).digest().readUInt32BE(0);
}

export function encodeStateFile(kind: StateFileKind, value: unknown): Buffer {
  const payload = pack(value);
  const header = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(header, 0);
  header.writeUInt16BE(STATE_FORMAT_VERSION, 4);
  header.writeUInt16BE(KIND_CODE[kind], 6);
  header.writeUInt32BE(payload.length, 8);
  header.writeUInt32BE(checksum(payload), 12);
  return Buffer.concat([header, payload]);
}

export function decodeStateFile(kind: StateFileKind, bytes: Buffer): unknown {
  if (bytes.length < HEADER_BYTES) {
    if (bytes.length >= 4 && !bytes.subarray(0, 4).equals(MAGIC)) throw new StateFileError('not-a-state-file', 'not an ngrelay state file');
    throw new StateFileError('truncated', `truncated: ${bytes.length} bytes, shorter than the header`);
  }
  if (!bytes.subarray(0, 4).equals(MAGIC)) throw new StateFileError('not-a-state-file', 'not an ngrelay state file');
  const version = bytes.readUInt16BE(4);
  if (version !== STATE_FORMAT_VERSION) {
    throw new StateFileError(
      'other-version',
      `written in state format ${version} by another ngrelay version; this one reads format ${STATE_FORMAT_VERSION} only`,
    );
  }
  if (bytes.readUInt16BE(6) !== KIND_CODE[kind]) throw new StateFileError('wrong-kind', `not a ${kind} state file`);
  const length = bytes.readUInt32BE(8);
  const payload = bytes.subarray(HEADER_BYTES);
  if (payload.length < length) throw new StateFileError('truncated', `truncated: ${payload.length} of ${length} payload bytes`);
  if (payload.length > length) throw new StateFileError('corrupt', `${payload.length - length} bytes beyond the payload`);
  if (checksum(payload) !== bytes.readUInt32BE(12)) throw new StateFileError('corrupt', 'checksum mismatch');
  try {
    return unpack(payload);
  } catch (err) {
    throw new StateFileError('corrupt', `payload does not decode: ${(err as Error).message}`);
  }
}

/**
 * Write `bytes` to `path` atomically: a temporary file beside it, then rename. With `fsync` the data (and
 * not only the rename) survives a power loss; without, it survives a crash or kill of the process (the
 * kernel still holds it).
 */
export function writeFileAtomic(path: string, bytes: Buffer, fsync: boolean): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    let at = 0;
    while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readStateFile(kind: StateFileKind, path: string): unknown {
  return decodeStateFile(kind, readFileSync(path));
}
