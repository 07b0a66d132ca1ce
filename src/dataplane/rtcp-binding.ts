/**
 * Types for the test-only RTCP parser surface of the addon (`rtcpTest`, native/src/rtcp_binding.cpp). The
 * engine parses RTCP natively on its I/O threads; nothing here is on the packet path.
 */
import { nativeAddonExport } from './native';

/** Names of native RtcpError (rtcpErrorName in native/src/rtcp.cpp). */
export type RtcpErrorName = 'truncated' | 'bad-version' | 'bad-type' | 'bad-count' | 'too-many-packets' | 'bad-padding';

export interface RtcpReportBlockView {
  ssrc: number;
  fractionLost: number;
  cumulativeLost: number;
  extHighestSeq: number;
  jitter: number;
  lsr: number;
  dlsr: number;
}

export type RtcpParseView =
  | { error: RtcpErrorName }
  | {
      error: null;
      packets: number;
      sr: { ssrc: number; ntpMiddle: number; rtpTimestamp: number; packets: number; octets: number } | null;
      reporterSsrc: number | null;
      blocks: RtcpReportBlockView[];
      blocksSkipped: number;
      sdes: number;
      bye: number;
      app: number;
      feedback: number;
      xr: number;
      xrVoip: { ssrc: number; lossRate: number; discardRate: number; roundTripDelayMs: number; rFactor: number; mosLq: number; mosCq: number } | null;
    };

export interface RtcpTestBinding {
  parse(packet: Buffer): RtcpParseView;
  /** rtpengine 10.5's MOS ×10 from end-to-end RTT (µs), jitter (ms) and loss (%). */
  mos(rttUs: number, jitterMs: number, packetLossPct: number): number;
}

export function rtcpTestBinding(): RtcpTestBinding {
  return nativeAddonExport('rtcpTest') as RtcpTestBinding;
}
