/**
 * SDES negotiation per media, as rtpengine 10.5 does it (observed with its ng interface):
 *
 * Offer from A towards B (the lines written into the SDP for B):
 *  - B's protocol is not SAVP(F), or `SDES: off` (or `no`, `disable`): no a=crypto lines.
 *  - Otherwise A's usable a=crypto lines go first, unchanged (A's tags and keys: if B picks one of them, both
 *    sides share keys and packets pass through without crypto work), then ngrelay's own fresh key for every
 *    other suite it implements, in rtpengine's preference order, tags continuing after A's highest tag.
 *    `no-<suite>` removes a suite from both lists, `only-<suite>` keeps only the named ones (rtpengine 10.5.3.5
 *    ignored `only-` in our probes; ngrelay honours it as rtpengine documents it). `unencrypted_srtp`,
 *    `unencrypted_srtcp`, `unauthenticated_srtp` go onto ngrelay's own lines (not onto AEAD suites, where
 *    they are meaningless).
 * Answer from B (settles both sides):
 *  - B answered a tag ngrelay offered: B sends with its answered key, ngrelay sends to B with the offered line
 *    of that tag. No usable line: B is plain RTP.
 *  - A is answered one suite: if B picked one of A's own lines, A gets that tag with B's key (pass-through
 *    both ways); otherwise A's first usable line with a fresh ngrelay key.
 *  - A offered SAVP but no usable line: A is plain RTP and its answer says RTP/AVP(F) (rtpengine 10.5 writes
 *    RTP/SAVP without a=crypto there, which no endpoint can use).
 * Keys ngrelay generated are reused on re-offers/re-answers for the same suite, so SRTP state (ROC) survives
 * a re-INVITE.
 */
import type { SrtpKeys, SrtpSuiteName } from '../dataplane/types';
import type { SdpMedia } from '../sdp/types';
import { cryptoUsable, formatCrypto, generateCrypto, offerableSuites, sdesSuite, type SdesCrypto } from '../sdp/crypto';
import type { MediaCryptoState, SdesKeyState } from './state';

export function isSrtpProtocol(proto: string): boolean {
  return /(^|\/)SAVPF?$/.test(proto);
}

/** RTP/SAVP → RTP/AVP, RTP/SAVPF → RTP/AVPF; anything else unchanged. */
export function plainProtocol(proto: string): string {
  return proto === 'RTP/SAVP' ? 'RTP/AVP' : proto === 'RTP/SAVPF' ? 'RTP/AVPF' : proto;
}

export function emptyMediaCrypto(): MediaCryptoState {
  return { offered: [], given: [], theirs: null, ours: null };
}

function keyState(c: SdesCrypto, own: boolean): SdesKeyState {
  const k = c.keys[0] as { key: Buffer; salt: Buffer };
  return {
    tag: c.tag,
    suite: c.suite.name,
    key: Buffer.concat([k.key, k.salt]).toString('base64'),
    unencryptedSrtp: c.params.unencryptedSrtp,
    unencryptedSrtcp: c.params.unencryptedSrtcp,
    unauthenticatedSrtp: c.params.unauthenticatedSrtp,
    own,
  };
}

/** `SDES` off/no/disable (rtpengine's three spellings): no a=crypto lines at all. */
function sdesDisabled(sdes: readonly string[]): boolean {
  return sdes.some((f) => f === 'off' || f === 'no' || f === 'disable');
}

/** A suite passes the `SDES` no-/only- flags. */
function suiteAllowed(suite: SrtpSuiteName, sdes: readonly string[]): boolean {
  return offerableSuites(sdes).some((s) => s.name === suite);
}

/**
 * The a=crypto lines of a party's media that the native core can use: known suite, well-formed, KDR 0, one
 * key without MKI (MKI switching is not implemented), allowed by the SDES flags.
 */
export function usableCryptoLines(media: SdpMedia, sdes: readonly string[]): SdesKeyState[] {
  const out: SdesKeyState[] = [];
  for (const parsed of media.crypto) {
    if (!parsed.ok) continue;
    const c = parsed.crypto;
    if (!cryptoUsable(c) || c.keys.length !== 1 || c.keys[0]?.mki !== undefined) continue;
    if (!suiteAllowed(c.suite.name, sdes)) continue;
    if (out.some((o) => o.tag === c.tag)) continue;
    out.push(keyState(c, false));
  }
  return out;
}

function fresh(tag: number, suite: SrtpSuiteName, sdes: readonly string[], previous: readonly SdesKeyState[]): SdesKeyState {
  const known = previous.find((p) => p.own && p.suite === suite);
  const info = sdesSuite(suite);
  if (!info) throw new RangeError(`unknown suite ${suite}`);
  const c = generateCrypto(tag, info, {
    unencryptedSrtp: sdes.includes('unencrypted_srtp'),
    unencryptedSrtcp: sdes.includes('unencrypted_srtcp'),
    unauthenticatedSrtp: sdes.includes('unauthenticated_srtp'),
  });
  const state = keyState(c, true);
  // Same suite and session options as before: keep the key (and so the receiver's SRTP state).
  if (
    known &&
    known.unencryptedSrtp === state.unencryptedSrtp &&
    known.unencryptedSrtcp === state.unencryptedSrtcp &&
    known.unauthenticatedSrtp === state.unauthenticatedSrtp
  ) {
    return { ...known, tag };
  }
  return state;
}

/** Lines for the SDP that goes to the offer's receiver (see the module comment). */
export function offerLines(
  receiverProto: string,
  senderLines: readonly SdesKeyState[],
  sdes: readonly string[],
  previousGiven: readonly SdesKeyState[],
): SdesKeyState[] {
  if (!isSrtpProtocol(receiverProto) || sdesDisabled(sdes)) return [];
  const lines: SdesKeyState[] = senderLines.map((l) => ({ ...l, own: false }));
  let tag = lines.reduce((max, l) => Math.max(max, l.tag), 0);
  for (const suite of offerableSuites(sdes)) {
    if (lines.some((l) => l.suite === suite.name)) continue;
    lines.push(fresh(++tag, suite.name, sdes, previousGiven));
  }
  return lines;
}

export interface AnswerSettlement {
  offerer: MediaCryptoState;
  answerer: MediaCryptoState;
}

/**
 * Settle both sides from the answer. `offerer` holds A's offered lines; `answerer.given` what B was offered;
 * `answerLines` B's usable lines in its answer (B's protocol plain = none).
 */
export function settleAnswer(
  offerer: MediaCryptoState,
  answerer: MediaCryptoState,
  answerLines: readonly SdesKeyState[],
  sdes: readonly string[],
): AnswerSettlement {
  let bTheirs: SdesKeyState | null = null;
  let bOurs: SdesKeyState | null = null;
  for (const line of answerLines) {
    const given = answerer.given.find((g) => g.tag === line.tag && g.suite === line.suite);
    if (given) {
      bTheirs = line;
      bOurs = given;
      break;
    }
  }
  const b: MediaCryptoState = { offered: [...answerLines], given: answerer.given, theirs: bTheirs, ours: bOurs };

  let aTheirs: SdesKeyState | null = null;
  let aOurs: SdesKeyState | null = null;
  if (bTheirs && bOurs && !bOurs.own) {
    // B took A's own line: A hears B's key under A's tag, and packets pass through both ways.
    aTheirs = offerer.offered.find((l) => l.tag === bOurs.tag) ?? null;
    if (aTheirs) aOurs = { ...bTheirs, tag: aTheirs.tag, own: false };
  }
  if (!aTheirs) {
    aTheirs = offerer.offered[0] ?? null;
    if (aTheirs) {
      const previous = offerer.ours && offerer.ours.own ? [offerer.ours] : [];
      aOurs = fresh(aTheirs.tag, aTheirs.suite, sessionFlagsOf(aTheirs, sdes), previous);
    }
  }
  return { offerer: { offered: offerer.offered, given: aOurs ? [aOurs] : [], theirs: aTheirs, ours: aOurs }, answerer: b };
}

/** The answer to a line mirrors its session parameters (RFC 4568 §6.3 wants them to match). */
function sessionFlagsOf(line: SdesKeyState, sdes: readonly string[]): string[] {
  const flags = sdes.filter((f) => !['unencrypted_srtp', 'unencrypted_srtcp', 'unauthenticated_srtp'].includes(f));
  if (line.unencryptedSrtp) flags.push('unencrypted_srtp');
  if (line.unencryptedSrtcp) flags.push('unencrypted_srtcp');
  if (line.unauthenticatedSrtp) flags.push('unauthenticated_srtp');
  return flags;
}

/** `a=crypto:` value as ngrelay writes it: formatCrypto's (base64 without padding, as rtpengine). */
export function formatKeyLine(k: SdesKeyState): string {
  const info = sdesSuite(k.suite);
  if (!info) throw new RangeError(`unknown suite ${k.suite}`);
  const material = Buffer.from(k.key, 'base64');
  const crypto: SdesCrypto = {
    tag: k.tag,
    suite: info,
    keys: [{ key: material.subarray(0, info.masterKeyLength), salt: material.subarray(info.masterKeyLength) }],
    params: {
      unencryptedSrtp: k.unencryptedSrtp,
      unencryptedSrtcp: k.unencryptedSrtcp,
      unauthenticatedSrtp: k.unauthenticatedSrtp,
      other: [],
    },
  };
  return `crypto:${formatCrypto(crypto)}`;
}

/** The data plane's view of a negotiated key. */
export function srtpKeys(k: SdesKeyState | null | undefined): SrtpKeys | null {
  if (!k) return null;
  const info = sdesSuite(k.suite);
  if (!info) return null;
  const material = Buffer.from(k.key, 'base64');
  return {
    suite: k.suite,
    key: material.subarray(0, info.masterKeyLength),
    salt: material.subarray(info.masterKeyLength),
    unencryptedSrtp: k.unencryptedSrtp,
    unencryptedSrtcp: k.unencryptedSrtcp,
    unauthenticatedSrtp: k.unauthenticatedSrtp,
  };
}
