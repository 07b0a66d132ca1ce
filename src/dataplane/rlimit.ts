/**
 * The descriptor limit (RLIMIT_NOFILE) through the addon's native/src/rlimit.cpp (Node has no setrlimit).
 * Every media socket is a descriptor: the relay raises its soft limit to the hard one at start, and names
 * the limit when a bind fails with EMFILE.
 */
import { nativeAddonExport } from './native';

/** -1 = unlimited. */
export interface NofileLimit {
  soft: number;
  hard: number;
}

export interface NofileRaise extends NofileLimit {
  /** The soft limit before. */
  previous: number;
  /** Why it could not be raised (strerror text), or null. */
  error: string | null;
}

function native<T>(name: string): () => T {
  const fn = nativeAddonExport(name);
  if (typeof fn !== 'function') throw new TypeError(`addon has no ${name}() (rebuild it: npm run build:native)`);
  return fn as () => T;
}

/** Raises the soft RLIMIT_NOFILE to the hard limit. */
export function raiseNofileLimit(): NofileRaise {
  return native<NofileRaise>('raiseNofileLimit')();
}

function nofileLimit(): NofileLimit {
  return native<NofileLimit>('nofileLimit')();
}

/** Text for a log line: which descriptor limit a failed bind hit. */
export function descriptorLimitText(code: string): string {
  if (code === 'ENFILE') return 'the system-wide open file limit (fs.file-max) is reached';
  let soft = 'unknown';
  try {
    const l = nofileLimit();
    soft = l.soft < 0 ? 'unlimited' : String(l.soft);
  } catch {
    // the limit stays unknown in the message
  }
  return `the process descriptor limit RLIMIT_NOFILE (${soft}) is reached`;
}
