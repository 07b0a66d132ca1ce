/** What offer/answer/delete need from an ng request, already validated by the command layer. */
import type { EndpointLearning } from '../dataplane/types';
import type { AddrType } from '../sdp/types';

export interface SignalRequest {
  callId: string;
  fromTag: string;
  toTag: string | null;
  viaBranch: string | null;
  sdp: Buffer;
  /** Bare flags, spelled as rtpengine documents them (hyphens), e.g. 'SIP-source-address'. */
  flags: ReadonlySet<string>;
  /** `replace` entries: origin, session-connection, SDP-version, zero-address, ... */
  replace: ReadonlySet<string>;
  /** `rtcp-mux` entries: offer, demux, accept, reject, require. */
  rtcpMux: ReadonlySet<string>;
  /** `bundle` entries (src/call/bundle.ts): accept, offer, require, reject. Optional. */
  bundle?: ReadonlySet<string>;
  /** `ICE` key: remove, force, default, ... (null = not given = default). */
  ice: string | null;
  /** `ICE-lite` key: forward, backward, both, off (null = not given: unchanged). Optional. */
  iceLite?: string | null;
  /** `DTLS` key: off/no/disable, passive, active (null = not given). Optional. */
  dtls?: string | null;
  /** `DTLS-reverse` key: passive, active (null = not given). Optional. */
  dtlsReverse?: string | null;
  /** `DTLS-fingerprint` key: the hash of the relay's a=fingerprint (sha-256 default). Optional. */
  dtlsFingerprint?: string | null;
  transportProtocol: string | null;
  /** `SDES` entries and `SDES-X` flags: off, no-<suite>, only-<suite>, unencrypted_srtp, ... Optional. */
  sdes?: readonly string[];
  /** `direction`: [interface facing the sender of this message, interface facing its receiver]. */
  direction: readonly string[];
  receivedFrom: { addrType: AddrType; address: string } | null;
  mediaAddress: string | null;
  addressFamily: AddrType | null;
  label: string | null;
  metadata: string | null;
  recordCall: boolean | null;
  endpointLearning: EndpointLearning | null;
}

export interface DeleteRequest {
  callId: string;
  fromTag: string | null;
  toTag: string | null;
  viaBranch: string | null;
  /** Seconds; null = the configured default. */
  deleteDelay: number | null;
  fatal: boolean;
  /** `fast`: reply without statistics. */
  fast: boolean;
}
