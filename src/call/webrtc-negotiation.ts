/**
 * ICE (RFC 8445, SDP per RFC 8839) and DTLS-SRTP (RFC 5763/5764, RFC 8842) between the relay and each party,
 * decided from the ng flags the way rtpengine 10.5 does (observed side by side, test/compat/webrtc-sdp.test.ts):
 *
 * ICE towards the receiver of an SDP (the `ICE` key of that message):
 *  - `remove`: none. `force`: the relay's own.
 *  - `default` or absent: the relay's own when the SDP it came from had ICE attributes, else none.
 *  - `optional`, `force-relay` when the SDP it came from had ICE: pass-through (rtpengine 10.5's PASSTHRU).
 *    The sender's ICE and DTLS attributes reach the receiver unchanged, the parties run ICE and DTLS-SRTP
 *    end to end and the engine forwards their STUN and DTLS like media; the relay only adds candidates for
 *    itself (a host one for `optional`, a `relay` one with raddr/rport for `force-relay`), ranked just above
 *    the sender's lowest candidate of that type (type 126/0, local preference 65535 when it has none). The
 *    pass-through holds for the media until the call ends; the answer's ICE and DTLS pass back the same way.
 *  - `optional` without ICE in an offer: as `force`. `force-relay` without: the relay's own credentials and
 *    a `relay` candidate (priority 16777215). In an answer outside pass-through both act as `default`.
 *  - `force-relay` leaves the m= port, the c= lines and the a=rtcp/a=rtcp-mux of the SDP as they are; the
 *    relay adds its own a=rtcp/a=rtcp-mux only to an answer with rtcp-mux (it is reached through its relay
 *    candidate).
 *  The relay's a=ice-ufrag (8 chars) / a=ice-pwd (26 chars) are per party (monologue) and renewed when that
 *  party restarts ICE (a new ufrag/pwd of its own). One host candidate per component on the stream's address
 *  (component 2 only without rtcp-mux), type preference 126, local preference 65535, a foundation per local
 *  address. a=ice-options:trickle and a=end-of-candidates only when the party announced trickle or the message
 *  has `trickle-ICE`. `ICE-lite` (`forward`: towards this offer's receiver, `backward`: towards its sender,
 *  `both`, `off`) makes the relay lite (a=ice-lite at session level); it is kept until changed.
 *  Roles (RFC 8445 §6.1.1): a full agent facing a lite one controls; otherwise the offerer of the relay <->
 *  party exchange controls (the relay controls the party it sent an offer to).
 *
 * DTLS-SRTP towards the receiver of an offer: offered (a=setup:actpass, a=fingerprint) whenever the receiver's
 * protocol is SRTP (UDP/TLS/RTP/SAVP(F), RTP/SAVP(F)), next to SDES, unless `DTLS` is off/no/disable. A
 * UDP/TLS protocol with a data plane without DTLS is refused (DtlsUnavailableError); RTP/SAVP then gets SDES only.
 * The answerer uses DTLS if its answer has an a=fingerprint (its a=crypto are then ignored: DTLS is preferred).
 * Towards the offerer, the answer carries DTLS when the offer had an a=fingerprint and `DTLS` is not off.
 * Role: the opposite of the party's a=setup active/passive; for actpass the relay's preference: `DTLS` of the
 * answer (towards the offerer) or of the offer (towards its receiver), `DTLS-reverse` of the offer (towards the
 * offerer), else --dtls-passive; default active (rtpengine's). A party's a=fingerprint, a=setup and a=tls-id
 * never reach the other party.
 */
import { randomBytes } from 'node:crypto';
import { NgError } from '../errors';
import type { DtlsFingerprint, IceCandidate, StreamDtls, StreamIce } from '../dataplane/types';
import type { DtlsSetup, SdpDtls, SdpIce } from '../sdp/webrtc-attributes';
import { formatFingerprint } from '../sdp/webrtc-attributes';
import type { IceCredentials, MediaDtlsState, MediaIceState } from './state';

/** DTLS was asked for (UDP/TLS protocol) but the data plane has no DTLS certificate. */
export class DtlsUnavailableError extends NgError {
  constructor() {
    super('DTLS-SRTP requested (UDP/TLS transport) but this data plane has no DTLS certificate');
  }
}

/** The values each WebRTC ng key takes; anything else is ignored as rtpengine 10.5 ignores it (and logged). */
const KNOWN_VALUES: Readonly<Record<string, ReadonlySet<string>>> = {
  ICE: new Set(['remove', 'force', 'default', 'force-relay', 'optional']),
  'ICE-lite': new Set(['forward', 'backward', 'both', 'off']),
  DTLS: new Set(['off', 'no', 'disable', 'passive', 'active']),
  'DTLS-reverse': new Set(['passive', 'active']),
};

/** `key=value` of every WebRTC key whose value ngrelay does not know (DTLS-fingerprint: an unknown hash). */
export function unknownWebrtcValues(values: {
  ICE: string | null;
  'ICE-lite': string | null;
  DTLS: string | null;
  'DTLS-reverse': string | null;
  'DTLS-fingerprint': string | null;
}): string[] {
  const out: string[] = [];
  for (const [key, known] of Object.entries(KNOWN_VALUES)) {
    const v = values[key as keyof typeof values];
    if (v !== null && !known.has(v)) out.push(`${key}=${v}`);
  }
  const hash = values['DTLS-fingerprint'];
  if (hash !== null && fingerprintHashOf(hash) === null) out.push(`DTLS-fingerprint=${hash}`);
  return out;
}

export type IceMode = 'remove' | 'force' | 'default' | 'optional' | 'force-relay';

/** The `ICE` key as ngrelay acts on it; unknown values are rtpengine's default (it ignores them too). */
export function iceMode(value: string | null | undefined): IceMode {
  if (value === 'remove' || value === 'force' || value === 'optional' || value === 'force-relay') return value;
  return 'default';
}

/** Whether the receiver of an SDP gets the relay's own ICE (terminated by the engine). */
export function iceWanted(mode: IceMode, sourceHadIce: boolean): boolean {
  if (mode === 'optional' || mode === 'force-relay') return !sourceHadIce;
  return mode === 'force' || (mode === 'default' && sourceHadIce);
}

/** Whether the sender's own ICE and DTLS pass through to the receiver (see the header). */
export function icePassThrough(mode: IceMode, sourceHadIce: boolean): boolean {
  return (mode === 'optional' || mode === 'force-relay') && sourceHadIce;
}

/** RFC 8445 §5.1.2.1: (2^24)·type preference + (2^8)·local preference + (256 − component). */
function candidatePriority(typePreference: number, localPreference: number, component: number): number {
  return typePreference * 2 ** 24 + localPreference * 2 ** 8 + (256 - component);
}

/**
 * Type and local preference of the relay's candidate in pass-through, as rtpengine 10.5 ranks it: just above
 * the sender's lowest-priority RTP candidate of the same type (its type preference, local preference + 1),
 * else the type's own preference (host 126, relay 0) with local preference 65535.
 */
export function passThroughPreference(type: 'host' | 'relay', sourceCandidates: readonly IceCandidate[]): { type: number; local: number } {
  const same = sourceCandidates.filter((c) => c.component === 1 && c.type === type);
  if (same.length === 0) return { type: type === 'host' ? 126 : 0, local: 65535 };
  const lowest = Math.min(...same.map((c) => c.priority));
  return { type: Math.floor(lowest / 2 ** 24), local: Math.min(65535, (Math.floor(lowest / 2 ** 8) % 2 ** 16) + 1) };
}

const OFF_WORDS: ReadonlySet<string> = new Set(['off', 'no', 'disable']);

export function dtlsDisabled(value: string | null | undefined): boolean {
  return value !== null && value !== undefined && OFF_WORDS.has(value);
}

/** `passive` → true, `active` → false, anything else → null (no preference in this message). */
export function passivePreference(value: string | null | undefined): boolean | null {
  if (value === 'passive') return true;
  if (value === 'active') return false;
  return null;
}

/** `DTLS-fingerprint` (SHA-1 ... SHA-512, any case); null = not given or unknown. */
export function fingerprintHashOf(value: string | null | undefined): DtlsFingerprint['hash'] | null {
  const v = value?.toLowerCase().replace(/^sha(\d)/, 'sha-$1');
  return v === 'sha-1' || v === 'sha-224' || v === 'sha-256' || v === 'sha-384' || v === 'sha-512' ? v : null;
}

export function isDtlsProtocol(proto: string): boolean {
  return /^UDP\/TLS\//i.test(proto);
}

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `length` characters of [A-Za-z0-9] from the CSPRNG (62 symbols: rejection sampling keeps them uniform). */
export function randomAlphanumeric(length: number): string {
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b < 248 && out.length < length) out += ALPHANUMERIC[b % 62];
    }
  }
  return out;
}

/** The relay's credentials towards one party: rtpengine's lengths (8 and 26; RFC 8839 wants ≥ 4 and ≥ 22). */
export function newIceCredentials(): IceCredentials {
  return { ufrag: randomAlphanumeric(8), pwd: randomAlphanumeric(26) };
}

function newTieBreaker(): string {
  return randomBytes(8).toString('hex');
}

/** RFC 8445 §6.1.1 / §7.3.1.1 as seen from the relay. */
export function relayControls(relayOffered: boolean, relayLite: boolean, partyLite: boolean): boolean {
  if (relayLite !== partyLite) return partyLite;
  return relayOffered;
}

/** RFC 4145/5763: the answerer's role is the opposite of a definite offered one; actpass leaves the choice. */
export function roleAgainst(setup: DtlsSetup | null, prefersPassive: boolean): 'active' | 'passive' {
  if (setup === 'active') return 'passive';
  if (setup === 'passive') return 'active';
  return prefersPassive ? 'passive' : 'active';
}

/** RFC 8445 §5.1.2.1 host priority: type preference 126, local preference 65535 (rtpengine's values). */
export function hostPriority(component: number): number {
  return candidatePriority(126, 65535, component);
}

/** A party's ICE as its SDP states it, merged into what the relay knew; `restarted` = new ufrag/pwd. */
export function mergeRemoteIce(
  previous: MediaIceState | null,
  sdp: SdpIce | null,
  relayLite: boolean,
): { ice: MediaIceState; restarted: boolean } {
  const base: MediaIceState = previous ?? {
    remoteUfrag: null,
    remotePwd: null,
    remoteLite: false,
    remoteCandidates: [],
    remoteTrickle: false,
    controlling: false,
    lite: relayLite,
    tieBreakers: { rtp: newTieBreaker(), rtcp: newTieBreaker() },
  };
  if (sdp === null) return { ice: { ...base, lite: relayLite }, restarted: false };
  const restarted =
    previous !== null &&
    previous.remoteUfrag !== null &&
    (previous.remoteUfrag !== sdp.ufrag || previous.remotePwd !== sdp.pwd);
  return {
    ice: {
      ...base,
      remoteUfrag: sdp.ufrag,
      remotePwd: sdp.pwd,
      remoteLite: sdp.lite,
      remoteCandidates: sdp.candidates,
      remoteTrickle: sdp.options.includes('trickle'),
      lite: relayLite,
    },
    restarted,
  };
}

/** A party's a=fingerprint merged into the relay's DTLS state; a new fingerprint (or a restart) re-keys. */
export function mergeRemoteDtls(
  previous: MediaDtlsState | null,
  sdp: SdpDtls | null,
  defaults: { prefersPassive: boolean; hash: DtlsFingerprint['hash'] },
  restarted: boolean,
): MediaDtlsState {
  const fingerprint = sdp?.fingerprint ? { hash: sdp.fingerprint.hash, hex: sdp.fingerprint.value.toString('hex') } : null;
  const base: MediaDtlsState = previous ?? {
    remoteFingerprint: null,
    remoteSetup: null,
    role: null,
    prefersPassive: defaults.prefersPassive,
    hash: defaults.hash,
    generation: 1,
  };
  const changed =
    fingerprint !== null &&
    base.remoteFingerprint !== null &&
    (base.remoteFingerprint.hash !== fingerprint.hash || base.remoteFingerprint.hex !== fingerprint.hex);
  return {
    ...base,
    remoteFingerprint: fingerprint ?? base.remoteFingerprint,
    remoteSetup: sdp?.setup ?? base.remoteSetup,
    prefersPassive: defaults.prefersPassive,
    hash: defaults.hash,
    generation: base.generation + (changed || restarted ? 1 : 0),
  };
}

export interface LocalCandidate {
  foundation: string;
  component: number;
  address: string;
  port: number;
  /**
   * Position of the candidate's address among the interface name's addresses (0 = the media's own): rtpengine
   * 10.5 lowers the local preference by one per address. Absent = 0.
   */
  addressIndex?: number;
}

/** How the relay's candidates are typed and ranked (default: host, type preference 126, local 65535). */
export interface CandidateRank {
  type: 'host' | 'relay';
  preference: { type: number; local: number };
}

const HOST_RANK: CandidateRank = { type: 'host', preference: { type: 126, local: 65535 } };

/** One a=candidate value of the relay (a relay candidate names itself as raddr/rport, as rtpengine does). */
function candidateValue(c: LocalCandidate, rank: CandidateRank): string {
  const priority = candidatePriority(rank.preference.type, rank.preference.local - (c.addressIndex ?? 0), c.component);
  const base = `candidate:${c.foundation} ${c.component} UDP ${priority} ${c.address} ${c.port} typ ${rank.type}`;
  return rank.type === 'relay' ? `${base} raddr ${c.address} rport ${c.port}` : base;
}

/** The ICE attribute values (without "a=") the relay writes towards a party, in rtpengine 10.5's order. */
export function iceAttributeValues(
  credentials: IceCredentials,
  candidates: readonly LocalCandidate[],
  trickle: boolean,
  rank: CandidateRank = HOST_RANK,
): string[] {
  const out = [`ice-ufrag:${credentials.ufrag}`, `ice-pwd:${credentials.pwd}`];
  if (trickle) out.push('ice-options:trickle');
  for (const c of candidates) out.push(candidateValue(c, rank));
  if (trickle) out.push('end-of-candidates');
  return out;
}

/** Pass-through: only the relay's candidates, added to the sender's own ICE attributes. */
export function passThroughCandidateValues(candidates: readonly LocalCandidate[], rank: CandidateRank): string[] {
  return candidates.map((c) => candidateValue(c, rank));
}

/** a=setup and a=fingerprint values (without "a="), in rtpengine 10.5's order. */
export function dtlsAttributeValues(setup: 'actpass' | 'active' | 'passive', fingerprint: DtlsFingerprint): string[] {
  return [`setup:${setup}`, `fingerprint:${formatFingerprint(fingerprint)}`];
}

/** The engine's ICE for one stream of a party (component 1 = RTP, 2 = RTCP). */
export function streamIce(ice: MediaIceState, credentials: IceCredentials, component: 1 | 2): StreamIce {
  return {
    localUfrag: credentials.ufrag,
    localPwd: credentials.pwd,
    remoteUfrag: ice.remoteUfrag,
    remotePwd: ice.remotePwd,
    controlling: ice.controlling,
    lite: ice.lite,
    tieBreaker: component === 1 ? ice.tieBreakers.rtp : ice.tieBreakers.rtcp,
    remoteCandidates: ice.remoteCandidates.filter((c: IceCandidate) => c.component === component),
  };
}

/** The engine's DTLS for one stream; null while the role is not settled. */
export function streamDtls(dtls: MediaDtlsState): StreamDtls | null {
  if (dtls.role === null) return null;
  return {
    role: dtls.role,
    remoteFingerprint: dtls.remoteFingerprint
      ? { hash: dtls.remoteFingerprint.hash, value: Buffer.from(dtls.remoteFingerprint.hex, 'hex') }
      : null,
    generation: dtls.generation,
  };
}
