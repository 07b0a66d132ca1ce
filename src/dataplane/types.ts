/**
 * The contract between the control plane (TypeScript) and the data plane (the native engine).
 * The control plane decides *what* is forwarded where; the engine owns the sockets and moves the packets.
 * No RTP or RTCP packet ever crosses this interface.
 */

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
}

/** SDES crypto suite names the native SRTP core implements (src/sdp/crypto.ts SDES_SUITES). */
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
  inbound: SrtpKeys | null;
  outbound: SrtpKeys | null;
  /** ng `recrypt`: decrypt and re-encrypt even when both sides share keys. */
  recrypt: boolean;
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
}

export interface StreamCounters {
  packets: number;
  bytes: number;
  /** Every dropped packet of this stream, SRTP authentication and replay failures included. */
  errors: number;
  /** SRTP/SRTCP packets that failed authentication (tampered, wrong key); present when the stream has keys. */
  srtpAuthFailed?: number;
  /** SRTP/SRTCP packets refused by the replay window; present when the stream has keys. */
  srtpReplayed?: number;
  /** Epoch milliseconds of the last packet received on this stream; 0 = never. */
  lastPacketMs: number;
  /** Where packets to this party currently go (expected or learned); null = nowhere yet. */
  endpoint: Endpoint | null;
  /** The endpoint was learned from real traffic. */
  confirmed: boolean;
  /** Last seen RTP SSRC / sequence number (RTP streams only). */
  ssrc: number | null;
  lastSeq: number | null;
}

export interface EngineTotals {
  packets: number;
  bytes: number;
  errors: number;
  /** Packets dropped because they were malformed (bad RTP/RTCP header). */
  malformed: number;
  /** Packets lost to overload (receive queue overflow or send failure). */
  dropped: number;
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
}

export type EngineEvent =
  | { type: 'first-packet'; id: number; from: Endpoint; atMs: number }
  | { type: 'learned'; id: number; endpoint: Endpoint; atMs: number }
  | { type: 'source-changed'; id: number; endpoint: Endpoint; atMs: number }
  /** The stream received media, then none for 5 s (reported once until media resumes). */
  | { type: 'idle'; id: number; endpoint: Endpoint; atMs: number }
  /** Media arrived again on a stream reported idle. */
  | { type: 'resumed'; id: number; from: Endpoint; atMs: number };

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

export interface DataPlane {
  /** Bind the socket (or join the RTP socket for muxed RTCP) and install the rule. Throws BindError. */
  addStream(spec: StreamSocketSpec, rule: StreamRule): void;
  /** Replace a stream's rule; other traffic is not disturbed. */
  updateStream(id: number, rule: StreamRule): void;
  /** Remove the stream; its socket is closed before this returns, so the port can be bound again. */
  removeStream(id: number): void;
  /** Read counters of the given streams (unknown ids are absent from the result). No per-packet crossing. */
  readCounters(ids: readonly number[]): Map<number, StreamCounters>;
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
  close(): void;
}
