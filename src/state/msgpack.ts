/**
 * The msgpack codec of every state format (state files, Redis records, standby progress), loaded on first
 * use: a relay without `--state-dir` or Redis never loads msgpackr and its native helper.
 *
 * Plain maps and arrays (no records extension), so the bytes do not depend on what was packed before, and
 * one Packr can serve every caller.
 */
import type { Packr } from 'msgpackr';

let packr: Packr | undefined;

function codec(): Packr {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  packr ??= new (require('msgpackr') as typeof import('msgpackr')).Packr({ useRecords: false, moreTypes: false });
  return packr;
}

export function pack(value: unknown): Buffer {
  return codec().pack(value);
}

export function unpack(bytes: Buffer): unknown {
  return codec().unpack(bytes);
}
