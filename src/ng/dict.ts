/** Building ng dicts: null-prototype objects whose keys keep the order given (rtpengine does not sort). */
import type { NgDict, NgValue } from './types';

export function ngDict(entries: ReadonlyArray<readonly [string, NgValue]> = []): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}
