/**
 * The recording directory (`--recording-dir`): its three sub-directories, and the check at start-up that
 * turns a missing, unwritable or full directory into one clear message instead of failing calls later.
 *
 *   DIR/spool/     files of recordings in progress (`<name>.pcap`, `<name>.meta`)
 *   DIR/pcaps/     finished pcaps, moved here when the recording ends
 *   DIR/metadata/  finished metadata files, moved here with their pcap
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { giveTo, ownerFor } from './file-owner';

export interface RecordingDirs {
  root: string;
  spool: string;
  pcaps: string;
  metadata: string;
}

/** The recording directory cannot be used; the message names the directory and the option. */
export class RecordingDirError extends Error {
  override readonly name = 'RecordingDirError';
}

export function recordingDirs(root: string): RecordingDirs {
  const abs = path.resolve(root);
  return {
    root: abs,
    spool: path.join(abs, 'spool'),
    pcaps: path.join(abs, 'pcaps'),
    metadata: path.join(abs, 'metadata'),
  };
}

function reason(err: unknown): string {
  if (err instanceof Error && 'code' in err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'does not exist';
    if (code === 'EACCES' || code === 'EPERM') return 'not writable (permission denied)';
    if (code === 'EROFS') return 'on a read-only file system';
    if (code === 'ENOSPC' || code === 'EDQUOT') return 'file system full';
    if (code === 'ENOTDIR') return 'not a directory';
    return `${code}: ${err.message}`;
  }
  return String(err);
}

/**
 * Checks that DIR exists and is a directory, creates its sub-directories (owned by DIR's owner, see
 * file-owner.ts) and writes (then removes) a probe file in each, so "not writable" and "full" show at
 * start-up. Throws RecordingDirError.
 */
export function prepareRecordingDir(root: string): RecordingDirs {
  const dirs = recordingDirs(root);
  const fail = (what: string, err: unknown): never => {
    throw new RecordingDirError(`recording directory ${what} (--recording-dir=${root}): ${reason(err)}`);
  };
  try {
    if (!statSync(dirs.root).isDirectory()) fail(dirs.root, Object.assign(new Error('not a directory'), { code: 'ENOTDIR' }));
  } catch (err) {
    if (err instanceof RecordingDirError) throw err;
    fail(dirs.root, err);
  }
  // Ask about the directory itself first: a recursive mkdir on a read-only file system says ENOENT.
  try {
    accessSync(dirs.root, constants.W_OK);
  } catch (err) {
    fail(dirs.root, err);
  }
  // Sub-directories we create in someone else's directory (rtpengine's spool) become theirs.
  const owner = ownerFor(dirs.root);
  for (const dir of [dirs.spool, dirs.pcaps, dirs.metadata]) {
    try {
      mkdirSync(dir, { recursive: true });
      giveTo(dir, owner);
      const probe = path.join(dir, `.ngrelay-probe-${process.pid}`);
      const fd = openSync(probe, 'w');
      try {
        writeSync(fd, Buffer.alloc(512));
      } finally {
        closeSync(fd);
        unlinkSync(probe);
      }
    } catch (err) {
      fail(dir, err);
    }
  }
  return dirs;
}
