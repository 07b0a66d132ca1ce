/**
 * The relays the WebRTC tests run against, and the ng flag sets they are driven with. Each scenario runs
 * once per row, so the same browser, phone and flags judge rtpengine 10.5 (the reference, which does ICE and
 * DTLS-SRTP today) and ngrelay.
 */
import { expect } from 'vitest';
import type { BInputDict, PlainValue } from './bencode';
import type { NgRawClient } from './ng-client';
import { freeMediaRange, freeUdpPort } from './free-ports';
import { startNgrelay } from './ngrelay';
import type { RelayOptions, RelayUnderTest } from './relay';
import { startRtpengine } from './rtpengine';

export interface WebrtcRelay {
  name: 'rtpengine' | 'ngrelay';
  /**
   * Answers a browser's max-bundle offer (RFC 9143) with one bundled transport. rtpengine 10.5 does not:
   * it drops a=group:BUNDLE and gives each m= line its own ICE/DTLS transport (and has no `sdp-attr` to add
   * the group back), which Chromium refuses for max-bundle. Issue 12 requires it of ngrelay.
   */
  bundles: boolean;
  start(options: RelayOptions): Promise<RelayUnderTest>;
}

export const WEBRTC_RELAYS: readonly WebrtcRelay[] = [
  { name: 'rtpengine', bundles: false, start: startRtpengine },
  // One transport demultiplexed into the m= lines' streams (src/call/bundle.ts, StreamBundle).
  { name: 'ngrelay', bundles: true, start: startNgrelay },
];

/** A free ng port and media port range on 127.0.0.1, with calls deleted at once (`list` is empty after delete). */
export async function relayOptions(extraArgs: string[] = []): Promise<RelayOptions> {
  const ngPort = await freeUdpPort();
  const { portMin, portMax } = await freeMediaRange(40);
  return { ngPort, portMin, portMax, deleteDelay: 0, extraArgs };
}

/**
 * Toward the SIP phone (plain RTP/AVP): the flags of Kamailio's WebRTC gateway configs on the leg to SIP
 * (`ICE=remove RTP/AVP rtcp-mux-demux DTLS=off SDES-off DTLS-reverse=passive replace-origin
 * replace-session-connection`), as the rtpengine module sends them in the ng dict.
 * examples/webrtc/kamailio.cfg uses the same words.
 * `DTLS-reverse=passive` is needed when the browser offers: without it rtpengine 10.5 takes the active DTLS
 * role towards the browser at the offer, then answers it `a=setup:passive` (DTLS=passive), so both ends
 * wait as clients and DTLS never connects (scenario A stalls in "connecting").
 */
export const TOWARDS_SIP: BInputDict = {
  ICE: 'remove',
  'transport-protocol': 'RTP/AVP',
  'rtcp-mux': ['demux'],
  DTLS: 'off',
  SDES: ['off'],
  'DTLS-reverse': 'passive',
  replace: ['origin', 'session-connection'],
};

/**
 * Toward the browser: `ICE=force UDP/TLS/RTP/SAVPF rtcp-mux-require DTLS=passive SDES-off generate-mid
 * replace-origin replace-session-connection`.
 */
export const TOWARDS_BROWSER: BInputDict = {
  ICE: 'force',
  'transport-protocol': 'UDP/TLS/RTP/SAVPF',
  'rtcp-mux': ['require'],
  DTLS: 'passive',
  SDES: ['off'],
  flags: ['generate-mid'],
  replace: ['origin', 'session-connection'],
};

/** An ng reply with its strings as text (NgReply.plain). */
export type Plain = { [key: string]: PlainValue };

/** Sends `command` once (no retransmit, 5 s deadline) and expects `result: ok`; the reply as text. */
export async function ngOk(ng: NgRawClient, command: BInputDict): Promise<Plain> {
  const reply = await ng.request(command, { retransmitMs: 0, deadlineMs: 5000 });
  expect(reply.plain.result, `${String(command.command)}: ${JSON.stringify(reply.plain)}`).toBe('ok');
  return reply.plain;
}

/** The reply's SDP (printed with NGR_WEBRTC_DEBUG set); throws when it has none. */
export function sdpOf(reply: Plain): string {
  if (process.env.NGR_WEBRTC_DEBUG) console.log(`--- ${String(reply.sdp)}`);
  const sdp = reply.sdp;
  if (typeof sdp !== 'string') throw new Error(`reply has no sdp: ${JSON.stringify(reply)}`);
  return sdp;
}
