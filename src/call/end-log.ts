/**
 * Log lines for a person reading a call's life: which local ports a party got (offer/answer lines), and at
 * the call's end the final counters of every stream (rtpengine logs a "Final packet stats" block per stream)
 * with the real reason and the call's duration.
 */
import type { StreamCounters } from '../dataplane/types';
import type { Logger } from '../logger';
import type { CallState, MonologueState, StreamState } from './state';

/** `127.0.0.1:30000/30001` per media (RTP/RTCP; one port under rtcp-mux), rejected media left out. */
export function localPorts(mono: MonologueState): string[] {
  return mono.medias
    .filter((m) => !m.rejected && m.rtp.localPort > 0)
    .map((m) => {
      const rtcp = m.rtcp.ownsPort && m.rtcp.localPort > 0 ? `/${m.rtcp.localPort}` : '';
      return `${m.rtp.localAddress}:${m.rtp.localPort}${rtcp}`;
    });
}

function endpointText(s: StreamState, counters: StreamCounters | undefined): string | null {
  const e = counters?.endpoint ?? s.expected;
  return e ? `${e.address.includes(':') ? `[${e.address}]` : e.address}:${e.port}` : null;
}

/**
 * One "final packet stats" line per stream of the call, then "call ended". `counters` must be read before
 * the streams are removed from the data plane.
 */
export function logCallEnd(
  logger: Logger,
  call: CallState,
  reason: string,
  durationMs: number,
  counters: Map<number, StreamCounters>,
): void {
  for (const mono of call.monologues) {
    for (const media of mono.medias) {
      for (const s of [media.rtp, media.rtcp]) {
        if (!s.id || (s.component === 'rtcp' && !s.ownsPort)) continue;
        const c = counters.get(s.id);
        logger.info(
          {
            'call-id': call.callId,
            tag: mono.tag,
            media: media.index,
            type: media.type,
            component: s.component,
            local: `${s.localAddress}:${s.localPort}`,
            remote: endpointText(s, c),
            packets: c?.packets ?? 0,
            bytes: c?.bytes ?? 0,
            errors: c?.errors ?? 0,
          },
          'final packet stats',
        );
      }
    }
  }
  logger.info({ 'call-id': call.callId, reason, duration: Number((durationMs / 1000).toFixed(3)) }, 'call ended');
}
