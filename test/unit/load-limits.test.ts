import { describe, expect, it } from 'vitest';
import {
  BANDWIDTH_LIMIT_MESSAGE,
  CPU_LIMIT_MESSAGE,
  LimitValueError,
  LOAD_LIMIT_MESSAGE,
  LoadLimits,
  SESSION_LIMIT_MESSAGE,
  SystemLoadProbe,
  type LoadProbe,
} from '../../src/commands/load-limits';
import { BencodeError, bencodeLength } from '../../src/ng/bencode';

const OFF = { maxSessions: -1, maxLoad: 0, maxCpu: 0, maxBandwidth: 0 };

function probe(load: number, cpu: number, bytes: number): LoadProbe {
  return { loadAverage: () => load, cpuPercent: () => cpu, bytesPerSecond: () => bytes };
}

describe('LoadLimits', () => {
  it('refuses nothing when every limit is off, however loaded the machine', () => {
    expect(new LoadLimits(OFF, probe(99, 100, 1e12)).refusal(1e6)).toBeNull();
  });

  it('refuses at max-sessions calls (0 = refuse all), not below', () => {
    const limits = new LoadLimits({ ...OFF, maxSessions: 3 }, probe(0, 0, 0));
    expect(limits.refusal(2)).toBeNull();
    expect(limits.refusal(3)).toBe(SESSION_LIMIT_MESSAGE);
    limits.setMaxSessions(0);
    expect(limits.refusal(0)).toBe(SESSION_LIMIT_MESSAGE);
    limits.setMaxSessions(-1);
    expect(limits.refusal(1000)).toBeNull();
  });

  it('names the first limit reached in rtpengine\'s order: sessions, load, CPU, bandwidth', () => {
    const all = { maxSessions: 1, maxLoad: 2, maxCpu: 50, maxBandwidth: 1000 };
    expect(new LoadLimits(all, probe(2, 50, 1000)).refusal(1)).toBe(SESSION_LIMIT_MESSAGE);
    expect(new LoadLimits(all, probe(2, 50, 1000)).refusal(0)).toBe(LOAD_LIMIT_MESSAGE);
    expect(new LoadLimits(all, probe(1.99, 50, 1000)).refusal(0)).toBe(CPU_LIMIT_MESSAGE);
    expect(new LoadLimits(all, probe(1.99, 49.9, 1000)).refusal(0)).toBe(BANDWIDTH_LIMIT_MESSAGE);
    expect(new LoadLimits(all, probe(1.99, 49.9, 999)).refusal(0)).toBeNull();
  });

  it('refuses a max-sessions value below -1 or not an integer with LimitValueError', () => {
    const limits = new LoadLimits(OFF, probe(0, 0, 0));
    expect(() => limits.setMaxSessions(-2)).toThrow(LimitValueError);
    expect(() => limits.setMaxSessions(1.5)).toThrow(LimitValueError);
    expect(limits.current.maxSessions).toBe(-1);
  });
});

describe('SystemLoadProbe', () => {
  it('measures relayed bytes per second between samples at least a second apart', () => {
    let bytes = 0;
    let now = 0;
    const p = new SystemLoadProbe(() => bytes, () => now);
    bytes = 5000;
    now = 500;
    expect(p.bytesPerSecond()).toBe(0); // too soon: the first sample (0 B/s) stands
    now = 2000;
    expect(p.bytesPerSecond()).toBe(2500);
  });
});

describe('bencodeLength (TCP framing)', () => {
  it('gives the length of the first complete value, null while it is cut short, and throws for garbage', () => {
    expect(bencodeLength(Buffer.from('d7:command4:pingeXYZ'))).toBe(17);
    expect(bencodeLength(Buffer.from('d7:command4:pi'))).toBeNull();
    expect(bencodeLength(Buffer.from(''))).toBeNull();
    expect(() => bencodeLength(Buffer.from('xyz'))).toThrow(BencodeError);
  });
});
