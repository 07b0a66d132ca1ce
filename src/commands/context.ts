/**
 * What every ng command needs from the rest of the relay. Its own module so that command modules
 * (statistics, media control, ...) depend on this contract rather than on the dispatcher in handler.ts.
 */
import type { NgDict } from '../ng/types';
import type { CallManager } from '../call/call-manager';
import type { DataPlane } from '../dataplane/types';
import type { Logger } from '../logger';
import type { CallRecorder } from '../recording/call-recorder';
import type { ControlStats } from './statistics';
import type { LoadLimits } from './load-limits';
import type { TrafficSplit } from '../call/kernel-split';

export interface CommandContext {
  manager: CallManager;
  dataPlane: DataPlane;
  recorder: CallRecorder;
  logger: Logger;
  controlStats: () => ControlStats;
  startedMs: number;
  interfaces: () => NgDict[];
  /** Relayed packets/bytes/errors per second, userspace and kernel (absent: all 0). */
  rates?: () => TrafficSplit;
  /** --max-* limits on new calls; absent = none. */
  limits?: LoadLimits;
  /** `--state-dir` figures for `statistics` (absent when off). */
  stateStats?: () => NgDict;
  /** `--redis` with keyspace subscriptions: whether a call is another relay's (foreign); absent = none are. */
  isForeign?: (callId: string) => boolean;
}
