/**
 * DTMF events the engine detected (RFC 4733, one per digit, at its end): logged, and sent to
 * `--dtmf-log-dest` as rtpengine 10.5 sends them — one UDP datagram of JSON per event:
 * {"callid","source_tag","tags","type":"DTMF","timestamp","source_ip","event","duration","volume"}
 * (timestamp in epoch seconds, duration in ms, volume in -dBm0; `source_label` when the party has a label).
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { EngineEvent } from '../dataplane/types';
import type { Logger } from '../logger';
import type { CallManager } from './call-manager';
import type { CallState, MonologueState } from './state';

type DtmfEngineEvent = Extract<EngineEvent, { type: 'dtmf' }>;

/** The monologue whose party sends on stream `id` (its own medias' streams receive what it sends). */
function senderOf(call: CallState, id: number): MonologueState | undefined {
  return call.monologues.find((m) => m.medias.some((media) => media.rtp.id === id || media.rtcp.id === id));
}

/** rtpengine's JSON for one event, keys in its order. */
export function dtmfLogJson(call: CallState, sender: MonologueState, e: DtmfEngineEvent): string {
  const others = call.monologues.filter((m) => m !== sender && m.tag !== '').map((m) => m.tag);
  const body: Record<string, string | number | string[]> = { callid: call.callId, source_tag: sender.tag };
  if (sender.label !== null) body['source_label'] = sender.label;
  body['tags'] = [...others, sender.tag];
  body['type'] = 'DTMF';
  body['timestamp'] = Math.floor(e.atMs / 1000);
  body['source_ip'] = e.from.address;
  body['event'] = e.event;
  body['duration'] = e.durationMs;
  body['volume'] = e.volume;
  return JSON.stringify(body);
}

export class DtmfLog {
  private socket: dgram.Socket | null = null;

  constructor(
    private readonly manager: CallManager,
    private readonly logger: Logger,
    private readonly dest: { address: string; port: number } | null,
  ) {
    if (dest) {
      this.socket = dgram.createSocket(isIPv6(dest.address) ? 'udp6' : 'udp4');
      this.socket.unref(); // never what keeps the process alive
      // A send failure (unreachable destination) must never disturb calls: log it and go on.
      this.socket.on('error', (err) => this.logger.warn({ err: err.message, dest }, 'DTMF log destination error'));
    }
  }

  onEvents(events: readonly EngineEvent[]): void {
    for (const e of events) {
      if (e.type !== 'dtmf') continue;
      const callId = this.manager.callIdOfStream(e.id);
      const call = callId === undefined ? undefined : this.manager.calls.get(callId);
      const sender = call ? senderOf(call, e.id) : undefined;
      if (!call || !sender) continue;
      this.logger.info({ 'call-id': call.callId, tag: sender.tag, event: e.event, durationMs: e.durationMs, volume: e.volume }, 'DTMF event');
      if (this.socket && this.dest) this.socket.send(dtmfLogJson(call, sender, e), this.dest.port, this.dest.address);
    }
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}
