/**
 * DTMF events the engine detected (RFC 4733, one per digit, at its end): logged, and sent to
 * `--dtmf-log-dest` as rtpengine 10.5 sends them — one UDP datagram of JSON per event:
 * {"callid","source_tag","tags","type":"DTMF","timestamp","source_ip","event","duration","volume"}
 * (timestamp in epoch seconds, duration in ms, volume in -dBm0). With `--dtmf-log-ng-tcp`, the same fields
 * go to every `--listen-tcp-ng` client as an ng message {"notify":"onDTMF","data":{...}} (bencode; keys in
 * rtpengine's order, which differs from the JSON's). rtpengine 10.5 writes no `source_label` in either,
 * even for a party with a label (test/compat/dtmf-log-ng-tcp.test.ts).
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import type { EngineEvent } from '../dataplane/types';
import { encode } from '../ng/bencode';
import { ngDict } from '../ng/dict';
import type { Logger } from '../logger';
import type { CallManager } from './call-manager';
import type { CallState, MonologueState } from './state';
import { streamsOf } from './ice-sockets';

type DtmfEngineEvent = Extract<EngineEvent, { type: 'dtmf' }>;

/** The monologue whose party sends on stream `id` (its own medias' streams receive what it sends). */
function senderOf(call: CallState, id: number): MonologueState | undefined {
  return call.monologues.find((m) => m.medias.some((media) => streamsOf(media).some((s) => s.id === id)));
}

/** The call's tags as rtpengine lists them: the other parties', then the sender's. */
function tagsOf(call: CallState, sender: MonologueState): string[] {
  return [...call.monologues.filter((m) => m !== sender && m.tag !== '').map((m) => m.tag), sender.tag];
}

/** rtpengine's JSON for one event, keys in its order. */
export function dtmfLogJson(call: CallState, sender: MonologueState, e: DtmfEngineEvent): string {
  return JSON.stringify({
    callid: call.callId,
    source_tag: sender.tag,
    tags: tagsOf(call, sender),
    type: 'DTMF',
    timestamp: Math.floor(e.atMs / 1000),
    source_ip: e.from.address,
    event: e.event,
    duration: e.durationMs,
    volume: e.volume,
  });
}

/** rtpengine's `--dtmf-log-ng-tcp` message body for one event (bencode, without the cookie), keys in its order. */
export function dtmfNotifyBencode(call: CallState, sender: MonologueState, e: DtmfEngineEvent): Buffer {
  const data = ngDict([
    ['tags', tagsOf(call, sender)],
    ['callid', call.callId],
    ['source_tag', sender.tag],
    ['type', 'DTMF'],
    ['source_ip', e.from.address],
    ['timestamp', Math.floor(e.atMs / 1000)],
    ['event', e.event],
    ['duration', e.durationMs],
    ['volume', e.volume],
  ]);
  return encode(ngDict([['notify', 'onDTMF'], ['data', data]]));
}

/** Where DTMF events go besides the log: `--dtmf-log-dest` (UDP) and/or the TCP ng clients. */
export interface DtmfLogTargets {
  dest: { address: string; port: number } | null;
  /** `--dtmf-log-ng-tcp` with a `--listen-tcp-ng` listener: sends one message to every connected client. */
  notifyNgClients: ((body: Buffer) => void) | null;
}

export class DtmfLog {
  private socket: dgram.Socket | null = null;

  private readonly dest: { address: string; port: number } | null;
  private readonly notifyNgClients: ((body: Buffer) => void) | null;

  constructor(
    private readonly manager: CallManager,
    private readonly logger: Logger,
    targets: DtmfLogTargets,
  ) {
    const dest = targets.dest;
    this.dest = dest;
    this.notifyNgClients = targets.notifyNgClients;
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
      this.notifyNgClients?.(dtmfNotifyBencode(call, sender, e));
    }
  }

  close(): void {
    this.socket?.close();
    this.socket = null;
  }
}
