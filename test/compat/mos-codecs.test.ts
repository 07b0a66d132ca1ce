/**
 * MOS for codecs other than G.711, side by side with rtpengine 10.5: the same lossy traffic as
 * call-quality.test.ts (A -> B loses every 10th packet and delays every 7th; SR/RR with real LSR/DLSR) offered
 * as G.722 (wide-band) and as Opus. rtpengine 10.5 (Debian's build) scores both with the formula it uses for
 * G.711, and so does ngrelay: the MOS of each SSRC agrees within 0.2 once the reported loss does.
 */
import { describe, expect, it } from 'vitest';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';
import { LOSSY_CALL, runQualityCall } from '../support/quality-traffic';
import { startOnRandomPorts } from '../support/random-relay';
import { isDict, type BDict, type BValue } from '../support/bencode';

const SSRC_A = LOSSY_CALL.ssrcA;
const SSRC_B = LOSSY_CALL.ssrcB;

async function averageMos(start: typeof startRtpengine, codec: { pt: number; rtpmap: string }): Promise<BDict> {
  const relay = await startOnRandomPorts(start);
  try {
    const run = await runQualityCall({
      ngPort: relay.ngPort,
      callId: `mos-${codec.pt}`,
      ...LOSSY_CALL,
      codec,
    });
    const ssrc = run.query['SSRC'];
    if (!ssrc || !isDict(ssrc)) throw new Error('no SSRC dict');
    return ssrc;
  } finally {
    await relay.stop();
  }
}

const figure = (ssrcDict: BDict, ssrc: number, key: string): number => {
  const entry: BValue | undefined = ssrcDict[String(ssrc)];
  const avg = entry && isDict(entry) ? entry['average MOS'] : undefined;
  const v = avg && isDict(avg) ? avg[key] : undefined;
  if (typeof v !== 'number') throw new Error(`no ${key} for SSRC ${ssrc}`);
  return v;
};

/** The G.711 ("legacy") score from loss alone at this RTT and jitter: what both relays apply to every codec. */
function legacyMos(lossPct: number, rttUs: number, jitterMs: number): number {
  const eff = Math.floor(rttUs / 1000) + 2 * jitterMs + 10;
  let r = eff < 160 ? 93.2 - eff / 40 : 93.2 - (eff - 120) / 10;
  r -= 2.5 * lossPct;
  if (r < 0) return 10;
  if (r > 100) return 45;
  return Math.max(10, Math.floor((1 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r)) * 10 + 1e-9));
}

describe.each([
  { pt: 9, rtpmap: 'G722/8000' },
  { pt: 96, rtpmap: 'opus/48000/2' },
])('MOS of a $rtpmap call, side by side with rtpengine 10.5', (codec) => {
  it('scores each SSRC as rtpengine does (its G.711 formula, from the reported loss, RTT and jitter)', async () => {
    const reference = await averageMos(startRtpengine, codec);
    const candidate = await averageMos(startNgrelay, codec);
    for (const [name, dict] of [['rtpengine', reference], ['ngrelay', candidate]] as const) {
      for (const ssrc of [SSRC_A, SSRC_B]) {
        const expected = legacyMos(figure(dict, ssrc, 'packet loss'), figure(dict, ssrc, 'round-trip time'), figure(dict, ssrc, 'jitter'));
        // Averages of several samples, each truncated: within 1 of the formula applied to the averages.
        expect(Math.abs(figure(dict, ssrc, 'MOS') - expected), `${name} SSRC ${ssrc}`).toBeLessThanOrEqual(1);
      }
    }
    for (const ssrc of [SSRC_A, SSRC_B]) {
      expect(Math.abs(figure(candidate, ssrc, 'MOS') - figure(reference, ssrc, 'MOS'))).toBeLessThanOrEqual(2);
    }
  }, 120_000);
});
