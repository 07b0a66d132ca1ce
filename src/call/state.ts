/**
 * Call state as plain data: no sockets, timers or closures, so that a call can be serialized (msgpackr) and
 * restored after a restart. The live side (data plane rules, timers) is derived from this state.
 *
 * Model (as rtpengine's): a call has one monologue per tag (party); a monologue has one media per m= line;
 * a media has an RTP and an RTCP stream. A stream is the relay's socket that faces its party: the party sends
 * to it, and packets *to* the party leave from it.
 */
import type { Component, DtlsFingerprint, Endpoint, EndpointLearning, IceCandidate, SrtpSuiteName } from '../dataplane/types';
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
  /** Payload type of telephone-event (RFC 4733) in this party's SDP; absent/null = none. */
  dtmfPayloadType?: number | null;
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
  /** SDES state of this party's side of the media (absent = plain RTP; see src/call/srtp-negotiation.ts). */
  crypto?: MediaCryptoState;
  /** ICE and DTLS-SRTP with this party (absent = neither; see src/call/webrtc-negotiation.ts). Optional. */
  webrtc?: MediaWebrtcState;
  /**
   * ICE/DTLS pass-through (`ICE=optional`/`force-relay` on an offer that had ICE): the parties run ICE and
   * DTLS end to end, the engine forwards their STUN and DTLS. Set on both sides' media. Optional.
   */
  icePassThrough?: boolean;
  /** a=mid of this party's last SDP (null = none). Optional. */
  mid?: string | null;
  /** BUNDLE with this party: the media shares its group's transport (see src/call/bundle.ts). Optional. */
  bundle?: MediaBundleState;
  /**
   * ICE with this party on an interface name with several addresses: one more socket pair per other address
   * (src/call/ice-sockets.ts), each offered as a host candidate. Optional (absent = the primary socket only).
   */
  iceSockets?: IceSocketPair[];
  /** The stream ids of the sockets whose pair the party's ICE nominated, per component (absent = primary). */
  iceSelected?: { rtp?: number; rtcp?: number };
  /** With iceSockets: the stream ids whose DTLS-SRTP handshake keys the media, per component (absent = own). */
  iceDtls?: { rtp?: number; rtcp?: number };
}

/** The RTP and RTCP stream of one extra local address of an ICE media (MediaState.iceSockets). */
export interface IceSocketPair {
  rtp: StreamState;
  rtcp: StreamState;
}

/** The BUNDLE part of one media of a party (MediaState.bundle). */
export interface MediaBundleState {
  /** 0-based index of the group's transport media (its tagged m= line) in the same party's medias. */
  transportIndex: number;
  /** Indexes of every member, transport first, in the group's order (for the a=group line). */
  memberIndexes: number[];
  /** a=extmap id of urn:ietf:params:rtp-hdrext:sdes:mid in the party's SDP; null = none. */
  midExtensionId: number | null;
  /** Payload types of this m= line that no other member uses (the engine's payload-type demux). */
  payloadTypes: number[];
}

/** ICE (RFC 8445) between the relay and one party, for one media. */
export interface MediaIceState {
  /** The party's a=ice-ufrag / a=ice-pwd (null until its SDP says). */
  remoteUfrag: string | null;
  remotePwd: string | null;
  /** The party is ICE-lite (a=ice-lite). */
  remoteLite: boolean;
  remoteCandidates: IceCandidate[];
  /** The party announced trickle (a=ice-options:trickle). */
  remoteTrickle: boolean;
  /** The relay's role towards the party (RFC 8445 §6.1.1). */
  controlling: boolean;
  /** The relay is ICE-lite towards the party (ng `ICE-lite`). */
  lite: boolean;
  /** Tie-breakers of the RTP and RTCP streams (16 hex digits), fixed for the media's life. */
  tieBreakers: { rtp: string; rtcp: string };
}

/** DTLS-SRTP (RFC 5763) between the relay and one party, for one media. */
export interface MediaDtlsState {
  /** The party's a=fingerprint (hash and hex digest); null until its SDP says. */
  remoteFingerprint: { hash: DtlsFingerprint['hash']; hex: string } | null;
  /** The party's a=setup (null = none). */
  remoteSetup: 'actpass' | 'active' | 'passive' | 'holdconn' | null;
  /** The relay's handshake role; null while not settled (an offer with a=setup:actpass is unanswered). */
  role: 'active' | 'passive' | null;
  /** The role the relay takes when the party leaves the choice to it (ng `DTLS`/`DTLS-reverse`, --dtls-passive). */
  prefersPassive: boolean;
  /** Hash of the relay's a=fingerprint towards the party. */
  hash: DtlsFingerprint['hash'];
  /** Bumped on a new remote fingerprint or an ICE restart: the engine starts a new handshake. */
  generation: number;
}

/** What the relay does with one party for one media beyond plain RTP: ICE, DTLS-SRTP. */
export interface MediaWebrtcState {
  /** null = no ICE with this party (its SDP got no candidates, or its answer refused ICE). */
  ice: MediaIceState | null;
  /** null = no DTLS-SRTP with this party. */
  dtls: MediaDtlsState | null;
}

/** The relay's ICE credentials towards one party (a=ice-ufrag / a=ice-pwd it was given). */
export interface IceCredentials {
  ufrag: string;
  pwd: string;
}

/** One SDES a=crypto line (RFC 4568), plain data. */
export interface SdesKeyState {
  tag: number;
  suite: SrtpSuiteName;
  /** base64 of master key || master salt. */
  key: string;
  unencryptedSrtp: boolean;
  unencryptedSrtcp: boolean;
  unauthenticatedSrtp: boolean;
  /** Generated by ngrelay (false: a party's own key, forwarded). */
  own: boolean;
}

export interface MediaCryptoState {
  /** The usable a=crypto lines of this party's last SDP (keys it sends with). */
  offered: SdesKeyState[];
  /** The a=crypto lines ngrelay wrote into the last SDP this party received. */
  given: SdesKeyState[];
  /** Negotiated: the key this party sends with (decrypts what arrives from it). null = it sends plain RTP. */
  theirs: SdesKeyState | null;
  /** Negotiated: the key ngrelay sends to this party with. null = it receives plain RTP. */
  ours: SdesKeyState | null;
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
  /** The relay's ICE credentials towards this party (made the first time it is given ICE). Optional. */
  iceCredentials?: IceCredentials | null;
  /** The relay is ICE-lite towards this party (ng `ICE-lite`, kept until changed). Optional. */
  iceLite?: boolean;
  /** `block media` / `silence media` on this party: the RTP it sends is dropped / replaced by silence. */
  mediaBlocked?: boolean;
  mediaSilenced?: boolean;
  /** `block DTMF` on this party: the telephone-event packets it sends are dropped. */
  dtmfBlocked?: boolean;
  /** `DTMF-security` zero/DTMF/random of that block: forwarded with this digit (or a random one) instead. */
  dtmfReplace?: number | 'random' | null;
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
  /** ng `recrypt`: decrypt and re-encrypt SRTP even when both sides share keys. Optional (older state). */
  recrypt?: boolean;
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
  /** When the delete that scheduled `deleteAtMs` came: the call's end for its duration. Optional (older state). */
  deleteRequestedMs?: number | null;
  /** Loop-protection token put into a=rtpengine: lines. */
  loopToken: string;
  recordCall: boolean;
  metadata: string | null;
  /** The call's current pcap recording (null = not recording). */
  recording: CallRecordingState | null;
  /** Counter for monologue keys. */
  nextMonologueKey: number;
  /**
   * A restored call: when media was last seen before the restart (the engine's own last-packet times start
   * again from none), so media timeouts resume with their remaining time. Optional (absent = never restored).
   */
  mediaBeforeRestoreMs?: number;
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
