/**
 * The engine's RTCP parser (native/src/rtcp.cpp) on built packets: every field of SR/RR/XR as sent, compound
 * and reduced-size packets, and each malformed form refused with its reason (the engine then counts and drops).
 */
import { describe, expect, it } from 'vitest';
import { rtcpTestBinding } from '../../src/dataplane/rtcp-binding';
import { bye, nack, rr, sdes, sr, xrVoip } from '../support/rtcp-builders';

const { parse, mos } = rtcpTestBinding();

describe('RTCP parser', () => {
  it('reads an SR with a report block: sender info, NTP middle bits and every block field', () => {
    const pkt = Buffer.concat([
      sr(0x11111111, 0xe1234567, 0x89abcdef, [
        { ssrc: 0x22222222, fractionLost: 25, cumulativeLost: 38, extHighestSeq: 0x10005, jitter: 77, lsr: 0x45678900, dlsr: 65536 },
      ]),
      sdes(0x11111111, 'alice@example'),
    ]);
    const v = parse(pkt);
    if (v.error !== null) throw new Error(v.error);
    expect(v.packets).toBe(2);
    expect(v.sr).toEqual({ ssrc: 0x11111111, ntpMiddle: 0x456789ab, rtpTimestamp: 12345, packets: 100, octets: 16000 });
    expect(v.reporterSsrc).toBe(0x11111111);
    expect(v.blocks).toEqual([
      { ssrc: 0x22222222, fractionLost: 25, cumulativeLost: 38, extHighestSeq: 0x10005, jitter: 77, lsr: 0x45678900, dlsr: 65536 },
    ]);
    expect(v.sdes).toBe(1);
  });

  it('reads a negative cumulative loss (duplicates) as the 24-bit signed value it is', () => {
    const v = parse(rr(5, [{ ssrc: 6, cumulativeLost: -3 }]));
    if (v.error !== null) throw new Error(v.error);
    expect(v.blocks[0]?.cumulativeLost).toBe(-3);
  });

  it('reads RR + SDES + BYE compounds and XR VoIP metrics', () => {
    const v = parse(Buffer.concat([rr(7, [{ ssrc: 8, fractionLost: 51 }]), sdes(7, 'b'), xrVoip(7, 8, { lossRate: 20, roundTripDelayMs: 120, mosLq: 38, mosCq: 36 }), bye(7)]));
    if (v.error !== null) throw new Error(v.error);
    expect(v.packets).toBe(4);
    expect(v.sr).toBeNull();
    expect(v.reporterSsrc).toBe(7);
    expect(v.bye).toBe(1);
    expect(v.xr).toBe(1);
    expect(v.xrVoip).toMatchObject({ ssrc: 8, lossRate: 20, roundTripDelayMs: 120, mosLq: 38, mosCq: 36 });
  });

  it('accepts reduced-size RTCP (RFC 5506): a lone feedback packet without SR/RR', () => {
    const v = parse(nack(1, 2));
    if (v.error !== null) throw new Error(v.error);
    expect(v.feedback).toBe(1);
    expect(v.reporterSsrc).toBeNull();
  });

  it('keeps 8 report blocks of an RR with 31 and counts the rest', () => {
    const blocks = Array.from({ length: 31 }, (_, i) => ({ ssrc: i + 1 }));
    const v = parse(rr(9, blocks));
    if (v.error !== null) throw new Error(v.error);
    expect(v.blocks).toHaveLength(8);
    expect(v.blocksSkipped).toBe(23);
  });

  describe('refuses malformed packets with their reason', () => {
    const good = Buffer.concat([rr(1, [{ ssrc: 2 }]), sdes(1, 'x')]);

    it('truncated: shorter than a header, or cut inside a sub-packet', () => {
      expect(parse(Buffer.from([0x80, 201])).error).toBe('truncated');
      expect(parse(good.subarray(0, good.length - 4)).error).toBe('truncated');
    });

    it('a length word pointing past the end', () => {
      const bad = Buffer.from(good);
      bad.writeUInt16BE(200, 2);
      expect(parse(bad).error).toBe('truncated');
    });

    it('a lying report count (more blocks than the length holds)', () => {
      const bad = Buffer.from(good);
      bad[0] = 0x80 | 3;
      expect(parse(bad).error).toBe('bad-count');
      const srBad = sr(1, 2, 3);
      srBad[0] = 0x81;
      expect(parse(srBad).error).toBe('bad-count');
    });

    it('a second sub-packet that is not RTCP or not version 2', () => {
      const notRtcp = Buffer.concat([rr(1), Buffer.from([0x80, 0x00, 0x00, 0x00])]);
      expect(parse(notRtcp).error).toBe('bad-type');
      const v1 = Buffer.concat([rr(1), sdes(1, 'x')]);
      v1[8] = 0x41;
      expect(parse(v1).error).toBe('bad-version');
    });

    it('a looping compound: more sub-packets than any real one has', () => {
      const many = Buffer.concat(Array.from({ length: 40 }, () => rr(1)));
      expect(parse(many).error).toBe('too-many-packets');
    });

    it('padding on a sub-packet that is not the last, or a padding count larger than the packet', () => {
      const first = rr(1);
      first[0] = first[0]! | 0x20;
      expect(parse(Buffer.concat([first, sdes(1, 'x')])).error).toBe('bad-padding');
      const last = rr(1);
      last[0] = last[0]! | 0x20;
      last[last.length - 1] = 200;
      expect(parse(last).error).toBe('bad-padding');
    });

    it('an XR block whose length runs past its packet', () => {
      const x = xrVoip(1, 2, { lossRate: 0, roundTripDelayMs: 0, mosLq: 0, mosCq: 0 });
      x.writeUInt16BE(20, 10);
      expect(parse(x).error).toBe('truncated');
    });
  });
});

describe("MOS, as rtpengine 10.5 computes it (×10)", () => {
  it('matches rtpengine figures seen side by side', () => {
    // From rtpengine 10.5 replies: 64 ms RTT, 9 ms jitter, 9 % loss -> 35; 64 ms, 0 ms, 0 % -> 43.
    expect(mos(64344, 9, 9)).toBe(35);
    expect(mos(63781, 0, 0)).toBe(43);
  });

  it('falls with loss and latency, and stays within 1.0 .. 4.5', () => {
    expect(mos(20000, 0, 0)).toBe(43);
    expect(mos(20000, 0, 5)).toBeLessThan(mos(20000, 0, 0));
    expect(mos(400000, 0, 0)).toBeLessThan(mos(100000, 0, 0));
    expect(mos(0, 0, 100)).toBe(10);
  });
});
