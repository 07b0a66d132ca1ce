/**
 * rtpengine's load-limit reply, the one fact shared by the session/CPU/bandwidth limits (--max-*) and by
 * overload shedding of the ng listeners. Kamailio's module sends `supports: ["load limit"]` and, on
 * `result: "load limit"`, tries its next relay; a client that did not say so gets rtpengine's error
 * "Parallel session limit reached" instead, which Kamailio also fails over on.
 */
import { ngDict } from './dict';
import type { NgDict, NgValue } from './types';

export const PARALLEL_SESSION_LIMIT_REASON = 'Parallel session limit reached';

/** Whether the request announced `supports: ["load limit"]` (bencode strings are Buffers). */
function supportsLoadLimit(request: NgDict): boolean {
  const supports: NgValue | undefined = request['supports'];
  if (!Array.isArray(supports)) return false;
  return supports.some((s) => (Buffer.isBuffer(s) ? s.toString('latin1') : s) === 'load limit');
}

/** The reply for a request refused because a limit is reached; `message` says which one. */
export function loadLimitReply(request: NgDict, message: string): NgDict {
  if (supportsLoadLimit(request)) {
    return ngDict([
      ['result', 'load limit'],
      ['message', message],
    ]);
  }
  return ngDict([
    ['result', 'error'],
    ['error-reason', PARALLEL_SESSION_LIMIT_REASON],
  ]);
}
