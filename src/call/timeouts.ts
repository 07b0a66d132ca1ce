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
  const lastActivity = Math.max(call.lastSignalMs, lastPacketMs);
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
    for (const call of [...this.manager.calls.values()]) {
      const counters = this.dataPlane.readCounters(this.manager.streamIds(call));
      let last = 0;
      for (const c of counters.values()) last = Math.max(last, c.lastPacketMs);
      const reason = expiredReason(call, this.config, last, now);
      if (reason) this.manager.destroy(call, reason);
    }
  }
}
