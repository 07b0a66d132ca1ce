import { describe, expect, it } from 'vitest';
import pino from 'pino';
import { CallManager } from '../../src/call/call-manager';
import type { RelayConfig } from '../../src/config/types';
import { NgError } from '../../src/errors';
import { normalizeRequest } from '../../src/ng/request';
import type { NgDict } from '../../src/ng/types';
import type { DtmfPlayOutcome, DtmfPlayRequest } from '../../src/dataplane/types';
import { DtmfPassThroughError, DtmfQueueFullError, NoTelephoneEventError, dtmfCode, dtmfTiming, playDtmfCommand } from '../../src/commands/play-dtmf';
import { UnknownDtmfSecurityError, dtmfSecurity } from '../../src/commands/media-control';
import { FakeDataPlane } from '../support/fake-dataplane';
import { signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });

class PlayingDataPlane extends FakeDataPlane {
  readonly played: Array<{ id: number; request: DtmfPlayRequest }> = [];
  outcome: DtmfPlayOutcome = 'queued';
  playDtmf(id: number, request: DtmfPlayRequest): DtmfPlayOutcome {
    this.played.push({ id, request });
    return this.outcome;
  }
}

function sdp(port: number, dtmfPt: number | null): Buffer {
  const pts = dtmfPt === null ? '0' : `0 ${dtmfPt}`;
  const te = dtmfPt === null ? [] : [`a=rtpmap:${dtmfPt} telephone-event/8000`];
  return Buffer.from(['v=0', 'o=- 1 1 IN IP4 10.0.0.1', 's=-', 'c=IN IP4 10.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP ${pts}`, 'a=rtpmap:0 PCMU/8000', ...te, ''].join('\r\n'));
}

function call(offerPt: number | null, answerPt: number | null): { dp: PlayingDataPlane; cm: CallManager } {
  const dp = new PlayingDataPlane();
  const config: RelayConfig = testConfig({ interfaces: [{ name: 'default', address: '127.0.0.1', advertised: '127.0.0.1', family: 'IPv4' }] });
  const cm = new CallManager(config, dp, logger, {}, () => 1_700_000_000_000);
  cm.offer(signalRequest({ sdp: sdp(40000, offerPt) }));
  cm.answer(signalRequest({ toTag: 'B', sdp: sdp(50000, answerPt) }));
  return { dp, cm };
}

const play = (dict: NgDict, cm: CallManager, dp: PlayingDataPlane): NgDict =>
  playDtmfCommand(normalizeRequest({ command: 'play DTMF', 'call-id': 'call-1', ...dict }), cm, dp);

describe('play DTMF keys', () => {
  it('reads code/digit as rtpengine does', () => {
    expect([0, 15, '7', '12', '*', '#', 'a', 'D', Buffer.from('9')].map((v) => dtmfCode(v))).toEqual([0, 15, 7, 12, 10, 11, 12, 15, 9]);
    for (const bad of [undefined, -1, 16, 'X', '17', '', 2.5]) expect(() => dtmfCode(bad)).toThrow("Out of range 'code' specified");
  });

  it('clamps duration, volume and pause', () => {
    expect(dtmfTiming({})).toEqual({ durationMs: 250, volume: 8, pauseMs: 100 });
    expect(dtmfTiming({ duration: 20, volume: -20, pause: 9000 })).toEqual({ durationMs: 100, volume: 20, pauseMs: 5000 });
    expect(dtmfTiming({ duration: '6000', volume: 99, pause: 150 })).toEqual({ durationMs: 5000, volume: 63, pauseMs: 150 });
    expect(() => dtmfTiming({ duration: 'long' })).toThrow(NgError);
  });
});

describe('play DTMF command', () => {
  it('queues on the stream receiving from the named party, with the receiving party\'s telephone-event type', () => {
    const { dp, cm } = call(101, 96);
    const c = cm.calls.get('call-1')!;
    expect(play({ 'from-tag': 'B', code: '#', duration: 500 }, cm, dp)).toEqual({ result: 'ok' });
    const b = cm.findByTag(c, 'B')!;
    // B's events go to A, who offered 101.
    expect(dp.played).toEqual([{ id: b.medias[0]!.rtp.id, request: { event: 11, volume: 8, payloadType: 101, durationMs: 500, pauseMs: 100 } }]);
    play({ flags: ['all'], code: 1 }, cm, dp);
    expect(dp.played.slice(1).map((p) => p.request.payloadType).sort()).toEqual([101, 96].sort());
  });

  it('refuses a receiving party without telephone-event, SRTP passed through and a full queue, by class', () => {
    const none = call(101, null);
    expect(() => play({ 'from-tag': 'A', code: 1 }, none.cm, none.dp)).toThrow(NoTelephoneEventError);
    expect(none.dp.played).toEqual([]);
    const { dp, cm } = call(101, 101);
    dp.outcome = 'pass-through';
    expect(() => play({ 'from-tag': 'B', code: 1 }, cm, dp)).toThrow(DtmfPassThroughError);
    dp.outcome = 'queue-full';
    expect(() => play({ 'from-tag': 'B', code: 1 }, cm, dp)).toThrow(DtmfQueueFullError);
  });

  it('checks the call, then the party, then the code', () => {
    const { dp, cm } = call(101, 101);
    expect(() => playDtmfCommand(normalizeRequest({ command: 'play DTMF' }), cm, dp)).toThrow('No call-id in message');
    expect(() => play({ 'call-id': 'other', code: 1 }, cm, dp)).toThrow('Unknown call-ID');
    expect(() => play({}, cm, dp)).toThrow('No participant party specified');
    expect(() => play({ 'from-tag': 'nobody' }, cm, dp)).toThrow('From-tag given, but no such tag exists');
    expect(() => play({ 'from-tag': 'B' }, cm, dp)).toThrow("Out of range 'code' specified");
  });
});

describe('DTMF-security', () => {
  const mode = (dict: NgDict) => dtmfSecurity(normalizeRequest({ command: 'block DTMF', ...dict }));
  it('maps rtpengine\'s modes', () => {
    expect(mode({})).toEqual({ block: true, replace: null, warning: null });
    expect(mode({ 'DTMF-security': 'zero' }).replace).toBe(0);
    expect(mode({ 'DTMF-security': 'DTMF', digit: 'B' }).replace).toBe(13);
    expect(mode({ 'DTMF-security': 'DTMF', code: 4 }).replace).toBe(4);
    expect(mode({ 'DTMF-security': 'random' }).replace).toBe('random');
    expect(mode({ 'DTMF-security': 'off' }).block).toBe(false);
    expect(mode({ 'DTMF-security': 'tone' })).toMatchObject({ block: true, replace: null, warning: expect.stringContaining('transcoding') });
    expect(() => mode({ 'DTMF-security': 'loud' })).toThrow(UnknownDtmfSecurityError);
  });
});
