/**
 * The ng command layer: turns a decoded ng dict into a call-manager operation and its reply dict,
 * with rtpengine's error strings and the order in which rtpengine checks required keys.
 */
import type { NgDict, NgHandler, NgValue } from '../ng/types';
import { normalizeRequest, type NormalizedRequest } from '../ng/request';
import { NgError } from '../errors';
import { ngDict } from '../ng/dict';
import { idToWire } from '../ng/byte-string';
import type { DeleteRequest, SignalRequest } from '../call/signal';
import { callStatistics } from './query-reply';
import { recordingReply } from './recording-reply';
import type { Logger } from '../logger';
import { statisticsReply } from './statistics';
import type { CommandContext } from './context';
import { KNOWN_FLAGS } from './known-flags';
import { unknownWebrtcValues } from '../call/webrtc-negotiation';
import { MEDIA_CONTROL_COMMANDS, mediaControlCommand, type MediaControlCommand } from './media-control';
import { playDtmfCommand } from './play-dtmf';
import type { CallState } from '../call/state';
import type { StreamQuality } from '../dataplane/types';
import { loadLimitReply } from '../ng/load-limit';


function ok(entries: Array<[string, NgValue]> = []): NgDict {
  return ngDict([...entries, ['result', 'ok']]);
}

export function createCommandHandler(ctx: CommandContext): NgHandler {
  return (request: NgDict) => {
    const req = normalizeRequest(request);
    switch (req.command) {
      case 'ping':
        return ngDict([['result', 'pong']]);
      case 'offer':
        return newCallRefusal(req, request, ctx) ?? signalCommand(signal(req, ctx.logger, false), 'offer', ctx);
      case 'answer':
        return signalCommand(signal(req, ctx.logger, true), 'answer', ctx);
      case 'delete':
        return deleteCommand(req, ctx);
      case 'query':
        return queryCommand(req, ctx);
      case 'list':
        return listCommand(req, ctx);
      case 'statistics':
        return ok([['statistics', statisticsReply(ctx)]]);
      case 'start recording':
        ctx.recorder.start(recordingCall(req, ctx));
        return ok();
      case 'stop recording':
        ctx.recorder.stop(recordingCall(req, ctx));
        return ok();
      case 'pause recording':
        ctx.recorder.pause(recordingCall(req, ctx));
        return ok();
      case 'play DTMF':
        return playDtmfCommand(req, ctx.manager, ctx.dataPlane);
      default:
        if (MEDIA_CONTROL_COMMANDS.has(req.command)) return mediaControlCommand(req.command as MediaControlCommand, req, ctx.manager);
        throw new NgError('Unrecognized command');
    }
  };
}

/** The load-limit reply when this offer would start a new call while a --max-* limit is reached; else null. */
function newCallRefusal(req: NormalizedRequest, request: NgDict, ctx: CommandContext): NgDict | null {
  if (!ctx.limits || (req.callId && ctx.manager.calls.has(req.callId))) return null;
  const message = ctx.limits.refusal(ctx.manager.calls.size);
  if (message === null) return null;
  ctx.manager.totals.rejectedSessions++;
  ctx.logger.warn({ 'call-id': req.callId, reason: message }, 'new call refused by a load limit');
  return loadLimitReply(request, message);
}

/** offer/answer, then what the request means for recording (a recording failure only adds a warning). */
function signalCommand(s: SignalRequest, mode: 'offer' | 'answer', ctx: CommandContext): NgDict {
  ctx.recorder.checkRequest(s.recordCall);
  const sdp = mode === 'offer' ? ctx.manager.offer(s) : ctx.manager.answer(s);
  const call = ctx.manager.calls.get(s.callId);
  const warning = call
    ? ctx.recorder.afterSignal(call, { mode, fromTag: s.fromTag, sdp: s.sdp, metadata: s.metadata, recordCall: s.recordCall })
    : null;
  return ok(warning === null ? [['sdp', sdp]] : [['sdp', sdp], ['warning', warning]]);
}

/** The call a start/stop/pause recording command names. */
function recordingCall(req: NormalizedRequest, ctx: CommandContext): CallState {
  if (!req.callId) throw new NgError('No call-id in message');
  const call = ctx.manager.calls.get(req.callId);
  if (!call) throw new NgError('Unknown call-id');
  return call;
}

/** offer/answer keys, checked in rtpengine's order: SDP, call-id, from-tag, (to-tag). Exported for in-process compat tests. */
export function signal(req: NormalizedRequest, logger: Logger, isAnswer: boolean): SignalRequest {
  if (!req.sdp || req.sdp.length === 0) throw new NgError('No SDP body in message');
  if (!req.callId) throw new NgError('No call-id in message');
  if (!req.fromTag) throw new NgError('No from-tag in message');
  if (isAnswer && !req.toTag) throw new NgError('No to-tag in message');
  let unknown: string[] | null = null;
  for (const f of req.flags) if (!KNOWN_FLAGS.has(f)) (unknown ??= []).push(f);
  if (unknown) logger.info({ 'call-id': req.callId, flags: unknown }, 'ignoring unknown flags');
  const unknownValues = unknownWebrtcValues({
    ICE: req.ICE,
    'ICE-lite': req.ICElite,
    DTLS: req.DTLS,
    'DTLS-reverse': req.DTLSreverse,
    'DTLS-fingerprint': req.DTLSfingerprint,
  });
  if (unknownValues.length > 0) logger.info({ 'call-id': req.callId, values: unknownValues }, 'ignoring unknown values');
  return {
    callId: req.callId,
    fromTag: req.fromTag,
    toTag: req.toTag,
    viaBranch: req.viaBranch,
    sdp: req.sdp,
    flags: req.flags,
    replace: req.replace,
    rtcpMux: req.rtcpMux,
    bundle: req.bundle,
    ice: req.ICE,
    iceLite: req.ICElite,
    dtls: req.DTLS,
    dtlsReverse: req.DTLSreverse,
    dtlsFingerprint: req.DTLSfingerprint,
    transportProtocol: req.transportProtocol,
    sdes: req.SDES,
    direction: req.direction,
    receivedFrom: req.receivedFrom
      ? { addrType: req.receivedFrom.family === 'IP6' ? 'IP6' : 'IP4', address: req.receivedFrom.address }
      : null,
    mediaAddress: req.mediaAddress,
    addressFamily: req.addressFamily === 'IP6' ? 'IP6' : req.addressFamily === 'IP4' ? 'IP4' : null,
    label: req.label,
    metadata: req.metadata,
    recordCall: req.recordCall,
    endpointLearning: req.endpointLearning,
  };
}

async function deleteCommand(req: NormalizedRequest, ctx: CommandContext): Promise<NgDict> {
  if (!req.callId) throw new NgError('No call-id in message');
  const del: DeleteRequest = {
    callId: req.callId,
    fromTag: req.fromTag,
    toTag: req.toTag,
    viaBranch: req.viaBranch,
    deleteDelay: req.deleteDelay,
    fatal: req.flags.has('fatal'),
    fast: req.flags.has('fast'),
  };
  // Statistics are taken before the call may be torn down (delete-delay 0); see statisticsOf.
  const call = ctx.manager.calls.get(del.callId);
  const stats = call && del.fromTag && !del.fast ? statisticsOf(call, ctx) : null;
  const result = ctx.manager.delete(del);
  // The recording ends with the call's delete, not when a delete-delay runs out.
  if (result && !result.branchOnly) ctx.recorder.stop(result.call);
  if (!result) {
    if (del.fatal) throw new NgError("Call-ID not found or tags didn't match");
    return ngDict([
      ['warning', "Call-ID not found or tags didn't match"],
      ['result', 'ok'],
    ]);
  }
  if (!stats) return ok();
  return ok(Object.entries(await stats));
}

async function queryCommand(req: NormalizedRequest, ctx: CommandContext): Promise<NgDict> {
  if (!req.callId) throw new NgError('No call-id in message');
  const call = ctx.manager.calls.get(req.callId);
  if (!call) throw new NgError('Unknown call-id');
  // The call may have ended meanwhile (another command ran while the copies were taken): its last state.
  const stats = await statisticsOf(call, ctx);
  // Only recorded calls get the extra key, so other replies keep rtpengine's exact key set.
  const recording = ctx.recorder.status(call);
  const entries = Object.entries(stats);
  if (recording) entries.push(['recording', recordingReply(recording)]);
  return ok(entries);
}

function listCommand(req: NormalizedRequest, ctx: CommandContext): NgDict {
  const limit = req.limit ?? 32;
  const calls = [...ctx.manager.calls.keys()].slice(0, Math.max(0, limit)).map(idToWire);
  return ok([['calls', calls]]);
}

/**
 * The call's statistics dict (query, delete) as it stands now: counters are read at once, the quality copies
 * are queued now (on the I/O threads they run before any removal queued after this call) and collected once
 * the fence carrying them has passed.
 */
async function statisticsOf(call: CallState, ctx: CommandContext): Promise<NgDict> {
  const ids = ctx.manager.streamIds(call);
  const counters = ctx.dataPlane.readCounters(ids);
  // A stream's figures come only from packets it accepted, which also set its last-packet time: a stream that
  // never had one has none, and asking would cost a wake-up of its I/O thread (and the reply a wait) for nothing.
  const heard = ids.filter((id) => (counters.get(id)?.lastPacketMs ?? 0) > 0);
  const qualities = heard.length > 0 ? await ctx.dataPlane.readQualities(heard) : new Map<number, StreamQuality>();
  return callStatistics(call, (id) => counters.get(id), (id) => qualities.get(id));
}
