/**
 * `play DTMF`: the engine sends RFC 4733 events into a running call as if the selected party had pressed a
 * key (see native/include/dtmf_inject.hpp). Keys and replies as rtpengine 10.5 has them (seen side by side):
 * `code` or `digit` (0-15, or one of 0-9 * # A-D), `duration` (ms, default 250, 100-5000), `volume` (dB,
 * default 8, a sign ignored, at most 63), `pause` (ms after the event, default 100, 100-5000); the party is
 * named by `from-tag` (or the `all` flag: every party). Unlike rtpengine no `inject DTMF` flag is needed:
 * nothing is transcoded, so nothing has to be set up for it at offer/answer time. Events need a
 * telephone-event payload type on the receiving side (in-band tones would need transcoding).
 */
import type { NgValue, NgDict } from '../ng/types';
import type { NormalizedRequest } from '../ng/request';
import { getValue } from '../ng/request';
import { NgError } from '../errors';
import { ngDict } from '../ng/dict';
import type { CallManager } from '../call/call-manager';
import type { CallState, MonologueState } from '../call/state';
import type { DataPlane, DtmfPlayRequest } from '../dataplane/types';

/** The receiving party cannot take RFC 4733 events (rtpengine would play in-band tones, which needs transcoding). */
export class NoTelephoneEventError extends NgError {
  constructor() {
    super('No telephone-event payload type negotiated towards the receiving party (in-band DTMF needs transcoding)');
  }
}

/** The leg passes SRTP through untouched (both sides share keys): no packet of the relay's can be added. */
export class DtmfPassThroughError extends NgError {
  constructor() {
    super('Cannot inject DTMF into SRTP passed through unchanged');
  }
}

/** More events queued on one stream than the engine holds. */
export class DtmfQueueFullError extends NgError {
  constructor() {
    super('Too many DTMF events queued');
  }
}

const DIGITS = '0123456789*#ABCD';

/** rtpengine's reading of `code`/`digit`: an integer 0-15, a digit string of one, or one of 0-9 * # A-D. */
export function dtmfCode(v: NgValue | undefined): number {
  let code = -1;
  if (typeof v === 'number') code = v;
  else if (typeof v === 'string' || Buffer.isBuffer(v)) {
    const text = (Buffer.isBuffer(v) ? v.toString('latin1') : v).trim();
    if (/^\d+$/.test(text)) code = Number(text);
    else if (text.length === 1) code = DIGITS.indexOf(text.toUpperCase());
  }
  if (!Number.isInteger(code) || code < 0 || code > 15) throw new NgError("Out of range 'code' specified");
  return code;
}

function intOf(dict: NgDict, key: string, fallback: number): number {
  const v = getValue(dict, key);
  if (v === undefined) return fallback;
  const n = typeof v === 'number' ? v : Number((Buffer.isBuffer(v) ? v.toString('latin1') : String(v)).trim());
  if (!Number.isFinite(n)) throw new NgError(`Invalid '${key}' value`);
  return Math.trunc(n);
}

const clamp = (n: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, n));

/** The event's timing and loudness, clamped as rtpengine clamps them. */
export function dtmfTiming(dict: NgDict): Pick<DtmfPlayRequest, 'durationMs' | 'volume' | 'pauseMs'> {
  return {
    durationMs: clamp(intOf(dict, 'duration', 250), 100, 5000),
    volume: clamp(Math.abs(intOf(dict, 'volume', 8)), 0, 63),
    pauseMs: clamp(intOf(dict, 'pause', 100), 100, 5000),
  };
}

/** The party `mono` exchanges media with (null: none yet). */
function peerOf(call: CallState, mono: MonologueState): MonologueState | null {
  return mono.peerKey === null ? null : (call.monologues.find((m) => m.key === mono.peerKey) ?? null);
}

export function playDtmfCommand(req: NormalizedRequest, manager: CallManager, dataPlane: DataPlane): NgDict {
  if (!req.callId) throw new NgError('No call-id in message');
  const call = manager.calls.get(req.callId);
  if (!call) throw new NgError('Unknown call-ID');
  let senders: readonly MonologueState[];
  if (req.flags.has('all')) senders = call.monologues;
  else if (req.fromTag) {
    const mono = manager.findByTag(call, req.fromTag);
    if (!mono) throw new NgError('From-tag given, but no such tag exists');
    senders = [mono];
  } else throw new NgError('No participant party specified');
  const code = dtmfCode(getValue(req.raw, 'code') ?? getValue(req.raw, 'digit'));
  const timing = dtmfTiming(req.raw);

  // Every audio stream the senders send on, with the telephone-event type of the party receiving it; checked
  // in full before anything is queued, so a refusal plays nothing.
  const targets: Array<{ id: number; payloadType: number }> = [];
  for (const mono of senders) {
    const peer = peerOf(call, mono);
    mono.medias.forEach((media, i) => {
      if (media.type !== 'audio' || !media.rtp.id) return;
      const payloadType = peer?.medias[i]?.dtmfPayloadType ?? null;
      if (payloadType === null) throw new NoTelephoneEventError();
      targets.push({ id: media.rtp.id, payloadType });
    });
  }
  if (targets.length === 0) throw new NoTelephoneEventError();
  if (!dataPlane.playDtmf) throw new NgError('DTMF injection is not supported by this data plane');
  for (const t of targets) {
    const outcome = dataPlane.playDtmf(t.id, { event: code, payloadType: t.payloadType, ...timing });
    if (outcome === 'pass-through') throw new DtmfPassThroughError();
    if (outcome === 'queue-full') throw new DtmfQueueFullError();
  }
  return ngDict([['result', 'ok']]);
}
