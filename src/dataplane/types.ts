/**
 * The contract between the control plane (TypeScript) and the data plane (the native engine).
 * The control plane decides *what* is forwarded where; the engine owns the sockets and moves the packets.
 * No RTP or RTCP packet ever crosses this interface.
 */

/** Address family as Node and ng endpoint dicts spell it (the SDP spelling is `AddrType`, src/sdp/types.ts). */
export type Family = 'IPv4' | 'IPv6';

export interface Endpoint {
  family: Family;
  address: string;
  port: number;
}

/** rtpengine's `endpoint-learning` modes (reference §5). */
export type EndpointLearning = 'off' | 'immediate' | 'delayed' | 'heuristic';

export type Component = 'rtp' | 'rtcp';

/** What is fixed for a stream's whole life: its local socket. */
export interface StreamSocketSpec {
  /** Unique id chosen by the control plane, 1 .. 2^31-1. */
  id: number;
  component: Component;
  /** Concrete local address to bind (never a wildcard) and the port the allocator chose. */
  localAddress: string;
  localPort: number;
  /**
   * RTCP stream under rtcp-mux: the id of the RTP stream whose socket it shares. The engine binds no socket
   * for it; RTCP packets (RFC 5761: second byte 192..223) arriving on that RTP socket are counted on this
   * stream and forwarded by this stream's rule. Sending *to* this stream's party uses the RTP stream's socket
   * and that stream's current endpoint.
   */
  muxedWith?: number;
  /**
   * Own socket only: put the stream on the I/O thread of this (existing) stream; absent or unknown = the
   * engine's choice (round robin). A BUNDLE member must share its transport's thread (StreamBundle), so the
   * control plane opens a member's streams with its transport's id.
   */
  threadOf?: number;
}

/** SRTP crypto suite names the native SRTP core implements (their lengths: src/dataplane/srtp-suites.ts). */
export type SrtpSuiteName =
  | 'AEAD_AES_256_GCM'
  | 'AEAD_AES_128_GCM'
  | 'AES_256_CM_HMAC_SHA1_80'
  | 'AES_256_CM_HMAC_SHA1_32'
  | 'AES_CM_128_HMAC_SHA1_80'
  | 'AES_CM_128_HMAC_SHA1_32';

/** One direction's SRTP master key (RFC 4568 inline key) and session parameters. */
export interface SrtpKeys {
  suite: SrtpSuiteName;
  /** Master key (16 or 32 bytes) and master salt (14 bytes, 12 for AEAD), as the suite requires. */
  key: Buffer;
  salt: Buffer;
  unencryptedSrtp: boolean;
  unencryptedSrtcp: boolean;
  unauthenticatedSrtp: boolean;
  /**
   * A stream restored after a restart (src/state/): the sequence state its context starts from instead of
   * ROC 0 / SRTCP index 0. Only used when a new context is made (keys changed or a new stream).
   */
  resume?: SrtpProgress;
}

/**
 * Where one SRTP direction of a stream stood: the RTP rollover counter and highest sequence number (RFC 3711
 * §3.3.1) of the SSRC handled last, and the next SRTCP index sent. Absent parts are not known yet.
 */
export interface SrtpProgress {
  rtp?: { ssrc: number; roc: number; seq: number };
  rtcp?: { ssrc: number; index: number };
}

/** Both SRTP directions of a stream (null: no context that way, or no packet yet). */
export interface StreamSrtpProgress {
  inbound: SrtpProgress | null;
  outbound: SrtpProgress | null;
}

/**
 * SRTP of one stream. RTP streams use SRTP, RTCP streams (muxed ones too) SRTCP, with the same master keys.
 * - `inbound`: the keys this stream's party sends with (from its own a=crypto); packets arriving here are
 *   authenticated and decrypted; failures are counted (errors, srtpAuthFailed, srtpReplayed) and dropped.
 *   null = the party sends plain RTP.
 * - `outbound`: the keys the *sink's* party was given in the SDP it received; what this stream forwards is
 *   encrypted with them. null = the sink's party receives plain RTP.
 * When both are set with identical keys (and not `recrypt`), packets pass through without crypto work.
 * A direction whose keys are unchanged by an update keeps its state (rollover counter, replay window).
 */
export interface StreamCrypto {
  inbound: SrtpKeys | DtlsSrtpKeys | null;
  outbound: SrtpKeys | DtlsSrtpKeys | null;
  /** ng `recrypt`: decrypt and re-encrypt even when both sides share keys. */
  recrypt: boolean;
}

/**
 * SRTP keys of one direction that a DTLS-SRTP handshake (RFC 5764) negotiates, on the stream `dtlsOf` (its
 * `rule.dtls` session): as `inbound` of the stream that runs the handshake, the keys its party writes with; as
 * `outbound` of a stream whose sink is `dtlsOf`, the keys the relay writes with towards that party. Until the
 * handshake completes nothing is decrypted or forwarded that way (counted in `errors`).
 * Usually `dtlsOf` names the stream itself (inbound; a muxed RTCP stream: its RTP stream) or the resolved sink
 * (outbound). It may name another stream: a media with a socket per address shares the keys of the handshake
 * one of its sockets ran (src/call/ice-sockets.ts); when that stream is removed, the usual one is used again.
 */
export interface DtlsSrtpKeys {
  dtlsOf: number;
  /** A restored stream: contexts made from restored keys (StreamDtls.restored) start from here (as SrtpKeys.resume). */
  resume?: SrtpProgress;
}

/**
 * The keys a finished DTLS-SRTP handshake negotiated (RFC 5764 §4.2 layout), as saved for a restart
 * (src/state/). Secret: as SDES keys, they are kept only in the state dir / Redis.
 */
export interface DtlsSessionKeys {
  /** The use_srtp profile, RFC 5764 name (SRTP_AES128_CM_SHA1_80, ...). */
  profile: string;
  clientKey: Buffer;
  clientSalt: Buffer;
  serverKey: Buffer;
  serverSalt: Buffer;
  /** The relay was the DTLS client (active role) in that handshake. */
  relayIsClient: boolean;
  /** sha-256 fingerprint of the certificate the party presented, "AB:CD:..."; null = not known. */
  peerFingerprint: string | null;
}

/** One a=candidate of the party (RFC 8839 §5.1), for the checks a full ICE agent sends. */
export interface IceCandidate {
  foundation: string;
  /** 1 = RTP, 2 = RTCP. */
  component: number;
  priority: number;
  type: 'host' | 'srflx' | 'prflx' | 'relay';
  endpoint: Endpoint;
}

/**
 * ICE (RFC 8445) terminated by the engine on this stream's socket (STUN demuxed by its first byte, RFC 7983).
 * With ICE, the party's address comes only from an authenticated, nominated check (USE-CANDIDATE), never from
 * learning; `expected` stays the initial destination until then. Absent/null = no ICE: STUN is dropped.
 * A muxed RTCP stream has no ICE of its own (its RTP stream's pair carries it).
 */
export interface StreamIce {
  /** The a=ice-ufrag / a=ice-pwd the relay gave this stream's party: checks arriving here must use them. */
  localUfrag: string;
  localPwd: string;
  /** The party's a=ice-ufrag / a=ice-pwd; null until its SDP is known (the checks the relay sends use them). */
  remoteUfrag: string | null;
  remotePwd: string | null;
  /** The relay's role towards this party (RFC 8445 §6.1.1); role conflicts are resolved by `tieBreaker`. */
  controlling: boolean;
  /** The relay is ICE-lite towards this party: it answers checks and sends none. */
  lite: boolean;
  /** 64-bit tie-breaker, 16 hex digits, fixed for the stream's life. */
  tieBreaker: string;
  /** The party's candidates for this component (checks a full agent sends; unused when `lite`). */
  remoteCandidates: IceCandidate[];
}

/** A certificate fingerprint (RFC 8122 a=fingerprint): the hash function and the digest bytes. */
export interface DtlsFingerprint {
  hash: 'sha-1' | 'sha-224' | 'sha-256' | 'sha-384' | 'sha-512';
  value: Buffer;
}

/** DTLS-SRTP (RFC 5763/5764) run by the engine on this stream's socket with the relay's certificate. */
export interface StreamDtls {
  /** `active`: the relay sends the ClientHello (a=setup:active); `passive`: it waits for one, never starts. */
  role: 'active' | 'passive';
  /** The party's a=fingerprint: its certificate must match (mismatch: no keys, counted, logged). */
  remoteFingerprint: DtlsFingerprint | null;
  /** Changed by the control plane to start a new handshake (new fingerprint, ICE restart, re-key). */
  generation: number;
  /**
   * A restart: this generation's handshake finished before it, with these keys. They are used at once, the
   * state is "connected" and no handshake is started (one the party starts is answered). Absent/null = none.
   */
  restored?: DtlsSessionKeys | null;
}

/** What the control plane may change at any time (re-INVITE, hold, answer, new endpoint). */
export interface StreamRule {
  /**
   * Where the party behind this stream is expected to be: the SDP address:port, the SIP source address with
   * the SDP port, or `media-address`. It is the initial destination for packets sent to this party and the
   * reference for endpoint learning. null = unknown (hold with 0.0.0.0, rejected media): nothing is sent to
   * the party until a packet from it is learned (where learning allows).
   */
  expected: Endpoint | null;
  learning: EndpointLearning;
  /** After learning, drop (and count as errors) packets from any other source. */
  strictSource: boolean;
  /** After learning, re-latch to a new source instead of keeping the confirmed one. */
  mediaHandover: boolean;
  /** Never learn: always send to `expected`. */
  asymmetric: boolean;
  /**
   * The stream whose party receives what arrives here: packets leave from *that* stream's socket (the one
   * its party was given in its SDP) towards *that* stream's current endpoint. null = receive and count, but
   * forward nothing.
   */
  sink: number | null;
  /** Bumped by the control plane on every signalling event; `delayed` learning waits 3 s after it changes. */
  signalGeneration: number;
  /** SRTP keys; absent/null = plain RTP both ways. Unusable keys make addStream/updateStream throw. */
  crypto?: StreamCrypto | null;
  /** ICE towards this stream's party (WebRTC); absent/null = none. */
  ice?: StreamIce | null;
  /** DTLS-SRTP handshake with this stream's party; absent/null = none (DTLS packets are dropped). */
  dtls?: StreamDtls | null;
  /**
   * ICE/DTLS pass-through (ng `ICE=optional`/`force-relay` when the party does ICE itself): the parties run ICE
   * and DTLS-SRTP end to end through the relay, so STUN and DTLS arriving here are learned from and forwarded
   * to the sink unchanged, like media (without it, and without `ice`/`dtls`, they are dropped as malformed).
   */
  forwardIceDtls?: boolean;
  /** BUNDLE (RFC 8843): this RTP stream's m= line shares the transport of another stream; absent/null = none. */
  bundle?: StreamBundle | null;
  /** RTP clock rate of the stream's codec (Hz), for jitter in time units; absent = 8000. */
  clockRate?: number;
  /** `block media`: RTP arriving here is counted but not forwarded (RTCP still is). */
  blockMedia?: boolean;
  /**
   * `silence media`: the payload of PCMU/PCMA packets forwarded from here is replaced with the codec's
   * silence (sequence numbers and timestamps kept); other payload types pass unchanged.
   */
  silenceMedia?: boolean;
  /** Payload type of telephone-event (RFC 4733): its events are reported ('dtmf' events); null/absent = none. */
  dtmfPayloadType?: number | null;
  /** `block DTMF`: those telephone-event packets are counted but not forwarded. */
  blockDtmf?: boolean;
  /**
   * With blockDtmf (`DTMF-security` zero/DTMF/random): the telephone-event packets are forwarded with this
   * event code instead (0-15), or a random other digit per event; null/absent = dropped.
   */
  dtmfReplace?: number | 'random' | null;
}

/**
 * BUNDLE membership of an RTP stream (StreamRule.bundle). Every member of a group names the same `transport`:
 * the RTP stream of the group's first m= line (which names itself), whose socket, ICE pair and DTLS-SRTP
 * context the whole group uses. What arrives on the transport is unprotected with the transport's keys and
 * then handed to the member it belongs to, found by (a) the MID header extension (`midExtensionId`, RFC 8843
 * §15; one- and two-byte forms), which also teaches the engine the member's SSRC, (b) an SSRC learned so, (c) the
 * payload type (`payloadTypes`: only those unique to this m= line). RTCP goes to the member whose SSRC is the
 * sender SSRC of its first packet, else to the transport's RTCP stream. A packet that matches no member is
 * dropped and counted (StreamCounters.bundleUnmatched and errors of the transport). A member other than the
 * transport reads nothing from its own socket while bundled; to send *to* the bundled party, a sink names the
 * transport (its socket, endpoint and DTLS keys). Members must be on the transport's I/O thread
 * (StreamSocketSpec.threadOf); one on another thread is left out of the group (its packets then do not match).
 * A bundled stream is never handed to the kernel path.
 */
export interface StreamBundle {
  /** Stream id of the group's transport (this stream's own id for the transport itself). */
  transport: number;
  /** a=mid of this m= line; null = none (then only SSRC and payload type match). */
  mid: string | null;
  /** The id of urn:ietf:params:rtp-hdrext:sdes:mid (a=extmap), 1..255; null = not negotiated. */
  midExtensionId: number | null;
  /** Payload types (0..127) that belong to this m= line only. */
  payloadTypes: number[];
}

/** One `play DTMF` event, as the engine sends it (values already clamped as rtpengine clamps them). */
export interface DtmfPlayRequest {
  /** 0-9, 10 = *, 11 = #, 12-15 = A-D. */
  event: number;
  /** -dBm0, 0-63. */
  volume: number;
  /** The telephone-event payload type of the party that receives the event. */
  payloadType: number;
  durationMs: number;
  /** Quiet time after the event before the next queued one starts. */
  pauseMs: number;
}

/** What the engine made of a play DTMF request. */
export type DtmfPlayOutcome = 'queued' | 'queue-full' | 'pass-through' | 'unknown-stream';

export interface StreamCounters {
  packets: number;
  bytes: number;
  /** Every dropped packet of this stream, SRTP authentication and replay failures included. */
  errors: number;
  /** SRTP/SRTCP packets that failed authentication (tampered, wrong key); present when the stream has keys. */
  srtpAuthFailed?: number;
  /** SRTP/SRTCP packets refused by the replay window; present when the stream has keys. */
  srtpReplayed?: number;
  /** A BUNDLE transport: packets that matched none of its members (dropped; also in `errors`). */
  bundleUnmatched?: number;
  /** Epoch milliseconds of the last packet received on this stream; 0 = never. */
  lastPacketMs: number;
  /** Where packets to this party currently go (expected or learned); null = nowhere yet. */
  endpoint: Endpoint | null;
  /** The endpoint was learned from real traffic. */
  confirmed: boolean;
  /** Last seen RTP SSRC / sequence number (RTP streams only). */
  ssrc: number | null;
  lastSeq: number | null;
  /** Present when the rule has ICE. */
  ice?: IceStatus;
  /** Present when the rule has DTLS. */
  dtls?: DtlsStatus;
  /** Kernel fast path on (`--table`): the kernel forwards this stream's RTP now. Absent when the path is off. */
  inKernel?: boolean;
  /** Kernel fast path on: of `packets`, those the kernel forwarded (userspace never saw them). */
  kernelPackets?: number;
  /**
   * Kernel fast path on: of `lastPacketMs`, the newest packet userspace received and the newest the kernel
   * forwarded (epoch ms, 0 = none), which tell rtpengine's userspace-only, kernel-only and mixed streams apart.
   */
  userspaceLastPacketMs?: number;
  kernelLastPacketMs?: number;
}

export interface IceStatus {
  state: 'waiting' | 'checking' | 'connected' | 'failed';
  /** The party's address of the nominated pair (where media goes); null = none yet. */
  selected: Endpoint | null;
  /** Valid checks answered / sent; STUN refused (bad integrity or fingerprint, wrong ufrag, malformed). */
  checksReceived: number;
  checksSent: number;
  stunRejected: number;
  /**
   * Times consent expired (RFC 7675: no valid check from the selected address for 30 s): media to the party
   * then stops (endpoint null, state 'failed') until it nominates a pair again.
   */
  consentExpired: number;
  /** Epoch ms of the last valid check from the selected address (RFC 7675 consent); 0 = never. */
  lastConsentMs: number;
}

export interface DtlsStatus {
  state: 'new' | 'connecting' | 'connected' | 'failed' | 'closed';
  role: 'active' | 'passive';
  /** Negotiated use_srtp profile (RFC 5764 names, e.g. SRTP_AES128_CM_SHA1_80); null before the handshake. */
  profile: string | null;
  /** sha-256 fingerprint of the certificate the party presented, "AB:CD:..."; null = none yet. */
  peerFingerprint: string | null;
  /** Why the handshake failed (fingerprint mismatch, timeout, alert); null otherwise. */
  error: string | null;
}

/** One MOS sample (rtpengine's stats block): made from one RTCP receiver report block, at most one a second. */
export interface MosSample {
  /** Epoch ms of the report. */
  reportedAtMs: number;
  /** MOS ×10 (43 = 4.3), as rtpengine reports it; 0 = no round-trip time of both legs yet. */
  mos: number;
  /** End-to-end round-trip time (both legs), µs. */
  rttUs: number;
  /** Relay <-> this party round-trip time from LSR/DLSR, µs. */
  rttLegUs: number;
  jitterMs: number;
  /** Fraction lost as an integer percentage. */
  packetLoss: number;
}

/** What the relay measured itself from the RTP of one stream's current SSRC (RFC 3550 A.1, A.8). */
export interface RtpQuality {
  ssrc: number;
  received: number;
  expected: number;
  lost: number;
  duplicates: number;
  reordered: number;
  /** Interarrival jitter from sequence numbers, timestamps and arrival times, ms. */
  jitterMs: number;
  ssrcChanges: number;
  lastSeq: number;
  lastTimestamp: number;
}

/** What one stream's RTCP said (its party's SR/RR/XR), and the MOS samples made from it. */
export interface RtcpQuality {
  parsed: number;
  /** Compound packets that did not parse: counted and dropped. */
  malformed: number;
  senderReports: number;
  receiverReports: number;
  sdes: number;
  bye: number;
  xr: number;
  /** SSRC of the party's last SR/RR that carried report blocks; null = none yet. */
  reporterSsrc: number | null;
  cumulativeLost: number;
  /** Last reported fraction lost (1/256). */
  fractionLost: number;
  /** Last reported jitter, RTP timestamp units. */
  jitter: number;
  rttLegUs: number;
  xrRoundTripMs: number | null;
  /** Sums over the samples that have a MOS (for averages). */
  sums: { samples: number; mos: number; rttUs: number; rttLegUs: number; jitterMs: number; packetLoss: number };
  lowest: MosSample | null;
  highest: MosSample | null;
  /** The progression, oldest first: the last 64 samples. */
  samples: MosSample[];
  samplesTotal: number;
}

export interface StreamQuality {
  /** null = no RTP received (an RTCP stream, or nothing yet). */
  rtp: RtpQuality | null;
  rtcp: RtcpQuality;
}

/** Every MOS the engine computed since the process started (rtpengine's `statistics` mos group). */
export interface MosTotals {
  samples: number;
  /** Sum of MOS ×10 values, and of their squares. */
  mosX10Sum: number;
  mosX10SquareSum: number;
}

export interface EngineTotals {
  packets: number;
  bytes: number;
  errors: number;
  /** Packets dropped because they were malformed (bad RTP/RTCP header). */
  malformed: number;
  /** Packets lost to overload (receive queue overflow or send failure). */
  dropped: number;
  /** Kernel fast path on: of packets/bytes, those the kernel forwarded (rtpengine's "kernel" totals). */
  kernelPackets?: number;
  kernelBytes?: number;
}

/** The kernel fast path (`--table`), as the engine started it. */
export interface KernelPathInfo {
  /** Streams can be handed to the kernel. */
  active: boolean;
  /** Why not, when `active` is false ('' when it was not asked for). */
  reason: string;
  /** 'tcx' (bpf_link: nothing survives the process) or 'tc' (clsact filter); '' when inactive. */
  attach: '' | 'tcx' | 'tc';
  /** Interfaces the program is attached to. */
  interfaces: string[];
}

/** How the engine runs (fixed when it is created). */
export interface DataPlaneInfo {
  /** I/O threads. */
  threads: number;
  /**
   * `private`: each I/O thread has its own descriptor table holding just its sockets, which spares the kernel
   * a reference count per socket call; `shared`: the process's table, like every other thread (the fallback
   * when the kernel or a seccomp filter refuses unshare/pidfd_getfd, or NGRELAY_SHARED_FD_TABLE=1).
   */
  descriptorTables: 'private' | 'shared';
  /**
   * What the I/O threads asked for, and the kernel's refusal if any (e.g. "Operation not permitted" for a
   * realtime policy without CAP_SYS_NICE); the threads then run as they were.
   */
  scheduling: ThreadScheduling & { error: string | null };
  /** The same for the background threads. */
  idleScheduling: ThreadScheduling & { error: string | null };
  /** Absent when the data plane has no kernel path (or it was not asked for). */
  kernelPath?: KernelPathInfo;
}

export type EngineEvent =
  | { type: 'first-packet'; id: number; from: Endpoint; atMs: number }
  | { type: 'learned'; id: number; endpoint: Endpoint; atMs: number }
  | { type: 'source-changed'; id: number; endpoint: Endpoint; atMs: number }
  /** The stream received media, then none for 5 s (reported once until media resumes). */
  | { type: 'idle'; id: number; endpoint: Endpoint; atMs: number }
  /** Media arrived again on a stream reported idle. */
  | { type: 'resumed'; id: number; from: Endpoint; atMs: number }
  /** An RFC 4733 event ended on the stream (reported once, at its first End packet); `from` = the party. */
  | { type: 'dtmf'; id: number; from: Endpoint; atMs: number; event: number; volume: number; durationMs: number; rtpTimestamp: number }
  /** ICE nominated a pair: media to the party now goes to `endpoint`. */
  | { type: 'ice-selected'; id: number; endpoint: Endpoint; atMs: number }
  /** The DTLS handshake finished (`ok`) and keyed SRTP, or failed with `error`. */
  | { type: 'dtls'; id: number; ok: boolean; profile: string | null; error: string | null; atMs: number };

/** pcap link type: `raw` = LINKTYPE_RAW (101, IP packets), `eth` = LINKTYPE_ETHERNET (1, fake Ethernet header). */
export type RecordingFormat = 'raw' | 'eth';

/** One pcap file written by the engine's writer thread. */
export interface RecordingSpec {
  /** Unique id chosen by the control plane, 1 .. 2^31-1. */
  id: number;
  /** File to create (must not exist); the pcap global header is written before startRecording returns. */
  path: string;
  format: RecordingFormat;
  /**
   * Also record each forwarded copy (relay socket -> receiving party). Without it every packet is recorded
   * once, as received (party -> relay socket), which already holds both parties' streams.
   */
  egress: boolean;
  /**
   * Continue `path`, an existing pcap cut to whole records (a call restored after a restart, src/state/):
   * opened for appending, no new global header. Default false.
   */
  append?: boolean;
}

export interface RecordingCounters {
  /** Records the I/O threads queued for the writer. */
  queued: number;
  /** Records written to the file. */
  written: number;
  /** Records lost: ring full (disk slower than traffic) or write error. Forwarding is never affected. */
  dropped: number;
  /** Bytes of records written (the file is 24 bytes longer: the global header). */
  bytes: number;
  /** strerror() of the last write failure, null if none. */
  error: string | null;
}

/** Raised when a recording file cannot be created or its header written. */
export class RecordingFileError extends Error {
  override readonly name = 'RecordingFileError';
  constructor(
    message: string,
    readonly code: string,
    readonly path: string,
  ) {
    super(message);
  }
}

/**
 * Scheduling of the I/O threads (`--scheduling`/`--priority`). `default` leaves the policy alone.
 * `priority`: the realtime priority 1..99 under fifo/rr, otherwise the nice value -20..19; null = not given.
 */
export interface ThreadScheduling {
  policy: 'default' | 'fifo' | 'rr' | 'other' | 'batch' | 'idle';
  priority: number | null;
}

export interface EngineOptions {
  /** I/O threads; default = number of cores. */
  threads: number;
  /** SO_RCVBUF per media socket, bytes. */
  receiveBufferBytes: number;
  /** Default: left as the process has it. */
  scheduling?: ThreadScheduling;
  /** The background threads (pcap writer, event delivery); default: left as the process has it. */
  idleScheduling?: ThreadScheduling;
  /**
   * Batch rule changes: addStream/updateStream/removeStream only queue the change, under a fence issued once
   * per event-loop turn, and the JS thread never waits for the I/O threads to apply it. `settled()` resolves
   * when every change made before it is in place: an ng reply waits for it, so media follows the reply's
   * rules the moment the reply leaves. Rule changes are in place once queued (an I/O thread runs its queue
   * before it reads another packet) unless ICE or the kernel path decide the destination off that thread;
   * a quality copy or play DTMF outcome waits for the thread. Removed sockets close when the fence passed, a
   * few ms later. Default false: each call returns with its change in place (and a removed stream's port free).
   */
  batchChanges?: boolean;
  /** The certificate DTLS-SRTP presents (made at start); default ECDSA P-256, sha-256. */
  dtls?: DtlsCertificateOptions;
  /**
   * rtpengine's `--table`: ≥ 0 hands confirmed streams to the kernel fast path (eBPF, see README "Kernel fast
   * path"); -1 / absent = userspace only. A kernel that refuses leaves the engine in userspace
   * (info().kernelPath says why).
   */
  table?: number;
  /** The media addresses (--interface): the kernel path attaches to the interfaces carrying them (and lo). */
  kernelAddresses?: readonly string[];
}

/** rtpengine's --dtls-cert-cipher, --dtls-rsa-key-size, --dtls-signature. */
export interface DtlsCertificateOptions {
  cipher: 'prime256v1' | 'rsa';
  rsaKeyBits: number;
  signature: 'sha-256' | 'sha-1';
  /** A saved certificate and its key (PEM, DataPlane.dtlsCertificate), used instead of a new one (restart). */
  certificatePem?: string;
  privateKeyPem?: string;
}

/** The relay's DTLS certificate and private key, PEM (secret: kept only in the state dir / Redis). */
export interface DtlsCertificatePem {
  certificatePem: string;
  privateKeyPem: string;
}

/** Raised when a socket cannot be bound (the port is taken by someone else, or the address is not local). */
export class BindError extends Error {
  override readonly name = 'BindError';
  constructor(
    message: string,
    readonly code: string,
    readonly address: string,
    readonly port: number,
  ) {
    super(message);
  }
}

export interface SettleOptions {
  /**
   * Fence what is pending now instead of with the fence the event-loop turn issues at its end. For an ng
   * reply whose command has made all its changes: a silent fence passes at once, so the reply leaves in this
   * turn rather than after another loop iteration. Not for a quality copy or anything else that later changes
   * of the same command must ride with (a delete's removals join its quality copy's fence: readQualities).
   */
  fenceNow?: boolean;
}

export interface DataPlane {
  /** Bind the socket (or join the RTP socket for muxed RTCP) and install the rule. Throws BindError. */
  addStream(spec: StreamSocketSpec, rule: StreamRule): void;
  /**
   * Resolves once every change made so far is in place on the I/O threads (at once when there is none
   * pending, e.g. without batchChanges). Await it before telling anyone that a change took effect.
   */
  settled(options?: SettleOptions): Promise<void>;
  /** Replace a stream's rule; other traffic is not disturbed. */
  updateStream(id: number, rule: StreamRule): void;
  /**
   * Remove the stream; its socket is closed before this returns (with `batchChanges`: once the fence after it
   * passed, a few ms later, or at once when binding a socket needs the port or the descriptor it holds).
   */
  removeStream(id: number): void;
  /** Read counters of the given streams (unknown ids are absent from the result). No per-packet crossing. */
  readCounters(ids: readonly number[]): Map<number, StreamCounters>;
  /**
   * Call-quality figures of several streams (unknown ids absent) as they stand now, without blocking the JS
   * thread: the copies ride on the next fence, so a removeStream made after this call (delete) does not
   * lose them. For query/delete, which wait for settled() anyway.
   */
  readQualities(ids: readonly number[]): Promise<Map<number, StreamQuality>>;
  /**
   * `play DTMF`: queue RFC 4733 event packets on stream `id` (the one receiving from the party named as the
   * sender), sent towards its sink's party. Optional: a data plane without it refuses play DTMF.
   */
  playDtmf?(id: number, request: DtmfPlayRequest): DtmfPlayOutcome;
  mosTotals(): MosTotals;
  /**
   * The last-packet time (ms since the epoch, 0 = none yet or unknown id) of each stream, in the order given:
   * one crossing and no objects, for sweeps over every stream (readCounters builds an object per stream,
   * which at 1000 calls cost the JS thread ~10 ms a second, taken from a core the I/O threads use).
   */
  lastPacketTimes(ids: Int32Array): Float64Array;
  /**
   * SRTP sequence state of the given streams (unknown ids absent), read without stopping the I/O threads; for
   * the state dir (src/state/). Optional: a data plane without it restores SRTP streams from ROC 0.
   */
  readSrtpProgress?(ids: readonly number[]): Map<number, StreamSrtpProgress>;
  totals(): EngineTotals;
  info(): DataPlaneInfo;
  /** Create a pcap file; nothing feeds it until setRecordingStreams. Throws RecordingFileError. */
  startRecording(spec: RecordingSpec): void;
  /**
   * The streams whose received packets go into the recording, replacing the previous set (empty = paused:
   * the file stays open, nothing is written). Unknown or removed stream ids are ignored. Synchronous: a packet
   * received after this returns obeys the new set. A stream feeds at most one recording.
   */
  setRecordingStreams(recordingId: number, streamIds: readonly number[]): void;
  /** Detach, write everything queued, close the file; returns the final counters (null = unknown id). */
  stopRecording(recordingId: number): RecordingCounters | null;
  readRecording(recordingId: number): RecordingCounters | null;
  /** Slow events (first packet, learning), delivered in batches on the JS thread. */
  onEvents(listener: (events: EngineEvent[]) => void): void;
  /**
   * The relay's DTLS certificate fingerprint with the given hash (for a=fingerprint); optional: a data plane
   * without DTLS has none, and the control plane then refuses DTLS.
   */
  dtlsFingerprint?(hash: DtlsFingerprint['hash']): DtlsFingerprint;
  /** The certificate and key behind dtlsFingerprint, to be saved so that a restart presents the same one. */
  dtlsCertificate?(): DtlsCertificatePem;
  /** The keys each stream's DTLS handshake negotiated (streams without finished handshake are left out). */
  readDtlsKeys?(ids: readonly number[]): Map<number, DtlsSessionKeys>;
  close(): void;
}
