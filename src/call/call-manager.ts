/**
 * Offer/answer/delete on the call model, and keeping the data plane's rules in step with it.
 *
 * Every command is atomic. It first computes and reserves what it needs (SDP parse, ports, sockets), then
 * changes the call, installs the data plane rules and writes the SDP, and only when all of that worked
 * closes the sockets it replaced. A failure before the change just returns the reserved sockets; a failure
 * after it (a rule the data plane refuses, an SDP that cannot be written) also puts the call back as it
 * was, with its old rules, or forgets a call the command was creating. Either way `list`, ports and
 * counters are as before the command.
 */
import { randomHex } from './random-hex';
import { isIP } from 'node:net';
import type { DataPlane, Endpoint, StreamCrypto, StreamRule } from '../dataplane/types';
import type { RelayConfig, InterfaceConfig } from '../config/types';
import type { AddrType, ConnectionAddress, Direction, MediaRewrite, ParsedSdp, SdpMedia, SdpRewrite } from '../sdp/types';
import { parseSdp, sdpParseDetail } from '../sdp/parse';
import { sdpParseError } from '../sdp/lines';
import { rewriteSdp } from '../sdp/rewrite';
import { NgError } from '../errors';
import type { CallState, MediaBundleState, MediaState, MonologueState, PartyOptions, StreamState } from './state';
import {
  emptyMediaCrypto,
  formatKeyLine,
  isSrtpProtocol,
  offerLines,
  plainProtocol,
  settleAnswer,
  srtpKeys,
  usableCryptoLines,
} from './srtp-negotiation';
import type { DeleteRequest, SignalRequest } from './signal';
import { WebrtcMedia } from './webrtc-media';
import { answerKeepsBundle, bundledMedia, bundleGroupValues, isBundledAway, offeredBundle, streamBundle, transportMediaOf } from './bundle';
import { iceMode, streamDtls, streamIce } from './webrtc-negotiation';
import { InterfaceTable, addrTypeOf, familyOf } from './interfaces';
import { StreamSockets } from './stream-sockets';
import { extraStreamsOf, handshakeSocketOf, nominatingSocketOf, sendingSocketOf, streamsOf, syncIceSockets, withSocketEvent } from './ice-sockets';
import { infoEnabled, type Logger } from '../logger';
import { localPorts, logCallEnd } from './end-log';

/** Why a call ended: an ng delete, a timeout, the relay stopping, or an operator's terminate (CLI). */
export type CallEndReason =
  | 'delete'
  | 'timeout'
  | 'silent-timeout'
  | 'offer-timeout'
  | 'final-timeout'
  | 'shutdown'
  | 'terminate'
  /** A foreign call (src/state/foreign-calls.ts) whose key went from the other relay's Redis database. */
  | 'foreign-gone';

export interface CallManagerEvents {
  callEnded?(call: CallState, reason: CallEndReason): void;
}

const ZERO_V4 = '0.0.0.0';
const MAX_PORT = 65_535;
const ZERO_V6 = '::';

function isZeroAddress(address: string): boolean {
  return address === ZERO_V4 || address === ZERO_V6 || address === '::0';
}

function endpoint(addrType: AddrType, address: string, port: number): Endpoint {
  return { family: familyOf(addrType), address, port };
}

function holdDirection(direction: Direction): Direction {
  if (direction === 'sendrecv') return 'sendonly';
  if (direction === 'recvonly') return 'inactive';
  return direction;
}

/** First codec of a media section, as "PCMU/8000" (static payload types get their well-known name). */
const STATIC_CODECS: Record<string, string> = {
  '0': 'PCMU/8000',
  '3': 'GSM/8000',
  '4': 'G723/8000',
  '8': 'PCMA/8000',
  '9': 'G722/8000',
  '18': 'G729/8000',
};

function firstCodec(media: SdpMedia): string | null {
  const pt = media.formats[0];
  if (pt === undefined) return null;
  return media.rtpmaps.get(pt) ?? STATIC_CODECS[pt] ?? null;
}

/** Parse an offer/answer SDP and refuse, with rtpengine's words, what it cannot relay. */
function parseSignalSdp(body: Buffer): ParsedSdp {
  const sdp = parseSdp(body);
  if (sdp.media.length === 0) throw new NgError('Error rewriting SDP');
  if (sdp.media.some((m) => m.port !== 0 && !m.effectiveConnection)) throw new NgError('Incomplete SDP specification');
  return sdp;
}

export class CallManager {
  readonly calls = new Map<string, CallState>();
  /** Data plane stream id → call-id, for engine events; entries go when the stream is closed. */
  private readonly streamCalls = new Map<number, string>();
  private readonly interfaces: InterfaceTable;
  readonly sockets: StreamSockets;
  private signalGeneration = 1;
  /** ICE and DTLS-SRTP of the parties' media (src/call/webrtc-media.ts). */
  private readonly webrtc: WebrtcMedia;
  /** Counters for the `statistics` command. */
  readonly totals = {
    managedSessions: 0,
    rejectedSessions: 0,
    timeoutSessions: 0,
    silentTimeoutSessions: 0,
    offerTimeoutSessions: 0,
    finalTimeoutSessions: 0,
    regularTerminatedSessions: 0,
    /** Calls ended by an operator (CLI terminate). */
    forcedTerminatedSessions: 0,
    totalCallDurationMs: 0,
    endedCalls: 0,
  };

  constructor(
    private readonly config: RelayConfig,
    private readonly dataPlane: DataPlane,
    private readonly logger: Logger,
    private readonly events: CallManagerEvents = {},
    private readonly now: () => number = Date.now,
  ) {
    this.interfaces = new InterfaceTable(config.interfaces);
    this.webrtc = new WebrtcMedia(dataPlane, config.dtlsPassive === true);
    this.sockets = new StreamSockets(dataPlane, config.portMin, config.portMax, logger, (id) =>
      this.streamCalls.delete(id),
    );
  }

  // ---------------------------------------------------------------------------------------------- offer

  offer(req: SignalRequest): Buffer {
    const sdp = this.parseSdpOf(req);
    const existing = this.calls.get(req.callId);
    // loop-protect: an SDP that already went through this call comes back untouched.
    if (existing && this.loopedBack(sdp, existing)) return req.sdp;

    const call = existing ?? this.newCall(req.callId);
    const restore = existing ? this.snapshot(existing) : null;
    const generation = this.signalGeneration;
    const undo: Array<() => void> = [];
    let changed = false;
    try {
      const self = this.findByTag(call, req.fromTag) ?? this.newMonologue(call, req.fromTag, null);
      const peer = this.offerPeer(call, self, req.viaBranch);
      const [selfIface, peerIface] = this.offerInterfaces(req, sdp, self, peer);
      const plan = this.reserveOfferMedia(req, sdp, self, peer, selfIface, peerIface, undo);

      // Change the call; from here on a failure is undone by rollBack().
      changed = true;
      if (!existing) {
        this.calls.set(call.callId, call);
        this.totals.managedSessions++;
      }
      if (!call.monologues.includes(self)) call.monologues.push(self);
      if (!call.monologues.includes(peer)) call.monologues.push(peer);
      self.peerKey = peer.key;
      peer.peerKey = self.key;
      self.options = this.partyOptions(req);
      if (req.label !== null) self.label = req.label;
      if (req.metadata !== null) call.metadata = req.metadata;
      if (req.recordCall !== null) call.recordCall = req.recordCall;
      if (req.flags.has('record-call')) call.recordCall = true;
      call.lastSignalMs = this.now();
      call.deleteAtMs = null;
      call.deleteRequestedMs = null;
      plan.commit();
      this.webrtc.offer(req, sdp, self, peer);
      const iceReplaced = this.syncIceSockets([self, peer], undo);
      this.signalGeneration++;
      this.installRules(call, self, peer);

      const rewrite = this.buildRewrite(req, sdp, self, peer, peerIface, call, 'offer');
      const out = this.writeSdp(req, sdp, self, rewrite);
      plan.closeReplaced();
      for (const s of iceReplaced) this.sockets.close(s);
      if (infoEnabled(this.logger))
        this.logger.info(
          {
            'call-id': call.callId,
            'from-tag': req.fromTag,
            'via-branch': req.viaBranch,
            medias: self.medias.length,
            // The offerer sends to its ports, the callee to the ports written into this offer's SDP.
            ports: { offerer: localPorts(self), answerer: localPorts(peer) },
          },
          'offer processed',
        );
      return out;
    } catch (err) {
      // offerPeer may have changed a branch even before `changed`; restoring is cheap.
      if (restore) restore();
      if (changed) this.forgetIfNew(call, restore === null, err);
      for (const u of undo.reverse()) u();
      this.signalGeneration = generation;
      if (changed && restore) this.reinstallRules(call);
      if (!existing) this.totals.rejectedSessions += err instanceof NgError && err.reason === 'Ran out of ports' ? 1 : 0;
      throw err;
    }
  }

  // --------------------------------------------------------------------------------------------- answer

  answer(req: SignalRequest): Buffer {
    const call = this.calls.get(req.callId);
    if (!call) throw new NgError('Unknown call-id');
    const restore = this.snapshot(call);
    const generation = this.signalGeneration;
    try {
      return this.answerCall(req, call, restore, generation);
    } catch (err) {
      // answerPeer may have moved a tag before the failure; restoring twice does no harm.
      restore();
      throw err;
    }
  }

  private answerCall(req: SignalRequest, call: CallState, restore: () => void, generation: number): Buffer {
    if (req.toTag === null) throw new NgError('No to-tag in message');
    const sdp = this.parseSdpOf(req);
    if (this.loopedBack(sdp, call)) return req.sdp;

    const offerer = this.findByTag(call, req.fromTag);
    if (!offerer) throw new NgError('Invalid dialogue association');
    const answerer = this.answerPeer(call, offerer, req.toTag, req.viaBranch);
    if (sdp.media.length !== answerer.medias.length) {
      const error = sdpParseError(null, `the answer has ${sdp.media.length} m= lines, the offer had ${answerer.medias.length}`);
      this.logger.warn({ 'call-id': req.callId, 'from-tag': req.fromTag, 'to-tag': req.toTag, detail: sdpParseDetail(error) }, 'SDP not accepted');
      throw error;
    }
    const undo: Array<() => void> = [];
    let changed = false;
    try {
      const offererIface = this.interfaces.pick(offerer.medias.find((m) => !m.rejected)?.rtp.interfaceName, null);
      const plan = this.reserveAnswerMedia(req, sdp, offerer, answerer, undo);

      // Change the call; from here on a failure is undone by rollBack().
      changed = true;
      answerer.tag = req.toTag;
      answerer.isAnswerer = true;
      answerer.options = this.partyOptions(req);
      if (req.label !== null) answerer.label = req.label;
      offerer.peerKey = answerer.key;
      answerer.peerKey = offerer.key;
      call.answeredMs ??= this.now();
      call.lastSignalMs = this.now();
      if (req.metadata !== null) call.metadata = req.metadata;
      if (req.recordCall !== null) call.recordCall = req.recordCall;
      if (req.flags.has('record-call')) call.recordCall = true;
      plan.commit();
      this.webrtc.answer(req, sdp, offerer, answerer);
      const iceReplaced = this.syncIceSockets([offerer, answerer], undo);
      this.signalGeneration++;
      this.installRules(call, offerer, answerer);

      const rewrite = this.buildRewrite(req, sdp, answerer, offerer, offererIface, call, 'answer');
      const out = this.writeSdp(req, sdp, answerer, rewrite);
      plan.closeReplaced();
      for (const s of iceReplaced) this.sockets.close(s);
      if (infoEnabled(this.logger))
        this.logger.info(
          {
            'call-id': call.callId,
            'from-tag': req.fromTag,
            'to-tag': req.toTag,
            'via-branch': req.viaBranch,
            ports: { offerer: localPorts(offerer), answerer: localPorts(answerer) },
          },
          'answer processed',
        );
      return out;
    } catch (err) {
      restore();
      for (const u of undo.reverse()) u();
      if (changed) {
        this.signalGeneration = generation;
        this.logger.warn({ 'call-id': call.callId, err }, 'answer failed after changing the call; call restored');
        this.reinstallRules(call);
      }
      throw err;
    }
  }

  /** parseSignalSdp, and the line at fault in the log (the ng reply keeps rtpengine's "Failed to parse SDP"). */
  private parseSdpOf(req: SignalRequest): ParsedSdp {
    try {
      return parseSignalSdp(req.sdp);
    } catch (err) {
      const detail = sdpParseDetail(err);
      if (detail !== null) this.logger.warn({ 'call-id': req.callId, 'from-tag': req.fromTag, detail }, 'SDP not accepted');
      throw err;
    }
  }

  /**
   * A copy of everything offer/answer may change in a call (its fields, its monologues' fields and media
   * lists), and the function that puts it back. Media and stream objects are never changed in place by a
   * command (it builds new ones), so copying the lists is enough.
   */
  private snapshot(call: CallState): () => void {
    const fields: CallState = { ...call, monologues: [...call.monologues] };
    const monologues = call.monologues.map((m) => [m, { ...m, medias: [...m.medias], formerTags: [...m.formerTags] }] as const);
    return () => {
      Object.assign(call, fields);
      for (const [mono, copy] of monologues) Object.assign(mono, copy, { medias: [...copy.medias], formerTags: [...copy.formerTags] });
    };
  }

  /** A failed offer that was creating the call leaves no call behind. */
  private forgetIfNew(call: CallState, isNew: boolean, err: unknown): void {
    this.logger.warn({ 'call-id': call.callId, err }, 'offer failed after changing the call; call restored');
    if (isNew && this.calls.get(call.callId) === call) {
      this.calls.delete(call.callId);
      this.totals.managedSessions--;
    }
  }

  /** After a rollback: the data plane gets the rules of the restored call back. */
  private reinstallRules(call: CallState): void {
    try {
      for (const mono of call.monologues) {
        const peer = this.byKey(call, mono.peerKey);
        if (peer) this.installRules(call, mono, peer);
      }
    } catch (err) {
      this.logger.error({ 'call-id': call.callId, err }, 'could not restore the data plane rules of a call');
    }
  }

  /** The extra ICE sockets of the parties' media (src/call/ice-sockets.ts); returns the ones to close on success. */
  private syncIceSockets(monologues: MonologueState[], undo: Array<() => void>): StreamState[] {
    const toClose: StreamState[] = [];
    for (const mono of monologues) syncIceSockets(mono, this.interfaces, this.sockets, undo, toClose);
    return toClose;
  }

  /**
   * An engine event on stream `id` that matters to a media with several sockets (one per address, see
   * src/call/ice-sockets.ts): `ice-selected` (media to that party leaves from this socket from now on) or a
   * completed DTLS handshake (its keys are the media's). Returns the call when that changed its state.
   */
  socketEvent(id: number, event: 'ice-selected' | 'dtls-done'): CallState | null {
    const call = this.calls.get(this.streamCalls.get(id) ?? '');
    if (!call) return null;
    const field = event === 'ice-selected' ? 'iceSelected' : 'iceDtls';
    for (const mono of call.monologues) {
      const i = mono.medias.findIndex((m) => withSocketEvent(m, id, field) !== null);
      const next = i < 0 ? null : withSocketEvent(mono.medias[i] as MediaState, id, field);
      if (!next) continue;
      mono.medias = mono.medias.map((m, j) => (j === i ? next : m));
      this.reinstallRules(call);
      return call;
    }
    return null;
  }

  // --------------------------------------------------------------------------------------------- delete

  /** Returns the call (for the statistics reply) or null when nothing matched (reply carries a warning). */
  delete(req: DeleteRequest): { call: CallState; branchOnly: boolean } | null {
    const call = this.calls.get(req.callId);
    if (!call) return null;
    if (req.fromTag !== null && !this.findByTag(call, req.fromTag) && !this.findByTag(call, req.toTag ?? '\0')) {
      return null;
    }
    call.lastSignalMs = this.now();
    // A fork that is cancelled: only that branch goes, the rest of the call stays.
    if (req.viaBranch !== null && req.toTag === null) {
      const branch = call.monologues.find((m) => m.tag === '' && m.viaBranch === req.viaBranch);
      const others = call.monologues.filter((m) => m !== branch && m.tag === '' ).length;
      if (branch && (others > 0 || call.monologues.some((m) => m.isAnswerer))) {
        this.dropMonologue(call, branch);
        return { call, branchOnly: true };
      }
    }
    const delay = req.deleteDelay ?? this.config.deleteDelay;
    if (delay <= 0) this.destroy(call, 'delete');
    else {
      call.deleteAtMs = this.now() + delay * 1000;
      // The call ends now for its duration; delete-delay only keeps it around for queries.
      call.deleteRequestedMs = this.now();
    }
    return { call, branchOnly: false };
  }

  /** Tear a call down now: remove every stream and return every port. */
  destroy(call: CallState, reason: CallEndReason): void {
    if (this.calls.get(call.callId) !== call) return;
    const durationMs = (call.deleteRequestedMs ?? this.now()) - call.createdMs;
    // The end lines' counters are read before the streams go (their counters go with them).
    if (infoEnabled(this.logger)) logCallEnd(this.logger, call, reason, durationMs, this.dataPlane.readCounters(this.streamIds(call)));
    for (const mono of call.monologues) this.closeMonologueStreams(mono);
    this.calls.delete(call.callId);
    call.endReason = reason;
    const t = this.totals;
    t.endedCalls++;
    t.totalCallDurationMs += durationMs;
    if (reason === 'delete') t.regularTerminatedSessions++;
    else if (reason === 'timeout') t.timeoutSessions++;
    else if (reason === 'silent-timeout') t.silentTimeoutSessions++;
    else if (reason === 'offer-timeout') t.offerTimeoutSessions++;
    else if (reason === 'final-timeout') t.finalTimeoutSessions++;
    else if (reason === 'terminate') t.forcedTerminatedSessions++;
    this.events.callEnded?.(call, reason);
  }

  /** Ends every call; the relay passes the default when it stops. */
  destroyAll(reason: CallEndReason = 'shutdown'): void {
    for (const call of [...this.calls.values()]) this.destroy(call, reason);
  }

  /** All data plane stream ids of a call (for counters). */
  streamIds(call: CallState): number[] {
    const ids: number[] = [];
    for (const mono of call.monologues) for (const m of mono.medias) for (const s of streamsOf(m)) if (s.id) ids.push(s.id);
    return ids;
  }

  // ------------------------------------------------------------------------------------------ internals

  private newCall(callId: string): CallState {
    const now = this.now();
    return {
      callId,
      createdMs: now,
      lastSignalMs: now,
      answeredMs: null,
      monologues: [],
      deleteAtMs: null,
      loopToken: randomHex(6),
      recordCall: false,
      metadata: null,
      recording: null,
      nextMonologueKey: 1,
      endReason: null,
    };
  }

  private newMonologue(call: CallState, tag: string, viaBranch: string | null): MonologueState {
    return {
      tag,
      formerTags: [],
      viaBranch,
      label: null,
      createdMs: this.now(),
      peerKey: null,
      key: `m${call.nextMonologueKey++}`,
      medias: [],
      options: { learning: this.config.endpointLearning, strictSource: false, mediaHandover: false, asymmetric: false },
      isAnswerer: false,
      // Present from the start so that a rolled-back command's snapshot puts them back too.
      iceCredentials: null,
      iceLite: false,
      sdpOut: null,
    };
  }

  findByTag(call: CallState, tag: string): MonologueState | undefined {
    return (
      call.monologues.find((m) => m.tag === tag && tag !== '') ?? call.monologues.find((m) => m.formerTags.includes(tag))
    );
  }

  private byKey(call: CallState, key: string | null): MonologueState | undefined {
    return key === null ? undefined : call.monologues.find((m) => m.key === key);
  }

  /** The party an offer goes to: the current peer, or for a new fork (via-branch) a new untagged branch. */
  private offerPeer(call: CallState, self: MonologueState, viaBranch: string | null): MonologueState {
    const current = this.byKey(call, self.peerKey);
    // The established peer (tagged), or the same branch again (re-offer).
    if (current && (viaBranch === null || current.viaBranch === viaBranch || current.tag !== '')) return current;
    if (viaBranch !== null) {
      const branch = call.monologues.find((m) => m.peerKey === self.key && m.tag === '' && m.viaBranch === viaBranch);
      if (branch) return branch;
      if (current && current.tag === '' && current.viaBranch === null) {
        current.viaBranch = viaBranch;
        return current;
      }
    }
    return this.newMonologue(call, '', viaBranch);
  }

  /** The party an answer comes from: tagged already, or the (matching) untagged branch gets its tag now. */
  private answerPeer(call: CallState, offerer: MonologueState, toTag: string, viaBranch: string | null): MonologueState {
    const tagged = call.monologues.find((m) => m.tag === toTag && m !== offerer);
    if (tagged && tagged.peerKey === offerer.key) return tagged;
    const branches = call.monologues.filter((m) => m.peerKey === offerer.key && m.tag === '');
    const branch =
      (viaBranch !== null ? branches.find((m) => m.viaBranch === viaBranch) : undefined) ??
      branches.find((m) => m.viaBranch === null) ??
      branches[0];
    if (branch) return branch;
    // Another fork answers without a via-branch: it sends to the same ports the first one was given, so the
    // current peer takes the new tag (the latest answer wins, as the offerer hears only one of them).
    const current = this.byKey(call, offerer.peerKey);
    if (current && current.tag !== toTag) {
      if (current.tag !== '') current.formerTags.push(current.tag);
      return current;
    }
    if (current) return current;
    throw new NgError('Invalid dialogue association');
  }

  private offerInterfaces(
    req: SignalRequest,
    sdp: ParsedSdp,
    self: MonologueState,
    peer: MonologueState,
  ): [InterfaceConfig, InterfaceConfig] {
    const sdpFamily = sdp.media.find((m) => m.effectiveConnection)?.effectiveConnection?.addrType ?? sdp.connection?.addrType ?? null;
    const selfName = req.direction[0] ?? self.medias.find((m) => !m.rejected)?.rtp.interfaceName ?? null;
    const peerName = req.direction[1] ?? peer.medias.find((m) => !m.rejected)?.rtp.interfaceName ?? null;
    const selfIface = this.interfaces.pick(selfName, sdpFamily);
    const peerIface = this.interfaces.pick(peerName, req.addressFamily ?? sdpFamily);
    return [selfIface, peerIface];
  }

  private partyOptions(req: SignalRequest): PartyOptions {
    const f = req.flags;
    return {
      learning: req.endpointLearning ?? this.config.endpointLearning,
      strictSource: f.has('strict-source'),
      mediaHandover: f.has('media-handover'),
      asymmetric: f.has('asymmetric'),
      ...(f.has('recrypt') ? { recrypt: true } : {}),
    };
  }

  /** Where this party's media is expected, per the trust-address / SIP-source-address / media-address rules. */
  private expectedAddress(req: SignalRequest, media: SdpMedia): { addrType: AddrType; address: string } | null {
    const conn = media.effectiveConnection;
    if (!conn || isZeroAddress(conn.address) || media.port === 0) return null;
    // media-address and received-from are client text: one that is no IP address is ignored (the SDP's
    // address stands), as it cannot name an endpoint.
    const mediaFamily = req.mediaAddress ? isIP(req.mediaAddress) : 0;
    if (req.mediaAddress && mediaFamily !== 0) return { addrType: mediaFamily === 6 ? 'IP6' : 'IP4', address: req.mediaAddress };
    const sourceFamily = req.receivedFrom ? isIP(req.receivedFrom.address) : 0;
    if (req.flags.has('SIP-source-address') && !req.flags.has('trust-address') && req.receivedFrom && sourceFamily !== 0) {
      return { addrType: sourceFamily === 6 ? 'IP6' : 'IP4', address: req.receivedFrom.address };
    }
    return conn;
  }

  /** Fill a party's media from its SDP: endpoints, direction, codec; mux as the SDP says. */
  private applySdpMedia(req: SignalRequest, media: MediaState, sdpMedia: SdpMedia): void {
    media.type = sdpMedia.type;
    media.protocol = sdpMedia.proto;
    // RFC 2543 hold: a zero connection address means the party only sends (rtpengine says so in its SDP).
    // With ICE the c= is only a placeholder (browsers write 0.0.0.0 port 9; RFC 8839 §4.2.3): no hold.
    const held = !!sdpMedia.effectiveConnection && isZeroAddress(sdpMedia.effectiveConnection.address) && sdpMedia.ice === null;
    media.direction = held ? holdDirection(sdpMedia.direction) : sdpMedia.direction;
    media.codec = firstCodec(sdpMedia) ?? media.codec;
    media.dtmfPayloadType = telephoneEventPayloadType(sdpMedia) ?? media.dtmfPayloadType ?? null;
    media.offeredRtcpMux = sdpMedia.rtcpMux;
    const addr = this.expectedAddress(req, sdpMedia);
    const advertisedConn = sdpMedia.effectiveConnection;
    // RTP on 65535 leaves no port for RTCP after it (rtpengine accepts such an offer too): then RTCP has no
    // known endpoint and is learned from where it comes from.
    const impliedRtcpPort = sdpMedia.port + 1 <= MAX_PORT ? sdpMedia.port + 1 : null;
    const rtcpPort = sdpMedia.rtcp?.port ?? impliedRtcpPort;
    // The advertised endpoint is the SDP's after address translation (SIP source, media-address), as rtpengine shows it.
    const shown = addr ?? advertisedConn;
    media.rtp.advertised = shown && sdpMedia.port ? endpoint(shown.addrType, shown.address, sdpMedia.port) : null;
    media.rtcp.advertised = shown && sdpMedia.port && rtcpPort ? endpoint(shown.addrType, shown.address, rtcpPort) : null;
    media.rtp.expected = addr ? endpoint(addr.addrType, addr.address, sdpMedia.port) : null;
    const rtcpAddr = sdpMedia.rtcp?.connection && !req.flags.has('SIP-source-address') ? sdpMedia.rtcp.connection : addr;
    media.rtcp.expected = rtcpAddr && rtcpPort ? endpoint(rtcpAddr.addrType, rtcpAddr.address, rtcpPort) : null;
  }

  private emptyMedia(index: number, sdpMedia: SdpMedia, pair: { rtp: StreamState; rtcp: StreamState } | null): MediaState {
    const none = (component: 'rtp' | 'rtcp'): StreamState => ({
      id: 0,
      component,
      interfaceName: '',
      localAddress: '',
      localPort: 0,
      advertisedAddress: '',
      muxedWith: null,
      advertised: null,
      expected: null,
      ownsPort: false,
    });
    return {
      index,
      type: sdpMedia.type,
      protocol: sdpMedia.proto,
      codec: null,
      direction: 'sendrecv',
      rtcpMux: false,
      offeredRtcpMux: false,
      rtcpMuxAccept: false,
      rtcpMuxReject: false,
      rejected: pair === null,
      rtp: pair?.rtp ?? none('rtp'),
      rtcp: pair?.rtcp ?? none('rtcp'),
      // Every optional field from the start (undefined = absent), and cleared by assigning undefined, never
      // `delete`: then every media has one hidden class, which the per-command code reads monomorphically.
      // Adding fields later, or deleting them, gave media objects a dozen shapes (megamorphic loads).
      dtmfPayloadType: null,
      crypto: undefined,
      webrtc: undefined,
      icePassThrough: undefined,
      mid: undefined,
      bundle: undefined,
      iceSockets: undefined,
      iceSelected: undefined,
      iceDtls: undefined,
    };
  }

  /**
   * Reserve sockets for every media of an offer on both sides and return a commit step that swaps them in.
   * Media keep their ports on a re-offer unless the media changed (type, rejected, interface).
   */
  private reserveOfferMedia(
    req: SignalRequest,
    sdp: ParsedSdp,
    self: MonologueState,
    peer: MonologueState,
    selfIface: InterfaceConfig,
    peerIface: InterfaceConfig,
    undo: Array<() => void>,
  ): { commit(): void; closeReplaced(): void } {
    const newSelf: MediaState[] = [];
    const newPeer: MediaState[] = [];
    const toClose: StreamState[] = [];
    const requireMux = req.rtcpMux.has('require');
    const bundlePolicy = req.bundle ?? new Set<string>();
    const bundled = bundledMedia(sdp, bundlePolicy);
    const offered = offeredBundle(sdp, bundlePolicy);
    // A BUNDLE member's streams go on its transport's I/O thread (the transport's m= line comes first).
    const threadOf = (group: Map<number, MediaBundleState> | null, i: number, medias: MediaState[]): number | undefined => {
      const t = group?.get(i)?.transportIndex;
      return t === undefined || t === i ? undefined : medias[t]?.rtp.id || undefined;
    };
    for (const sdpMedia of sdp.media) {
      const i = sdpMedia.index;
      // A bundle-only m= line (port 0 in a BUNDLE group) is not rejected: it uses its group's transport.
      const rejected = sdpMedia.port === 0 && !bundled.has(i);
      const oldSelf = self.medias[i];
      const oldPeer = peer.medias[i];
      const reuse = (old: MediaState | undefined, iface: InterfaceConfig): boolean =>
        !!old && !old.rejected && !rejected && old.type === sdpMedia.type && old.rtp.localAddress === iface.address;
      // A media that newly joins another m= line's transport gets new sockets on that transport's thread (its own
      // port is never written into an SDP while bundled, so nobody misses the old one).
      const joins = (old: MediaState | undefined, group: Map<number, MediaBundleState> | null): boolean => {
        const t = group?.get(i)?.transportIndex;
        return t !== undefined && t !== i && old?.bundle?.transportIndex !== t;
      };
      const take = (old: MediaState | undefined, iface: InterfaceConfig, muxed: boolean, group: Map<number, MediaBundleState> | null, party: MediaState[]): MediaState => {
        if (old && reuse(old, iface) && !joins(old, group)) return { ...old, rtp: { ...old.rtp }, rtcp: { ...old.rtcp } };
        const threadOfStream = threadOf(group, i, party);
        if (old) toClose.push(...streamsOf(old));
        if (rejected) return this.emptyMedia(i + 1, sdpMedia, null);
        const pair = this.sockets.openPair(iface, muxed, threadOfStream);
        undo.push(() => {
          this.sockets.close(pair.rtcp);
          this.sockets.close(pair.rtp);
        });
        return this.emptyMedia(i + 1, sdpMedia, pair);
      };
      const selfMedia = take(oldSelf, selfIface, false, bundled, newSelf);
      const peerMedia = take(oldPeer, peerIface, requireMux, offered, newPeer);
      this.applySdpMedia(req, selfMedia, sdpMedia);
      const bundle = bundled.get(i);
      if (bundle) selfMedia.bundle = bundle;
      else selfMedia.bundle = undefined;
      // The receiver's bundle: what `bundle` offer/require asks for now, else what it accepted before.
      const toReceiver = offered?.get(i);
      if (toReceiver && !rejected) peerMedia.bundle = toReceiver;
      else if (offered !== null || rejected) peerMedia.bundle = undefined;
      peerMedia.type = sdpMedia.type;
      peerMedia.protocol = req.transportProtocol ?? this.stickyProtocol(sdpMedia.proto, peerMedia);
      selfMedia.rejected = rejected;
      peerMedia.rejected = rejected;
      if (!rejected) this.offerCrypto(req, sdpMedia, selfMedia, peerMedia);
      // What we offer onwards about rtcp-mux, and what the offerer gets (settled by the answer).
      const offerMux =
        requireMux || req.rtcpMux.has('offer') || (sdpMedia.rtcpMux && !req.rtcpMux.has('demux') && !req.rtcpMux.has('reject'));
      peerMedia.offeredRtcpMux = offerMux;
      selfMedia.rtcpMuxAccept = req.rtcpMux.has('accept') || req.rtcpMux.has('demux');
      selfMedia.rtcpMuxReject = req.rtcpMux.has('reject');
      if (selfMedia.rtcp.muxedWith !== null) selfMedia.rtcp.expected = selfMedia.rtp.expected;
      newSelf.push(selfMedia);
      newPeer.push(peerMedia);
    }
    // Media beyond the new SDP's count (an m= line removed) go away.
    for (const old of self.medias.slice(sdp.media.length)) toClose.push(...streamsOf(old));
    for (const old of peer.medias.slice(sdp.media.length)) toClose.push(...streamsOf(old));
    return {
      commit: () => {
        self.medias = newSelf;
        peer.medias = newPeer;
      },
      closeReplaced: () => {
        for (const s of toClose) this.sockets.close(s);
      },
    };
  }

  /**
   * SDES on an offer (see src/call/srtp-negotiation.ts): remember the offerer's usable keys and choose the
   * a=crypto lines for the receiver. Media without any SRTP involvement keep no crypto state at all, so plain
   * RTP calls are exactly as before.
   */
  private offerCrypto(req: SignalRequest, sdpMedia: SdpMedia, selfMedia: MediaState, peerMedia: MediaState): void {
    const sdes = req.sdes ?? [];
    const involved =
      isSrtpProtocol(sdpMedia.proto) || isSrtpProtocol(peerMedia.protocol) || !!selfMedia.crypto || !!peerMedia.crypto;
    if (!involved) return;
    const lines = usableCryptoLines(sdpMedia, sdes);
    const old = selfMedia.crypto ?? emptyMediaCrypto();
    // A re-offer that changes the key under the negotiated tag takes effect at once (the party already sends with it).
    const theirs = old.theirs ? (lines.find((l) => l.tag === old.theirs?.tag && l.suite === old.theirs.suite) ?? old.theirs) : null;
    selfMedia.crypto = { ...old, offered: lines, theirs };
    const peerOld = peerMedia.crypto ?? emptyMediaCrypto();
    peerMedia.crypto = { ...peerOld, given: offerLines(peerMedia.protocol, lines, sdes, peerOld.given) };
  }

  /**
   * A re-offer without `transport-protocol` keeps the receiver on the side of the SRTP/RTP bridge it was
   * negotiated on (a plain callee's re-INVITE must not turn the SRTP caller's leg plain, nor the reverse).
   * Media that never involved SRTP keep the SDP's protocol unchanged.
   */
  private stickyProtocol(proto: string, peerMedia: MediaState): string {
    if (!peerMedia.crypto) return proto;
    if (!isSrtpProtocol(peerMedia.protocol)) return plainProtocol(proto);
    return proto === 'RTP/AVP' ? 'RTP/SAVP' : proto === 'RTP/AVPF' ? 'RTP/SAVPF' : proto;
  }

  /** SDES on an answer: both sides' negotiated keys; an offerer left without usable keys is answered plain. */
  private answerCrypto(req: SignalRequest, sdpMedia: SdpMedia, na: MediaState, nb: MediaState): void {
    if (!na.crypto && !nb.crypto && !isSrtpProtocol(sdpMedia.proto)) return;
    const sdes = req.sdes ?? [];
    const answerLines = isSrtpProtocol(sdpMedia.proto) ? usableCryptoLines(sdpMedia, sdes) : [];
    const settled = settleAnswer(na.crypto ?? emptyMediaCrypto(), nb.crypto ?? emptyMediaCrypto(), answerLines, sdes);
    na.crypto = settled.offerer;
    nb.crypto = settled.answerer;
    // An offerer answered with DTLS-SRTP keeps its SRTP protocol (WebrtcMedia.answer settles its keys).
    if (!na.crypto.theirs && isSrtpProtocol(na.protocol) && !this.webrtc.answersDtls(req, na)) na.protocol = plainProtocol(na.protocol);
  }

  /** Settle rtcp-mux for both sides of an answer; sockets are reserved now, swapped in by the returned step. */
  private reserveAnswerMedia(
    req: SignalRequest,
    sdp: ParsedSdp,
    offerer: MonologueState,
    answerer: MonologueState,
    undo: Array<() => void>,
  ): { commit(): void; closeReplaced(): void } {
    const steps: Array<() => void> = [];
    const toClose: StreamState[] = [];
    for (const sdpMedia of sdp.media) {
      const i = sdpMedia.index;
      const a = offerer.medias[i] as MediaState;
      const b = answerer.medias[i] as MediaState;
      // A bundle-only answer to a bundle the relay offered (port 0 in the group) is not a rejection.
      const keepsBundle = b.bundle !== undefined && answerKeepsBundle(sdp, sdpMedia.mid);
      if ((sdpMedia.port === 0 && !keepsBundle) || a.rejected || b.rejected) {
        toClose.push(...streamsOf(a), ...streamsOf(b));
        steps.push(() => {
          offerer.medias[i] = { ...this.emptyMedia(i + 1, sdpMedia, null), type: a.type, protocol: a.protocol, direction: a.direction };
          answerer.medias[i] = { ...this.emptyMedia(i + 1, sdpMedia, null), protocol: sdpMedia.proto };
        });
        continue;
      }
      const nb: MediaState = { ...b, rtp: { ...b.rtp }, rtcp: { ...b.rtcp } };
      this.applySdpMedia(req, nb, sdpMedia);
      if (!keepsBundle) nb.bundle = undefined;  // the answerer declined the bundle the relay offered
      nb.rtcpMux = b.offeredRtcpMux && sdpMedia.rtcpMux;
      const aMux = a.offeredRtcpMux && !a.rtcpMuxReject && (a.rtcpMuxAccept || nb.rtcpMux || req.rtcpMux.has('accept'));
      const na: MediaState = { ...a, rtp: { ...a.rtp }, rtcp: { ...a.rtcp }, rtcpMux: aMux };
      this.answerCrypto(req, sdpMedia, na, nb);
      const replaced: StreamState[] = [];
      const swapRtcp = (m: MediaState, muxed: boolean): void => {
        const isMuxed = m.rtcp.muxedWith !== null;
        if (isMuxed === muxed) return;
        const iface = this.interfaces.find(m.rtp.interfaceName, m.rtp.localAddress);
        if (!iface) throw new NgError('Unknown interface');
        const old = m.rtcp;
        const next = this.sockets.reopenRtcp(iface, m.rtp, muxed);
        undo.push(() => this.sockets.close(next));
        next.advertised = old.advertised;
        next.expected = muxed ? m.rtp.expected : old.expected;
        m.rtcp = next;
        replaced.push(old);
      };
      swapRtcp(na, aMux);
      swapRtcp(nb, nb.rtcpMux);
      if (nb.rtcpMux) nb.rtcp.expected = nb.rtp.expected;
      if (aMux) na.rtcp.expected = na.rtp.expected;
      toClose.push(...replaced);
      steps.push(() => {
        offerer.medias[i] = na;
        answerer.medias[i] = nb;
      });
    }
    return {
      commit: () => {
        for (const s of steps) s();
      },
      closeReplaced: () => {
        for (const s of toClose) this.sockets.close(s);
      },
    };
  }

  /**
   * `block media` / `silence media` and their undo: sets the state on `targets` (the parties whose sent
   * media is affected) and refreshes the rules of every pair in the call. Nothing else about the call changes.
   */
  setMediaControl(
    call: CallState,
    targets: readonly MonologueState[],
    control: 'blocked' | 'silenced' | 'dtmf-blocked',
    on: boolean,
    dtmfReplace: number | 'random' | null = null,
  ): void {
    for (const mono of targets) {
      if (control === 'blocked') mono.mediaBlocked = on;
      else if (control === 'silenced') mono.mediaSilenced = on;
      else {
        mono.dtmfBlocked = on;
        mono.dtmfReplace = on ? dtmfReplace : null;
      }
    }
    for (const mono of call.monologues) {
      const peer = this.byKey(call, mono.peerKey);
      // Each pair once: from the side whose key sorts first (a one-sided peer link is refreshed from its side).
      if (peer && (peer.peerKey !== mono.key || mono.key < peer.key)) this.installRules(call, mono, peer);
    }
  }

  /**
   * Take back a call read from the state dir (src/state/): every stream bound again on its id and port, then
   * the rules of each peered pair installed, `adjust` editing each rule (learned endpoint, SRTP resume).
   * Throws (RestoreBindError) with nothing left bound when a stream cannot get its socket back.
   */
  restore(call: CallState, adjust: (stream: StreamState, rule: StreamRule) => StreamRule): void {
    if (this.calls.has(call.callId)) throw new NgError('call already exists');
    const streams = call.monologues.flatMap((m) => m.medias.flatMap(streamsOf));
    // As when they were opened: a BUNDLE member's streams on its transport's I/O thread.
    const threadOf = new Map<StreamState, number>();
    for (const m of call.monologues) {
      for (const media of m.medias) {
        const transport = transportMediaOf(m, media);
        if (transport !== media) for (const s of [media.rtp, media.rtcp]) threadOf.set(s, transport.rtp.id);
      }
    }
    const bound: StreamState[] = [];
    try {
      // Muxed RTCP streams join their RTP stream's socket, so those go second.
      for (const s of [...streams.filter((x) => x.muxedWith === null), ...streams.filter((x) => x.muxedWith !== null)]) {
        this.sockets.rebind(s, threadOf.get(s));
        if (s.id) bound.push(s);
      }
    } catch (err) {
      for (const s of bound.reverse()) this.sockets.close(s);
      throw err;
    }
    this.calls.set(call.callId, call);
    // Branches first (their peer moved on to another branch), then the mutual pairs: those rules win.
    const pairs = call.monologues.flatMap((m) => {
      const peer = this.byKey(call, m.peerKey);
      return peer ? [{ m, peer, mutual: peer.peerKey === m.key }] : [];
    });
    for (const p of pairs.filter((x) => !x.mutual)) this.installRules(call, p.m, p.peer, adjust);
    for (const p of pairs.filter((x) => x.mutual && x.m.key < x.peer.key)) this.installRules(call, p.m, p.peer, adjust);
  }

  /** Install or refresh the data plane rules of both parties' streams. */
  private installRules(
    call: CallState,
    a: MonologueState,
    b: MonologueState,
    adjust: (stream: StreamState, rule: StreamRule) => StreamRule = (_s, r) => r,
  ): void {
    const count = Math.max(a.medias.length, b.medias.length);
    for (let i = 0; i < count; i++) {
      const ma = a.medias[i];
      const mb = b.medias[i];
      if (!ma || !mb) continue;
      for (const component of ['rtp', 'rtcp'] as const) {
        const sa = ma[component];
        const sb = mb[component];
        // Towards a bundled m= line, packets leave from its group's transport (socket, ICE pair, DTLS keys).
        // ... and from the socket whose pair the party's ICE nominated (src/call/ice-sockets.ts).
        const toB = sendingSocketOf(b, mb, component);
        const toA = sendingSocketOf(a, ma, component);
        if (sa.id) this.dataPlane.updateStream(sa.id, adjust(sa, nominating(ma, sa, component, this.rule(a, sa, sb.id ? toB : null, ma, transportMediaOf(b, mb), mb))));
        if (sb.id) this.dataPlane.updateStream(sb.id, adjust(sb, nominating(mb, sb, component, this.rule(b, sb, sa.id ? toA : null, mb, transportMediaOf(a, ma), ma))));
        if (sa.id) this.streamCalls.set(sa.id, call.callId);
        if (sb.id) this.streamCalls.set(sb.id, call.callId);
        // The other sockets of an ICE media: the same rule on each (a muxed RTCP stream shares its RTP socket's).
        const extras = (mono: MonologueState, own: MediaState, other: MediaState, sink: StreamState | null, sinkMedia: MediaState): void => {
          for (const pair of own.iceSockets ?? []) {
            const s = pair[component];
            this.dataPlane.updateStream(s.id, adjust(s, nominating(own, s, component, this.rule(mono, s, sink, own, sinkMedia, other))));
            this.streamCalls.set(s.id, call.callId);
          }
        };
        if (sa.id) extras(a, ma, mb, sb.id ? toB : null, transportMediaOf(b, mb));
        if (sb.id) extras(b, mb, ma, sa.id ? toA : null, transportMediaOf(a, ma));
      }
    }
  }

  /** The call a data plane stream belongs to (for engine events). */
  callIdOfStream(id: number): string | undefined {
    return this.streamCalls.get(id);
  }

  /**
   * The rule of `stream` (it faces `mono`'s party, whose media is `own`); `sink` is the stream that faces the
   * receiving party (`sinkMedia`). SRTP: `own`'s key (SDES) or its DTLS handshake decrypts what arrives here;
   * the receiving party's SDES key or DTLS handshake encrypts what is forwarded. ICE and DTLS run on the
   * streams that have a socket of their own (a muxed RTCP stream uses its RTP stream's). Media control comes
   * from `mono` (block/silence media, DTMF); the telephone-event payload type is the one in `own`'s SDP, else
   * the peer's (`peer`: what `mono`'s party was told to send).
   */
  private rule(mono: MonologueState, stream: StreamState, sink: StreamState | null, own: MediaState, sinkMedia: MediaState, peer: MediaState): StreamRule {
    const options = mono.options;
    // A bundled member other than its transport: the transport unprotects what arrives and runs ICE and DTLS.
    const away = isBundledAway(mono, own);
    const inbound: StreamCrypto['inbound'] = away
      ? null
      : own.webrtc?.dtls?.role
        ? { dtlsOf: handshakeSocketOf(own, stream) }
        : srtpKeys(own.crypto?.theirs);
    const outbound: StreamCrypto['outbound'] =
      sink === null ? null : sinkMedia.webrtc?.dtls?.role ? { dtlsOf: handshakeSocketOf(sinkMedia, sink) } : srtpKeys(sinkMedia.crypto?.ours);
    const ownSocket = stream.muxedWith === null && !away;
    const ice = own.webrtc?.ice;
    const dtls = own.webrtc?.dtls ? streamDtls(own.webrtc.dtls) : null;
    // One object literal with every field, absent ones null: every rule has the same shape (no spreads), which
    // is what V8 builds and reads fastest; two rules per stream and signal.
    return {
      expected: stream.expected,
      learning: options.asymmetric ? 'off' : options.learning,
      strictSource: options.strictSource,
      mediaHandover: options.mediaHandover,
      asymmetric: options.asymmetric,
      sink: sink?.id ?? null,
      signalGeneration: this.signalGeneration,
      crypto: inbound || outbound ? { inbound, outbound, recrypt: options.recrypt === true } : null,
      ice: ownSocket && ice && mono.iceCredentials ? streamIce(ice, mono.iceCredentials, stream.component === 'rtp' ? 1 : 2) : null,
      dtls: ownSocket ? dtls : null,
      forwardIceDtls: own.icePassThrough === true,
      bundle: stream.component === 'rtp' && stream.muxedWith === null ? streamBundle(mono, own) : null,
      clockRate: clockRateOf(own.codec ?? peer.codec),
      blockMedia: mono.mediaBlocked === true,
      silenceMedia: mono.mediaSilenced === true,
      dtmfPayloadType: own.dtmfPayloadType ?? peer.dtmfPayloadType ?? null,
      blockDtmf: mono.dtmfBlocked === true,
      dtmfReplace: mono.dtmfReplace ?? null,
    };
  }

  /**
   * The SDP that goes to `receiver`: the sender's SDP with the receiver-facing sockets put in.
   * `receiver` is the party that gets this SDP; its local sockets are what it must send to.
   */
  private buildRewrite(
    req: SignalRequest,
    sdp: ParsedSdp,
    sender: MonologueState,
    receiver: MonologueState,
    receiverIface: InterfaceConfig,
    call: CallState,
    kind: 'offer' | 'answer',
  ): SdpRewrite {
    const ifaceConn = (m: MediaState | undefined): ConnectionAddress => {
      const address = m && !m.rejected ? m.rtp.advertisedAddress : receiverIface.advertised;
      return { addrType: address.includes(':') ? 'IP6' : 'IP4', address };
    };
    const firstLive = receiver.medias.find((m) => !m.rejected);
    let withIce = false;
    let keptTransport = 0;
    const writtenMids: Array<string | null> = [];
    const media: MediaRewrite[] = sdp.media.map((sdpMedia) => {
      const mine = receiver.medias[sdpMedia.index];
      const senderMedia = sender.medias[sdpMedia.index];
      const conn = ifaceConn(mine);
      const zero = sdpMedia.effectiveConnection && isZeroAddress(sdpMedia.effectiveConnection.address) && sdpMedia.ice === null;
      const keepZero = zero && !req.replace.has('zero-address');
      const rejected = !mine || mine.rejected || (sdpMedia.port === 0 && !senderMedia?.bundle);
      // A bundled m= line is written with its group's transport: port, ICE and DTLS.
      const via = mine && !rejected ? transportMediaOf(receiver, mine) : mine;
      const muxed = kind === 'offer' ? !!mine?.offeredRtcpMux : !!mine?.rtcpMux;
      const requireMux = kind === 'offer' && req.rtcpMux.has('require');
      const proto =
        kind === 'offer'
          ? (req.transportProtocol ?? (mine && !rejected && mine.protocol !== sdpMedia.proto ? mine.protocol : null))
          : mine && mine.protocol !== sdpMedia.proto
            ? mine.protocol
            : null;
      const rtcpPort = rejected ? null : requireMux || (via as MediaState).rtcp.muxedWith !== null ? (via as MediaState).rtp.localPort : (via as MediaState).rtcp.localPort;
      // ICE=force-relay: the SDP's transport stays; the relay adds its a=rtcp (and a=rtcp-mux) only to an answer
      // with rtcp-mux (rtpengine 10.5).
      const keepTransport = !rejected && iceMode(req.ice) === 'force-relay';
      const ownRtcp = !keepTransport || (kind === 'answer' && muxed);
      if (keepTransport) keptTransport++;
      const ice = via && !rejected ? this.webrtc.iceLines(req, receiver, via, rtcpPort, sdpMedia.ice) : undefined;
      const dtls = via && !rejected ? this.webrtc.dtlsLines(via, kind) : undefined;
      if (ice) withIce = true;
      // a=mid: an answer carries the mid the offer had (none if it had none); an offer gets one with generate-mid.
      // A bundled offer needs a mid on every member (the a=group line names them), so it gets one as with generate-mid.
      const mid =
        kind === 'answer'
          ? mine?.mid
          : (req.flags.has('generate-mid') || mine?.bundle) && sdpMedia.mid === null && !rejected
            ? String(sdpMedia.index + 1)
            : undefined;
      writtenMids[sdpMedia.index] = mid === undefined ? sdpMedia.mid : mid;
      return {
        port: rejected ? 0 : (via as MediaState).rtp.localPort,
        connection: keepZero ? { addrType: conn.addrType, address: conn.addrType === 'IP6' ? '::' : ZERO_V4 } : conn,
        rtcpPort: ownRtcp ? rtcpPort : null,
        rtcpMux: !rejected && (muxed || requireMux) && ownRtcp,
        direction: senderMedia?.direction ?? sdpMedia.direction,
        proto,
        removeIce: true,
        ...(mine?.icePassThrough === true && !rejected ? { passThroughIce: true } : {}),
        ...(keepTransport ? { keepTransport: true } : {}),
        extraAttributes: [],
        ...(mine?.crypto && !rejected ? { crypto: mine.crypto.given.map(formatKeyLine) } : {}),
        ...(dtls ? { dtls } : {}),
        ...(ice ? { ice } : {}),
        ...(mid !== undefined ? { mid } : {}),
      };
    });
    const sessionConn = ifaceConn(firstLive);
    const replaceOrigin = req.replace.has('origin') || req.replace.has('origin-full');
    const sessionZero = sdp.connection && isZeroAddress(sdp.connection.address) && !req.replace.has('zero-address');
    return {
      origin: replaceOrigin ? sessionConn : null,
      sessionVersion: null,
      sessionConnection: sessionZero ? (sdp.connection as ConnectionAddress) : sessionConn,
      media,
      // rtpengine 10.5 puts its loop-protect attribute at session level.
      sessionAttributes: [
        ...bundleGroupValues(receiver, (i) => writtenMids[i] ?? null),
        ...(withIce && receiver.iceLite === true ? ['ice-lite'] : []),
        ...(req.flags.has('loop-protect') ? [`rtpengine:${call.loopToken}`] : []),
      ],
      replaceSessionConnection: req.replace.has('session-connection'),
      ...(keptTransport > 0 && keptTransport === media.filter((m) => m.port !== 0).length ? { keepSessionConnection: true } : {}),
    };
  }

  /**
   * Write the SDP generated from `sender`'s. With `replace: SDP-version` the o= version is ours: the first
   * one passes through, later ones stay while the body is unchanged and go up by one when it changed
   * (`force-increment-sdp-ver` always goes up), as rtpengine 10.5 does.
   */
  private writeSdp(req: SignalRequest, sdp: ParsedSdp, sender: MonologueState, rewrite: SdpRewrite): Buffer {
    const versioned = req.replace.has('SDP-version') || req.replace.has('force-increment-sdp-ver');
    if (!versioned || !sdp.origin) {
      const out = rewriteSdp(sdp, rewrite);
      sender.sdpOut = sdp.origin ? { version: sdp.origin.sessionVersion, body: out.toString('latin1') } : null;
      return out;
    }
    const last = sender.sdpOut;
    if (!last) {
      const out = rewriteSdp(sdp, rewrite);
      sender.sdpOut = { version: sdp.origin.sessionVersion, body: out.toString('latin1') };
      return out;
    }
    let out = rewriteSdp(sdp, { ...rewrite, sessionVersion: last.version });
    if (req.replace.has('force-increment-sdp-ver') || out.toString('latin1') !== last.body) {
      const next = /^\d+$/.test(last.version) ? (BigInt(last.version) + 1n).toString() : last.version;
      out = rewriteSdp(sdp, { ...rewrite, sessionVersion: next });
      sender.sdpOut = { version: next, body: out.toString('latin1') };
    } else {
      sender.sdpOut = { version: last.version, body: out.toString('latin1') };
    }
    return out;
  }

  /** loop-protect: this SDP carries our own token, so it has been through this call already. */
  private loopedBack(sdp: ParsedSdp, call: CallState): boolean {
    return sdp.media.some(
      (m) => m.loopProtectToken === call.loopToken || (m.loopProtectTokens ?? []).includes(call.loopToken),
    );
  }

  private dropMonologue(call: CallState, mono: MonologueState): void {
    this.closeMonologueStreams(mono);
    call.monologues = call.monologues.filter((m) => m !== mono);
    for (const m of call.monologues) {
      if (m.peerKey === mono.key) {
        const other = call.monologues.find((o) => o.peerKey === m.key && o !== m);
        m.peerKey = other ? other.key : null;
      }
    }
  }

  private closeMonologueStreams(mono: MonologueState): void {
    for (const media of mono.medias) {
      this.sockets.close(media.rtcp);
      this.sockets.close(media.rtp);
      for (const s of extraStreamsOf(media)) this.sockets.close(s);
    }
    mono.medias = mono.medias.map((m) => ({ ...m, rejected: true }));
  }

  /** For `familyOf` users elsewhere. */
  static addrTypeOf = addrTypeOf;
}

/**
 * A media with a socket per address (src/call/ice-sockets.ts) where the relay is the controlling full agent:
 * only its nominating socket checks and nominates, the others answer the party's checks as a lite agent.
 */
function nominating(media: MediaState, stream: StreamState, component: 'rtp' | 'rtcp', rule: StreamRule): StreamRule {
  if (!media.iceSockets?.length || !rule.ice || rule.ice.lite || !rule.ice.controlling) return rule;
  return nominatingSocketOf(media, component) === stream ? rule : { ...rule, ice: { ...rule.ice, lite: true } };
}

/** The clock rate of an rtpmap-style codec name ("PCMU/8000", "opus/48000/2"); 8000 when unknown. */
function clockRateOf(codec: string | null): number {
  // `PCMU/8000` or `opus/48000/2`: the field after the first slash (read in place: this runs per stream rule).
  const slash = codec === null ? -1 : codec.indexOf('/');
  if (slash < 0) return 8000;
  const end = codec!.indexOf('/', slash + 1);
  const rate = Number(codec!.slice(slash + 1, end < 0 ? codec!.length : end));
  return Number.isInteger(rate) && rate > 0 ? rate : 8000;
}

/** The payload type a=rtpmap names telephone-event, if any. */
function telephoneEventPayloadType(media: SdpMedia): number | null {
  for (const [pt, name] of media.rtpmaps) if (/^telephone-event\//i.test(name)) return Number(pt);
  return null;
}
