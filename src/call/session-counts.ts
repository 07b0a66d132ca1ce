/**
 * Own and foreign sessions as rtpengine counts them, the one figure behind ng `statistics` (sessionsown /
 * sessionsforeign), rtpengine-ctl `list numsessions` and /metrics `rtpengine_sessions{type}`. A call is foreign
 * when `isForeign` says so (`--subscribe-keyspace`, src/state/foreign-calls.ts); without it none is.
 */
export interface SessionCounts {
  own: number;
  foreign: number;
  total: number;
}

export function sessionCounts(callIds: Iterable<string>, isForeign?: (callId: string) => boolean): SessionCounts {
  let total = 0;
  let foreign = 0;
  for (const id of callIds) {
    total++;
    if (isForeign?.(id)) foreign++;
  }
  return { own: total - foreign, foreign, total };
}
