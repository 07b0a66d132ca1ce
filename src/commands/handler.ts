/**
 * The ng command layer: turns a decoded ng dict into a call-manager operation and its reply dict,
 * with rtpengine's error strings and the order in which rtpengine checks required keys.
 */
import type { NgDict, NgHandler, NgValue } from '../ng/types';
import { normalizeRequest, type NormalizedRequest } from '../ng/request';
import { NgError } from '../errors';
import type { CallManager } from '../call/call-manager';
import type { DeleteRequest, SignalRequest } from '../call/signal';
import { callStatistics } from '../call/query-reply';
import type { DataPlane } from '../dataplane/types';
import type { Logger } from '../logger';
import { statisticsReply, type ControlStats } from './statistics';
import { KNOWN_FLAGS } from './known-flags';

function dict(entries: Array<[string, NgValue]>): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

function ok(entries: Array<[string, NgValue]> = []): NgDict {
  return dict([...entries, ['result', 'ok']]);
}

export interface CommandContext {
  manager: CallManager;
  dataPlane: DataPlane;
  logger: Logger;
  controlStats: () => ControlStats;
  startedMs: number;
  interfaces: () => NgDict[];
}

export function createCommandHandler(ctx: CommandContext): NgHandler {
  return (request: NgDict) => {
    const req = normalizeRequest(request);
    switch (req.command) {
      case 'ping':
        return dict([['result', 'pong']]);
      case 'offer':
        return ok([['sdp', ctx.manager.offer(signal(req, ctx.logger, false))]]);
      case 'answer':
        return ok([['sdp', ctx.manager.answer(signal(req, ctx.logger, true))]]);
      case 'delete':
        return deleteCommand(req, ctx);
      case 'query':
        return queryCommand(req, ctx);
      case 'list':
        return listCommand(req, ctx);
      case 'statistics':
        return ok([['statistics', statisticsReply(ctx)]]);
      default:
        throw new NgError('Unrecognized command');
    }
  };
}

/** offer/answer keys, checked in rtpengine's order: SDP, call-id, from-tag, (to-tag). */
function signal(req: NormalizedRequest, logger: Logger, isAnswer: boolean): SignalRequest {
  if (!req.sdp || req.sdp.length === 0) throw new NgError('No SDP body in message');
  if (!req.callId) throw new NgError('No call-id in message');
  if (!req.fromTag) throw new NgError('No from-tag in message');
  if (isAnswer && !req.toTag) throw new NgError('No to-tag in message');
  const unknown = [...req.flags].filter((f) => !KNOWN_FLAGS.has(f));
  if (unknown.length > 0) logger.info({ 'call-id': req.callId, flags: unknown }, 'ignoring unknown flags');
  return {
    callId: req.callId,
    fromTag: req.fromTag,
    toTag: req.toTag,
    viaBranch: req.viaBranch,
    sdp: req.sdp,
    flags: req.flags,
    replace: req.replace,
    rtcpMux: req.rtcpMux,
    ice: req.ICE,
    transportProtocol: req.transportProtocol,
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

function deleteCommand(req: NormalizedRequest, ctx: CommandContext): NgDict {
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
  // Statistics are read before the call may be torn down (delete-delay 0).
  const call = ctx.manager.calls.get(del.callId);
  const stats = call && del.fromTag && !del.fast ? callStatistics(call, counterReader(ctx, ctx.manager.streamIds(call))) : null;
  const result = ctx.manager.delete(del);
  if (!result) {
    if (del.fatal) throw new NgError("Call-ID not found or tags didn't match");
    return dict([
      ['warning', "Call-ID not found or tags didn't match"],
      ['result', 'ok'],
    ]);
  }
  if (!stats) return ok();
  return ok(Object.entries(stats));
}

function queryCommand(req: NormalizedRequest, ctx: CommandContext): NgDict {
  if (!req.callId) throw new NgError('No call-id in message');
  const call = ctx.manager.calls.get(req.callId);
  if (!call) throw new NgError('Unknown call-id');
  const stats = callStatistics(call, counterReader(ctx, ctx.manager.streamIds(call)));
  return ok(Object.entries(stats));
}

function listCommand(req: NormalizedRequest, ctx: CommandContext): NgDict {
  const limit = req.limit ?? 32;
  const calls = [...ctx.manager.calls.keys()].slice(0, Math.max(0, limit));
  return ok([['calls', calls]]);
}

function counterReader(ctx: CommandContext, ids: number[]) {
  const counters = ctx.dataPlane.readCounters(ids);
  return (id: number) => counters.get(id);
}
