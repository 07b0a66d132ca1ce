/**
 * The ICE and DTLS-SRTP part of offer/answer (rules in src/call/webrtc-negotiation.ts): what each party's
 * media remembers about ICE and DTLS, and the SDP lines the relay writes for them. The call manager calls it
 * after a command's media are committed (a failure is rolled back with the rest of the command) and when it
 * writes the SDP.
 */
import type { DataPlane, DtlsFingerprint } from '../dataplane/types';
import type { ParsedSdp } from '../sdp/types';
import type { SdpIce } from '../sdp/webrtc-attributes';
import type { MediaState, MediaWebrtcState, MonologueState } from './state';
import type { SignalRequest } from './signal';
import { isSrtpProtocol } from './srtp-negotiation';
import { socketPairsOf } from './ice-sockets';
import {
  DtlsUnavailableError,
  dtlsAttributeValues,
  dtlsDisabled,
  fingerprintHashOf,
  iceAttributeValues,
  iceMode,
  icePassThrough,
  iceWanted,
  isDtlsProtocol,
  mergeRemoteDtls,
  mergeRemoteIce,
  newIceCredentials,
  passThroughCandidateValues,
  passThroughPreference,
  passivePreference,
  randomAlphanumeric,
  relayControls,
  roleAgainst,
  type CandidateRank,
  type LocalCandidate,
} from './webrtc-negotiation';

/** What the parties' SRTP is under pass-through: end to end, nothing offered, decrypted or keyed by the relay. */
function endToEndCrypto(media: MediaState): void {
  if (media.crypto) media.crypto = { ...media.crypto, given: [], theirs: null, ours: null };
}

/** Enters (or leaves) ICE/DTLS pass-through for one media pair; true = it holds (the caller is done with it). */
function passThrough(a: MediaState, b: MediaState, on: boolean): boolean {
  if (!on) {
    a.icePassThrough = undefined;
    b.icePassThrough = undefined;
    return false;
  }
  for (const m of [a, b]) {
    m.icePassThrough = true;
    m.webrtc = undefined;
    endToEndCrypto(m);
  }
  return true;
}

export class WebrtcMedia {
  /** ICE candidate foundation per local address, fixed for the process's life (as rtpengine's). */
  private readonly foundations = new Map<string, string>();

  constructor(
    private readonly dataPlane: DataPlane,
    /** --dtls-passive. */
    private readonly dtlsPassive: boolean,
  ) {}

  /**
   * The offerer of this media gets DTLS-SRTP in the answer: it offered a fingerprint, `DTLS` is not off, and the
   * data plane has DTLS (without it an RTP/SAVP offerer falls back to SDES; a UDP/TLS one is refused later).
   */
  answersDtls(req: SignalRequest, offererMedia: MediaState): boolean {
    // ICE/DTLS pass-through: the parties' own DTLS-SRTP, end to end.
    if (offererMedia.icePassThrough === true) return true;
    if (!offererMedia.webrtc?.dtls?.remoteFingerprint || dtlsDisabled(req.dtls) || !isSrtpProtocol(offererMedia.protocol)) return false;
    return this.dataPlane.dtlsFingerprint !== undefined || isDtlsProtocol(offererMedia.protocol);
  }

  /** The relay's certificate fingerprint, or the typed refusal when the data plane has no DTLS. */
  private relayFingerprint(hash: DtlsFingerprint['hash']): DtlsFingerprint {
    if (!this.dataPlane.dtlsFingerprint) throw new DtlsUnavailableError();
    return this.dataPlane.dtlsFingerprint(hash);
  }

  /** ICE-lite key of an offer: which parties the relay is lite towards from now on. */
  private applyIceLite(req: SignalRequest, self: MonologueState, peer: MonologueState): void {
    const v = req.iceLite;
    if (v === 'forward' || v === 'both') peer.iceLite = true;
    if (v === 'backward' || v === 'both') self.iceLite = true;
    if (v === 'off') {
      self.iceLite = false;
      peer.iceLite = false;
    }
  }

  /**
   * ICE and DTLS of an offer (src/call/webrtc-negotiation.ts): what the offerer said is remembered on its side
   * (the relay's answer to it decides whether they are used); the receiver's side gets what the flags ask for.
   * Runs after the media are committed; it replaces webrtc objects, never changes them in place (snapshots
   * share them).
   */
  offer(req: SignalRequest, sdp: ParsedSdp, self: MonologueState, peer: MonologueState): void {
    this.applyIceLite(req, self, peer);
    const mode = iceMode(req.ice);
    const canDtls = this.dataPlane.dtlsFingerprint !== undefined;
    for (const sdpMedia of sdp.media) {
      const a = self.medias[sdpMedia.index] as MediaState;
      const b = peer.medias[sdpMedia.index] as MediaState;
      a.mid = sdpMedia.mid;
      if (a.rejected) {
        a.webrtc = undefined;
        b.webrtc = undefined;
        continue;
      }
      if (passThrough(a, b, icePassThrough(mode, sdpMedia.ice !== null))) continue;
      // The offerer's side.
      const previousA = a.webrtc ?? { ice: null, dtls: null };
      const merged = sdpMedia.ice ? mergeRemoteIce(previousA.ice, sdpMedia.ice, self.iceLite === true) : null;
      if (merged?.restarted) self.iceCredentials = newIceCredentials();
      const aDtls = sdpMedia.dtls?.fingerprint
        ? mergeRemoteDtls(
            previousA.dtls,
            sdpMedia.dtls,
            {
              prefersPassive: passivePreference(req.dtlsReverse) ?? previousA.dtls?.prefersPassive ?? this.dtlsPassive === true,
              hash: previousA.dtls?.hash ?? sdpMedia.dtls.fingerprint.hash,
            },
            merged?.restarted === true,
          )
        : null;
      // A re-offer keeps the settled role until its answer settles it again (media must not stop meanwhile).
      this.setWebrtc(a, { ice: merged?.ice ?? null, dtls: aDtls });

      // The receiver's side.
      const previousB = b.webrtc ?? { ice: null, dtls: null };
      let bIce = null;
      if (iceWanted(mode, sdpMedia.ice !== null)) {
        peer.iceCredentials ??= newIceCredentials();
        const base = mergeRemoteIce(previousB.ice, null, peer.iceLite === true).ice;
        bIce = { ...base, controlling: relayControls(true, peer.iceLite === true, base.remoteLite) };
      }
      let bDtls = null;
      if (isSrtpProtocol(b.protocol) && !dtlsDisabled(req.dtls)) {
        if (!canDtls && isDtlsProtocol(b.protocol)) throw new DtlsUnavailableError();
        if (canDtls) {
          bDtls = mergeRemoteDtls(
            previousB.dtls,
            null,
            {
              prefersPassive: passivePreference(req.dtls) ?? previousB.dtls?.prefersPassive ?? this.dtlsPassive === true,
              hash: fingerprintHashOf(req.dtlsFingerprint) ?? previousB.dtls?.hash ?? 'sha-256',
            },
            false,
          );
        }
      }
      this.setWebrtc(b, { ice: bIce, dtls: bDtls });
    }
  }

  /** ICE and DTLS settled by an answer, for both sides (see offer). */
  answer(req: SignalRequest, sdp: ParsedSdp, offerer: MonologueState, answerer: MonologueState): void {
    const mode = iceMode(req.ice);
    for (const sdpMedia of sdp.media) {
      const a = offerer.medias[sdpMedia.index] as MediaState;
      const b = answerer.medias[sdpMedia.index] as MediaState;
      b.mid = sdpMedia.mid;
      if (a.rejected || b.rejected) {
        a.webrtc = undefined;
        b.webrtc = undefined;
        continue;
      }
      // The offer set up pass-through: the answer's ICE and DTLS pass back to the offerer (an answer without ICE
      // ends it).
      if (passThrough(a, b, a.icePassThrough === true && b.icePassThrough === true && sdpMedia.ice !== null)) continue;
      // The answerer: ICE and DTLS only where the relay offered them and the answer takes them up.
      const offeredB = b.webrtc ?? { ice: null, dtls: null };
      let bIce = null;
      if (offeredB.ice && sdpMedia.ice) {
        const merged = mergeRemoteIce(offeredB.ice, sdpMedia.ice, answerer.iceLite === true);
        if (merged.restarted) answerer.iceCredentials = newIceCredentials();
        bIce = { ...merged.ice, controlling: relayControls(true, answerer.iceLite === true, merged.ice.remoteLite) };
      }
      let bDtls = null;
      if (offeredB.dtls && sdpMedia.dtls?.fingerprint) {
        const merged = mergeRemoteDtls(offeredB.dtls, sdpMedia.dtls, offeredB.dtls, false);
        bDtls = { ...merged, role: roleAgainst(sdpMedia.dtls.setup, merged.prefersPassive) };
        // DTLS is preferred over SDES: the answerer's a=crypto lines are not used.
        if (b.crypto) b.crypto = { ...b.crypto, theirs: null, ours: null };
      }
      this.setWebrtc(b, { ice: bIce, dtls: bDtls });

      // The offerer gets the relay's ICE per this answer's ICE key, and DTLS when it offered it. Outside
      // pass-through, `optional`/`force-relay` in an answer give the offerer the relay's ICE only if it offered
      // ICE (rtpengine 10.5 generates none for an offerer without ICE).
      const offeredA = a.webrtc ?? { ice: null, dtls: null };
      let aIce = null;
      if (iceWanted(mode === 'optional' || mode === 'force-relay' ? 'default' : mode, offeredA.ice !== null)) {
        offerer.iceCredentials ??= newIceCredentials();
        const base = mergeRemoteIce(offeredA.ice, null, offerer.iceLite === true).ice;
        aIce = { ...base, controlling: relayControls(false, offerer.iceLite === true, base.remoteLite) };
      }
      let aDtls = null;
      if (offeredA.dtls && this.answersDtls(req, a)) {
        this.relayFingerprint(offeredA.dtls.hash); // a UDP/TLS offerer with a data plane without DTLS: refused here
        const prefersPassive = passivePreference(req.dtls) ?? offeredA.dtls.prefersPassive;
        const hash = fingerprintHashOf(req.dtlsFingerprint) ?? offeredA.dtls.hash;
        aDtls = { ...offeredA.dtls, hash, prefersPassive, role: roleAgainst(offeredA.dtls.remoteSetup, prefersPassive) };
        if (a.crypto) a.crypto = { ...a.crypto, given: [], theirs: null, ours: null };
      }
      this.setWebrtc(a, { ice: aIce, dtls: aDtls });
    }
  }

  /** Stores a media's WebRTC state, dropping it when there is neither ICE nor DTLS (plain calls stay as before). */
  private setWebrtc(media: MediaState, webrtc: MediaWebrtcState): void {
    if (webrtc.ice === null && webrtc.dtls === null) media.webrtc = undefined;
    else media.webrtc = webrtc;
  }

  /** The ICE candidate foundation of a local address (16 characters, as rtpengine's). */
  private foundationOf(address: string): string {
    let f = this.foundations.get(address);
    if (f === undefined) {
      f = randomAlphanumeric(16);
      this.foundations.set(address, f);
    }
    return f;
  }

  /** a=ice-*, a=candidate lines towards `receiver` for one media; undefined = the relay does no ICE with it. */
  iceLines(
    req: SignalRequest,
    receiver: MonologueState,
    media: MediaState,
    rtcpPort: number | null,
    senderIce: SdpIce | null,
  ): string[] | undefined {
    const ice = media.webrtc?.ice;
    // Most media do no ICE: nothing to build (this runs for every m= line of every offer and answer).
    if (media.icePassThrough !== true && (!ice || !receiver.iceCredentials)) return undefined;
    const relayType = iceMode(req.ice) === 'force-relay' ? 'relay' : 'host';
    // One host candidate per address of the interface name (src/call/ice-sockets.ts), RTP ones first, as
    // rtpengine 10.5 writes them; each address has a foundation of its own.
    const pairs = socketPairsOf(media).map((p, addressIndex) => ({ ...p, addressIndex, foundation: this.foundationOf(p.rtp.advertisedAddress) }));
    const candidates: LocalCandidate[] = pairs.map((p) => ({ foundation: p.foundation, component: 1, address: p.rtp.advertisedAddress, port: p.rtp.localPort, addressIndex: p.addressIndex }));
    // An RTCP port of its own (no rtcp-mux): component 2 there.
    if (rtcpPort !== null && rtcpPort !== media.rtp.localPort) {
      for (const p of pairs) {
        const port = p.addressIndex === 0 ? rtcpPort : p.rtcp.localPort;
        candidates.push({ foundation: p.foundation, component: 2, address: p.rtp.advertisedAddress, port, addressIndex: p.addressIndex });
      }
    }
    if (media.icePassThrough === true) {
      const rank: CandidateRank = { type: relayType, preference: passThroughPreference(relayType, senderIce?.candidates ?? []) };
      return passThroughCandidateValues(candidates, rank);
    }
    if (!ice || !receiver.iceCredentials) return undefined;
    const rank: CandidateRank | undefined = relayType === 'relay' ? { type: 'relay', preference: passThroughPreference('relay', []) } : undefined;
    return iceAttributeValues(receiver.iceCredentials, candidates, req.flags.has('trickle-ICE') || ice.remoteTrickle, rank);
  }

  /** a=setup, a=fingerprint towards the party of `media`; undefined = no DTLS with it. */
  dtlsLines(media: MediaState, kind: 'offer' | 'answer'): string[] | undefined {
    const dtls = media.webrtc?.dtls;
    if (!dtls) return undefined;
    const setup = kind === 'offer' ? 'actpass' : (dtls.role ?? 'active');
    return dtlsAttributeValues(setup, this.relayFingerprint(dtls.hash));
  }
}
