/**
 * rtpengine's split of traffic between userspace and the kernel (here the eBPF fast path, `--table`), in one
 * place for `statistics`, `list totals` and `/metrics`: relayed packets/bytes/errors per side, their
 * per-second rates, and how many RTP streams are userspace-only, kernel-only or mixed right now.
 */
import type { CallManager } from './call-manager';
import type { DataPlane, EngineTotals } from '../dataplane/types';
import { selectedSocketOf } from './ice-sockets';

export interface TrafficFigures {
  packets: number;
  bytes: number;
  errors: number;
}

export interface TrafficSplit {
  userspace: TrafficFigures;
  kernel: TrafficFigures;
  total: TrafficFigures;
}

/** The engine's merged totals taken apart. The kernel path forwards without errors of its own (what it cannot forward goes up). */
export function trafficSplit(t: EngineTotals): TrafficSplit {
  const kernel = { packets: t.kernelPackets ?? 0, bytes: t.kernelBytes ?? 0, errors: 0 };
  return {
    userspace: { packets: t.packets - kernel.packets, bytes: t.bytes - kernel.bytes, errors: t.errors },
    kernel,
    total: { packets: t.packets, bytes: t.bytes, errors: t.errors },
  };
}

const ZERO_SPLIT: TrafficSplit = {
  userspace: { packets: 0, bytes: 0, errors: 0 },
  kernel: { packets: 0, bytes: 0, errors: 0 },
  total: { packets: 0, bytes: 0, errors: 0 },
};

function perSecond(now: TrafficFigures, before: TrafficFigures, seconds: number): TrafficFigures {
  const rate = (a: number, b: number): number => Math.max(0, Math.round((a - b) / seconds));
  return { packets: rate(now.packets, before.packets), bytes: rate(now.bytes, before.bytes), errors: rate(now.errors, before.errors) };
}

/**
 * rtpengine's `packetrate_user`/`_kernel`/... : what was relayed during the last second, per side. Sampled
 * once a second (start()); the figures are those of the last full second.
 */
export class TrafficRates {
  private last: { atMs: number; split: TrafficSplit } | null = null;
  private current: TrafficSplit = ZERO_SPLIT;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly totals: () => EngineTotals,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes one sample: the rates become the change since the previous one. */
  sample(): void {
    const atMs = this.now();
    const split = trafficSplit(this.totals());
    if (this.last && atMs > this.last.atMs) {
      const seconds = (atMs - this.last.atMs) / 1000;
      this.current = {
        userspace: perSecond(split.userspace, this.last.split.userspace, seconds),
        kernel: perSecond(split.kernel, this.last.split.kernel, seconds),
        total: perSecond(split.total, this.last.split.total, seconds),
      };
    }
    this.last = { atMs, split };
  }

  start(intervalMs = 1000): void {
    if (this.timer) return;
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  rates(): TrafficSplit {
    return this.current;
  }
}

export interface MediaStreamKinds {
  /** RTP streams with packets in the last 2 s, all of them seen by userspace. */
  userspace: number;
  /** ... all of them forwarded by the kernel path. */
  kernel: number;
  /** ... some of each (e.g. just handed over, or DTMF events going up beside kernel-forwarded audio). */
  mixed: number;
}

/** rtpengine counts a stream by its activity over the last 2 seconds (call_timer). */
const ACTIVE_WINDOW_MS = 2000;

/** RTP streams of every call, by where their recent packets went (rtpengine's media_userspace/_kernel/_mixed). */
export function mediaStreamKinds(manager: CallManager, dataPlane: DataPlane, nowMs = Date.now()): MediaStreamKinds {
  const ids: number[] = [];
  for (const call of manager.calls.values())
    // A media with a socket per address (src/call/ice-sockets.ts) counts by the one ICE nominated.
    for (const mono of call.monologues) for (const m of mono.medias) if (m.rtp.id) ids.push(selectedSocketOf(m, 'rtp').id);
  const kinds: MediaStreamKinds = { userspace: 0, kernel: 0, mixed: 0 };
  if (ids.length === 0) return kinds;
  const recent = (ms: number | undefined): boolean => ms !== undefined && ms > 0 && nowMs - ms < ACTIVE_WINDOW_MS;
  for (const c of dataPlane.readCounters(ids).values()) {
    // Without the kernel path every packet is userspace's.
    const user = recent(c.userspaceLastPacketMs ?? c.lastPacketMs);
    const kernel = recent(c.kernelLastPacketMs);
    if (user && kernel) kinds.mixed++;
    else if (kernel) kinds.kernel++;
    else if (user) kinds.userspace++;
  }
  return kinds;
}
