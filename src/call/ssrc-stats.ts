/**
 * The `SSRC` dict of `query` and `delete` replies, in rtpengine 10.5's shape: one entry per SSRC that sent
 * RTCP receiver reports, keyed by the SSRC in decimal, with the MOS figures made from its reports
 * (native/src/stream_quality.cpp computes them as rtpengine does; this module only lays them out).
 */
import type { MosSample, StreamQuality } from '../dataplane/types';
import type { NgDict, NgValue } from '../ng/types';
import { ngDict } from '../ng/dict';

const seconds = (ms: number): number => Math.floor(ms / 1000);

function sampleDict(s: MosSample): NgDict {
  return ngDict([
    ['MOS', s.mos],
    ['round-trip time', s.rttUs],
    ['round-trip time leg', s.rttLegUs],
    ['jitter', s.jitterMs],
    ['packet loss', s.packetLoss],
    ['reported at', seconds(s.reportedAtMs)],
  ]);
}

function ssrcEntry(q: StreamQuality): NgDict {
  const r = q.rtcp;
  const entries: Array<[string, NgValue]> = [['cumulative loss', r.cumulativeLost]];
  const n = r.sums.samples;
  if (n > 0) {
    // rtpengine divides its running sums by the number of samples with a MOS (integer division).
    entries.push([
      'average MOS',
      ngDict([
        ['MOS', Math.floor(r.sums.mos / n)],
        ['round-trip time', Math.floor(r.sums.rttUs / n)],
        ['round-trip time leg', Math.floor(r.sums.rttLegUs / n)],
        ['jitter', Math.floor(r.sums.jitterMs / n)],
        ['packet loss', Math.floor(r.sums.packetLoss / n)],
        ['samples', n],
      ]),
    ]);
  }
  if (r.lowest) entries.push(['lowest MOS', sampleDict(r.lowest)]);
  if (r.highest) entries.push(['highest MOS', sampleDict(r.highest)]);
  if (r.samples.length > 0) {
    entries.push(['MOS progression', ngDict([
      ['interval', 0],
      ['entries', r.samples.map(sampleDict)],
    ])]);
  }
  return ngDict(entries);
}

/** `qualities`: the figures of the call's RTCP streams (streams without receiver reports add nothing). */
export function ssrcStatistics(qualities: readonly StreamQuality[]): NgDict {
  const dict = ngDict();
  for (const q of qualities) {
    if (q.rtcp.reporterSsrc === null) continue;
    dict[String(q.rtcp.reporterSsrc)] = ssrcEntry(q);
  }
  return dict;
}
