/**
 * Offer and answer are atomic: a command that fails leaves calls, ports (data plane streams and their rules)
 * and counters exactly as they were, also when it fails after it began changing the call.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { CallManager } from '../../src/call/call-manager';
import type { StreamRule } from '../../src/dataplane/types';
import { NgError, PortsExhaustedError } from '../../src/errors';
import { expectThrows } from '../support/errors';
import { FakeDataPlane } from '../support/fake-dataplane';
import { audioSdp, signalRequest, testConfig } from '../support/call-fixtures';

const logger = pino({ level: 'silent' });

/** Refuses the next `refuse` rule updates, as a data plane refuses a rule it cannot apply. */
class RefusingDataPlane extends FakeDataPlane {
  refuse = 0;
  override updateStream(id: number, rule: StreamRule): void {
    if (this.refuse > 0) {
      this.refuse--;
      throw new RangeError('rule refused');
    }
    super.updateStream(id, rule);
  }
}

/** Everything a command may change, as comparable text. */
function fingerprint(cm: CallManager, dp: FakeDataPlane): string {
  return JSON.stringify({
    calls: [...cm.calls.entries()].map(([id, c]) => ({ id, call: { ...c, monologues: c.monologues.map((m) => ({ ...m })) } })),
    streams: [...dp.streams.entries()],
    totals: cm.totals,
  });
}

describe('offer/answer atomicity', () => {
  let dp: RefusingDataPlane;
  let cm: CallManager;

  beforeEach(() => {
    dp = new RefusingDataPlane();
    cm = new CallManager(testConfig(), dp, logger, {}, () => 1_700_000_000_000);
  });

  it('a new call whose rules the data plane refuses leaves no call, no port and no count behind', () => {
    const before = fingerprint(cm, dp);
    dp.refuse = 1;
    expect(() => cm.offer(signalRequest({}))).toThrow(RangeError);
    expect(cm.calls.size).toBe(0);
    expect(dp.streams.size).toBe(0);
    expect(fingerprint(cm, dp)).toBe(before);
    // The call-id is not poisoned: the next offer works.
    cm.offer(signalRequest({}));
    expect(cm.calls.size).toBe(1);
  });

  it('a failing re-offer of an answered call puts the call, its ports and rules back', () => {
    cm.offer(signalRequest({}));
    cm.answer(signalRequest({ toTag: 'B', sdp: audioSdp(50000, '10.0.0.5') }));
    const before = fingerprint(cm, dp);
    // Re-offer that changes the media (a second m= line: new ports) and the label, then fails.
    dp.refuse = 1;
    const reoffer = signalRequest({ label: 'changed', sdp: audioSdp(40100, '192.168.1.10', ['m=video 40200 RTP/AVP 96']) });
    expect(() => cm.offer(reoffer)).toThrow(RangeError);
    expect(fingerprint(cm, dp)).toBe(before);
    cm.offer(reoffer);
    expect(fingerprint(cm, dp)).not.toBe(before);
  });

  it('a re-offer from a new fork (via-branch) that fails leaves the call without that branch', () => {
    cm.offer(signalRequest({ viaBranch: 'b1' }));
    const before = fingerprint(cm, dp);
    dp.refuse = 1;
    expect(() => cm.offer(signalRequest({ viaBranch: 'b2' }))).toThrow(RangeError);
    expect(fingerprint(cm, dp)).toBe(before);
  });

  it('a failing answer leaves the offered call as it was, and a later answer works', () => {
    cm.offer(signalRequest({ rtcpMux: new Set(['offer']) }));
    const before = fingerprint(cm, dp);
    const answer = signalRequest({ toTag: 'B', sdp: audioSdp(50000, '10.0.0.5', ['a=rtcp-mux']) });
    dp.refuse = 1;
    expect(() => cm.answer(answer)).toThrow(RangeError);
    expect(fingerprint(cm, dp)).toBe(before);
    cm.answer(answer);
    expect(cm.calls.get('call-1')!.monologues.map((m) => m.tag).sort()).toEqual(['A', 'B']);
  });

  it('answers refused before any change (wrong media count, unknown from-tag) change nothing', () => {
    cm.offer(signalRequest({}));
    const before = fingerprint(cm, dp);
    expect(() => cm.answer(signalRequest({ toTag: 'B', sdp: audioSdp(50000, '10.0.0.5', ['m=video 5 RTP/AVP 96']) }))).toThrow(NgError);
    expect(() => cm.answer(signalRequest({ fromTag: 'X', toTag: 'B' }))).toThrow(NgError);
    expect(fingerprint(cm, dp)).toBe(before);
  });

  it('an offer that runs out of ports leaves the ports it took on the way free again', () => {
    const small = new CallManager(testConfig({ portMin: 30000, portMax: 30007 }), dp, logger);
    small.offer(signalRequest({ callId: 'c1' }));
    const streams = dp.streams.size;
    const media = ['m=audio 40002 RTP/AVP 0', 'm=audio 40004 RTP/AVP 0'];
    expectThrows(() => small.offer(signalRequest({ callId: 'c2', sdp: audioSdp(40000, '192.168.1.10', media) })), PortsExhaustedError, 'Ran out of ports');
    expect(dp.streams.size).toBe(streams);
    expect([...small.calls.keys()]).toEqual(['c1']);
  });

  it('an offer with RTP on port 65535 succeeds (RTCP has no port after it) and leaves RTCP to learning', () => {
    const out = cm.offer(signalRequest({ sdp: audioSdp(65535) })).toString();
    expect(out).toMatch(/^m=audio 3\d{4} /m);
    const call = cm.calls.get('call-1')!;
    const caller = call.monologues.find((m) => m.tag === 'A')!;
    expect(caller.medias[0]!.rtp.expected).toEqual({ family: 'IPv4', address: '192.168.1.10', port: 65535 });
    expect(caller.medias[0]!.rtcp.expected).toBeNull();
    // And the call takes further signalling.
    cm.answer(signalRequest({ toTag: 'B', sdp: audioSdp(50000, '10.0.0.5') }));
    cm.offer(signalRequest({ sdp: audioSdp(65535) }));
  });

  it('ignores a media-address or received-from that is no IP address (found by the fuzzer: was an internal error)', () => {
    cm.offer(signalRequest({ mediaAddress: '3M]D\xdb' }));
    cm.offer(signalRequest({ callId: 'c2', receivedFrom: { addrType: 'IP4', address: 'nonsense' }, flags: new Set(['SIP-source-address']) }));
    for (const id of ['call-1', 'c2']) {
      const caller = cm.calls.get(id)!.monologues.find((m) => m.tag === 'A')!;
      expect(caller.medias[0]!.rtp.expected).toEqual({ family: 'IPv4', address: '192.168.1.10', port: 40000 });
    }
  });
});
