/**
 * The once-a-second sweep that ends calls: delete-delay expiry, final-timeout, offer-timeout, and the media
 * timeouts, which read last-packet times from the data plane (the only place that sees packets).
 */
import type { RelayConfig } from '../config/types';
import type { DataPlane } from '../dataplane/types';
import type { CallEndReason, CallManager } from './call-manager';
import type { CallState } from './state';

export function expiredReason(
  call: CallState,
  config: Pick<RelayConfig, 'timeout' | 'silentTimeout' | 'offerTimeout' | 'finalTimeout'>,
  lastPacketMs: number,
  nowMs: number,
): CallEndReason | null {
  if (call.deleteAtMs !== null && nowMs >= call.deleteAtMs) return 'delete';
  if (config.finalTimeout > 0 && nowMs - call.createdMs >= config.finalTimeout * 1000) return 'final-timeout';
  const lastActivity = Math.max(call.lastSignalMs, lastPacketMs, call.mediaBeforeRestoreMs ?? 0);
  if (call.answeredMs === null) {
    return nowMs - lastActivity >= config.offerTimeout * 1000 ? 'offer-timeout' : null;
  }
  // A call where nobody sends (hold both ways, inactive) gets the longer silent-timeout.
  const anyoneSending = call.monologues.some((m) =>
    m.medias.some((media) => !media.rejected && (media.direction === 'sendrecv' || media.direction === 'sendonly')),
  );
  const limit = anyoneSending ? config.timeout : config.silentTimeout;
  if (nowMs - lastActivity >= limit * 1000) return anyoneSending ? 'timeout' : 'silent-timeout';
  return null;
}

export class TimeoutSweeper {
  private timer: NodeJS.Timeout | null = null;
  /** Foreign calls (src/state/foreign-calls.ts): their media goes to another relay, only final-timeout ends them. */
  isForeign: (callId: string) => boolean = () => false;

  constructor(
    private readonly manager: CallManager,
    private readonly dataPlane: DataPlane,
    private readonly config: RelayConfig,
    private readonly now: () => number = Date.now,
  ) {}

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  sweep(): void {
    const now = this.now();
    const calls = [...this.manager.calls.values()];
    // Every call's stream ids in one flat array and one crossing: the sweep runs on the JS thread, which
    // shares a core with an I/O thread, and a burst of work there holds packets back.
    const idsOfCall = calls.map((call) => this.manager.streamIds(call));
    const ids = new Int32Array(idsOfCall.reduce((n, list) => n + list.length, 0));
    let at = 0;
    for (const list of idsOfCall) for (const id of list) ids[at++] = id;
    const times = this.dataPlane.lastPacketTimes(ids);
    at = 0;
    calls.forEach((call, i) => {
      let last = 0;
      for (let k = 0; k < (idsOfCall[i]?.length ?? 0); k++) last = Math.max(last, times[at++] ?? 0);
      const reason = expiredReason(call, this.config, last, now);
      if (reason && (reason === 'final-timeout' || !this.isForeign(call.callId))) this.manager.destroy(call, reason);
    });
  }
}
