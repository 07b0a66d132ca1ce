/**
 * Files ngrelay creates under a recording directory that belongs to another user get that user and group.
 * Debian's rtpengine runs as user `rtpengine` and owns /var/spool/rtpengine; ngrelay started as root in its
 * place must not leave root-owned directories and files there, or rtpengine cannot write there again.
 */
import { chownSync, statSync } from 'node:fs';

export interface FileOwner {
  uid: number;
  gid: number;
}

/** `dir`'s owner when this process runs as root and `dir` belongs to someone else; otherwise null (nothing to do). */
export function ownerFor(dir: string): FileOwner | null {
  if (typeof process.geteuid !== 'function' || process.geteuid() !== 0) return null;
  try {
    const st = statSync(dir);
    if (st.uid === 0 && st.gid === 0) return null;
    return { uid: st.uid, gid: st.gid };
  } catch {
    return null;
  }
}

/** Gives `path` to `owner` (no-op for null). Throws the fs error, like the write that created the file would. */
export function giveTo(path: string, owner: FileOwner | null): void {
  if (owner !== null) chownSync(path, owner.uid, owner.gid);
}
