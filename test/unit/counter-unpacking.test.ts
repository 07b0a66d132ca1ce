/** Stream counters read back packed (src/dataplane/counter-unpacking.ts ↔ native/src/addon.cpp ReadCounters). */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { COUNTER_SLOTS, CounterBuffer, checkCounterLayout, unpackCounters } from '../../src/dataplane/counter-unpacking';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = require(path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'ngrelay_engine.node')) as { counterLayout: string[] };

function row(values: Partial<Record<(typeof COUNTER_SLOTS)[number], number>>): Float64Array {
  const slots = new Float64Array(COUNTER_SLOTS.length);
  for (const [k, v] of Object.entries(values)) slots[COUNTER_SLOTS.indexOf(k as (typeof COUNTER_SLOTS)[number])] = v;
  return slots;
}

describe('packed stream counters', () => {
  it('the addon was built with the same layout', () => {
    expect(addon.counterLayout).toEqual([...COUNTER_SLOTS]);
    expect(() => checkCounterLayout(addon.counterLayout)).not.toThrow();
    expect(() => checkCounterLayout(addon.counterLayout.slice(1))).toThrow(/rebuild/);
  });

  it('an absent stream is null; a plain one has exactly the fields it always had', () => {
    expect(unpackCounters(row({}), 0, null)).toBeNull();
    const plain = unpackCounters(row({ present: 1, packets: 5, bytes: 860, errors: 1, lastPacketMs: 1e12, 'endpoint.family': 4, 'endpoint.port': 4000, confirmed: 1, hasRtp: 1, ssrc: 0xdeadbeef, lastSeq: 65535 }), 0, '127.0.0.1');
    expect(plain).toStrictEqual({
      packets: 5,
      bytes: 860,
      errors: 1,
      lastPacketMs: 1e12,
      endpoint: { family: 'IPv4', address: '127.0.0.1', port: 4000 },
      confirmed: true,
      ssrc: 0xdeadbeef,
      lastSeq: 65535,
    });
  });

  it('optional fields appear with their flags: SRTP, BUNDLE, kernel path, ICE/DTLS statuses', () => {
    const ice = { state: 'connected' as const, selected: null, checksReceived: 1, checksSent: 0, stunRejected: 0, consentExpired: 0, lastConsentMs: 0 };
    const c = unpackCounters(row({ present: 1, 'endpoint.family': 6, 'endpoint.port': 9, hasSrtp: 1, srtpAuthFailed: 2, srtpReplayed: 3, hasBundle: 1, bundleUnmatched: 4, kernelPath: 1, inKernel: 1, kernelPackets: 7 }), 0, { address: '::1', ice });
    expect(c).toMatchObject({ endpoint: { family: 'IPv6', address: '::1', port: 9 }, srtpAuthFailed: 2, srtpReplayed: 3, bundleUnmatched: 4, inKernel: true, kernelPackets: 7, ice, ssrc: null, lastSeq: null });
    expect(c?.dtls).toBeUndefined();
  });

  it('the buffer grows for many streams', () => {
    const b = new CounterBuffer();
    expect(b.forStreams(1000).length).toBeGreaterThanOrEqual(1000 * COUNTER_SLOTS.length);
  });
});
