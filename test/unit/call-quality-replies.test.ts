/**
 * Laying out the engine's call-quality figures as rtpengine does: the SSRC dict of query/delete (averages
 * by integer division over the samples that have a MOS, progression oldest first) and the DTMF log JSON.
 */
import { describe, expect, it } from 'vitest';
import { ssrcStatistics } from '../../src/call/ssrc-stats';
import { dtmfLogJson } from '../../src/call/dtmf-log';
import type { MosSample, StreamQuality } from '../../src/dataplane/types';
import type { CallState, MonologueState } from '../../src/call/state';

const sample = (over: Partial<MosSample>): MosSample => ({ reportedAtMs: 1_700_000_000_500, mos: 43, rttUs: 60000, rttLegUs: 30000, jitterMs: 1, packetLoss: 0, ...over });

function quality(reporter: number | null, samples: MosSample[]): StreamQuality {
  const withMos = samples.filter((s) => s.mos > 0);
  const sum = (k: keyof MosSample) => withMos.reduce((a, s) => a + s[k], 0);
  return {
    rtp: null,
    rtcp: {
      parsed: samples.length, malformed: 0, senderReports: 0, receiverReports: samples.length, sdes: 0, bye: 0, xr: 0,
      reporterSsrc: reporter, cumulativeLost: 38, fractionLost: 25, jitter: 80, rttLegUs: 30000, xrRoundTripMs: null,
      sums: { samples: withMos.length, mos: sum('mos'), rttUs: sum('rttUs'), rttLegUs: sum('rttLegUs'), jitterMs: sum('jitterMs'), packetLoss: sum('packetLoss') },
      lowest: withMos.reduce<MosSample | null>((lo, s) => (!lo || s.mos < lo.mos ? s : lo), null),
      highest: samples.reduce<MosSample | null>((hi, s) => (!hi || s.mos > hi.mos ? s : hi), null),
      samples,
      samplesTotal: samples.length,
    },
  };
}

describe('SSRC dict', () => {
  it("keys each reporter's entry by its SSRC in decimal, with rtpengine's keys and integer averages", () => {
    const d = ssrcStatistics([
      quality(0x2222, [sample({ mos: 0, rttUs: 0 }), sample({ mos: 35, jitterMs: 7, packetLoss: 9 }), sample({ mos: 36, jitterMs: 8, packetLoss: 9, reportedAtMs: 1_700_000_002_000 })]),
      quality(null, []),
    ]);
    expect(Object.keys(d)).toEqual(['8738']);
    const e = d['8738'] as Record<string, unknown>;
    expect(Object.keys(e)).toEqual(['cumulative loss', 'average MOS', 'lowest MOS', 'highest MOS', 'MOS progression']);
    expect(e['average MOS']).toEqual({ MOS: 35, 'round-trip time': 60000, 'round-trip time leg': 30000, jitter: 7, 'packet loss': 9, samples: 2 });
    expect(e['lowest MOS']).toMatchObject({ MOS: 35, 'reported at': 1_700_000_000 });
    expect(e['highest MOS']).toMatchObject({ MOS: 36, 'reported at': 1_700_000_002 });
    const progression = e['MOS progression'] as { interval: number; entries: Array<{ MOS: number }> };
    expect(progression.interval).toBe(0);
    expect(progression.entries.map((x) => x.MOS)).toEqual([0, 35, 36]);
  });

  it('is empty for a call without receiver reports, as rtpengine answers', () => {
    expect(ssrcStatistics([quality(null, [])])).toEqual({});
  });
});

describe('DTMF log JSON', () => {
  it("has rtpengine's keys in rtpengine's order, the other tags first, the label only when set", () => {
    const caller = { tag: 'caller', label: null, medias: [] } as unknown as MonologueState;
    const callee = { tag: 'callee', label: null, medias: [] } as unknown as MonologueState;
    const call = { callId: 'c1', monologues: [caller, callee] } as unknown as CallState;
    const e = { type: 'dtmf' as const, id: 1, from: { family: 'IPv4' as const, address: '192.0.2.1', port: 4000 }, atMs: 1_700_000_000_900, event: 11, volume: 10, durationMs: 80, rtpTimestamp: 1 };
    expect(JSON.parse(dtmfLogJson(call, caller, e))).toEqual({ callid: 'c1', source_tag: 'caller', tags: ['callee', 'caller'], type: 'DTMF', timestamp: 1_700_000_000, source_ip: '192.0.2.1', event: 11, duration: 80, volume: 10 });
    expect(Object.keys(JSON.parse(dtmfLogJson(call, caller, e)) as object)).toEqual(['callid', 'source_tag', 'tags', 'type', 'timestamp', 'source_ip', 'event', 'duration', 'volume']);
    const labelled = { ...caller, label: 'agent' } as MonologueState;
    // rtpengine 10.5 writes no source_label, even for a labelled party (test/compat/dtmf-log-ng-tcp.test.ts).
    expect(Object.keys(JSON.parse(dtmfLogJson(call, labelled, e)) as object)).not.toContain('source_label');
  });
});
