/**
 * Call state as plain data: no sockets, timers or closures, so that a call can be serialized (msgpackr) and
 * restored after a restart. The live side (data plane rules, timers) is derived from this state.
 *
 * Model (as rtpengine's): a call has one monologue per tag (party); a monologue has one media per m= line;
 * a media has an RTP and an RTCP stream. A stream is the relay's socket that faces its party: the party sends
 * to it, and packets *to* the party leave from it.
 */
import type { Component, Endpoint, EndpointLearning } from '../dataplane/types';
import type { Direction } from '../sdp/types';

export interface StreamState {
  /** Data plane stream id. */
  id: number;
  component: Component;
  /** The interface (by name) and the concrete local address:port this stream's socket is bound to. */
  interfaceName: string;
  localAddress: string;
  localPort: number;
  /** Advertised address written into SDP for this socket. */
  advertisedAddress: string;
  /** For RTCP under rtcp-mux: the RTP stream whose socket it shares. */
  muxedWith: number | null;
  /** Address:port the party announced in its SDP (null until known). */
  advertised: Endpoint | null;
  /** Initial destination: SDP address, or SIP source address with SDP port, or media-address. */
  expected: Endpoint | null;
  /** True while the port is reserved in the allocator (false for a muxed RTCP stream sharing its RTP port). */
  ownsPort: boolean;
}

export interface MediaState {
  /** 1-based, like rtpengine's `index`. */
  index: number;
  type: string;
  protocol: string;
  /** First codec of the SDP, "PCMU/8000" (null until negotiated). */
  codec: string | null;
  /** Direction this party announced. */
  direction: Direction;
  /** This party uses rtcp-mux (RTCP on the RTP port). */
  rtcpMux: boolean;
  /** This party offered rtcp-mux in its SDP. */
  offeredRtcpMux: boolean;
  /** rtcp-mux flags of the offer this party made, settled by the answer: accept (or demux) / reject. */
  rtcpMuxAccept: boolean;
  rtcpMuxReject: boolean;
  /** Port 0 in this party's SDP, or rejected by the answer. */
  rejected: boolean;
  rtp: StreamState;
  rtcp: StreamState;
}

export interface MonologueState {
  /** SIP tag; '' while the answering party is not known yet (an untagged branch). */
  tag: string;
  /** Earlier tags this monologue answered with (forks answered without via-branch). */
  formerTags: string[];
  viaBranch: string | null;
  label: string | null;
  createdMs: number;
  /** Tag of the monologue this one exchanges media with ('' = untagged peer). Null: none. */
  peerKey: string | null;
  /** Unique key of this monologue within its call (stable across tagging). */
  key: string;
  medias: MediaState[];
  /** The per-party options of the last offer/answer this party sent. */
  options: PartyOptions;
  /** This party answered (it is the callee side). */
  isAnswerer: boolean;
  /**
   * The last SDP generated from this party's SDP (latin1) and its o= session version, for
   * `replace: SDP-version`: the version only goes up when the generated body changes.
   */
  sdpOut: { version: string; body: string } | null;
}

export interface PartyOptions {
  learning: EndpointLearning;
  strictSource: boolean;
  mediaHandover: boolean;
  asymmetric: boolean;
}

export interface CallState {
  callId: string;
  createdMs: number;
  lastSignalMs: number;
  /** When the call got its first answer; null while only offered. */
  answeredMs: number | null;
  monologues: MonologueState[];
  /** Scheduled deletion time (delete-delay); null if not scheduled. */
  deleteAtMs: number | null;
  /** Loop-protection token put into a=rtpengine: lines. */
  loopToken: string;
  recordCall: boolean;
  metadata: string | null;
  /** The call's current pcap recording (null = not recording). */
  recording: CallRecordingState | null;
  /** Counter for monologue keys. */
  nextMonologueKey: number;
  /** Set once the call was ended by a timeout; kept for logging. */
  endReason: string | null;
}

/** One SDP as the recording's metadata file lists it. */
export interface RecordedSdp {
  mode: 'offer' | 'answer';
  /** Tag of the party that sent it. */
  fromTag: string;
  /** Packets recorded before this SDP was seen. */
  packetsBefore: number;
  atMs: number;
  sdp: string;
}

/** A recording in progress: its files and what its metadata file will say. */
export interface CallRecordingState {
  /** Data plane recording id. */
  id: number;
  /** `<call-id>-<random>`, the stem of both file names. */
  name: string;
  /** Where the pcap and the metadata are written while the recording runs, and where they move at its end. */
  pcapSpoolPath: string;
  pcapPath: string;
  metaSpoolPath: string;
  metaPath: string;
  paused: boolean;
  startedMs: number;
  sdps: RecordedSdp[];
  /** Every distinct `metadata` string sent over ng while recording, in order. */
  metadata: string[];
}
