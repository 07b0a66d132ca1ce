/**
 * The packed rule (src/dataplane/rule-packing.ts ↔ native/src/addon.cpp ruleFromJs): both sides hold the slot
 * layout, and they must agree; the packer checks every field's type with the contract's messages.
 */
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { LEARNING_CODES, RULE_SLOTS, RulePacker, checkRuleLayout, type NativeRuleLayout } from '../../src/dataplane/rule-packing';
import type { StreamRule } from '../../src/dataplane/types';
import { expectThrows } from '../support/errors';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = require(path.join(__dirname, '..', '..', 'native', 'build', 'Release', 'ngrelay_engine.node')) as { ruleLayout: NativeRuleLayout };

const base: StreamRule = {
  expected: { family: 'IPv6', address: '::1', port: 4002 },
  learning: 'delayed',
  strictSource: true,
  mediaHandover: false,
  asymmetric: false,
  sink: 7,
  signalGeneration: 3,
};

function slotsOf(rule: StreamRule): Record<string, number> {
  const p = new RulePacker();
  p.pack(rule);
  return Object.fromEntries(RULE_SLOTS.map((name, i) => [name, p.slots[i]!]));
}

describe('packed stream rules', () => {
  it('the addon was built with the same slot layout and learning codes', () => {
    expect(addon.ruleLayout).toEqual({ slots: [...RULE_SLOTS], learning: [...LEARNING_CODES] });
    expect(() => checkRuleLayout(addon.ruleLayout)).not.toThrow();
    expect(() => checkRuleLayout({ slots: [...RULE_SLOTS].reverse(), learning: [...LEARNING_CODES] })).toThrow(/rebuild/);
    expect(() => checkRuleLayout(undefined)).toThrow(/rebuild/);
  });

  it('packs each field into its slot; absent optional fields take their "none" codes', () => {
    expect(slotsOf(base)).toEqual({
      'expected.family': 6,
      'expected.port': 4002,
      learning: LEARNING_CODES.indexOf('delayed'),
      strictSource: 1,
      mediaHandover: 0,
      asymmetric: 0,
      sink: 7,
      signalGeneration: 3,
      clockRate: 0,
      blockMedia: 0,
      silenceMedia: 0,
      dtmfPayloadType: -1,
      blockDtmf: 0,
      dtmfReplace: -1,
      forwardIceDtls: 0,
    });
    const more = slotsOf({ ...base, expected: null, sink: null, clockRate: 48000, dtmfPayloadType: 101, blockDtmf: true, dtmfReplace: 'random', forwardIceDtls: true });
    expect(more).toMatchObject({ 'expected.family': 0, sink: -1, clockRate: 48000, dtmfPayloadType: 101, blockDtmf: 1, dtmfReplace: -2, forwardIceDtls: 1 });
    expect(slotsOf({ ...base, dtmfReplace: 5 }).dtmfReplace).toBe(5);
  });

  it('an odd clock rate or payload type from an SDP means none, as before', () => {
    expect(slotsOf({ ...base, clockRate: 8000.5 }).clockRate).toBe(0);
    expect(slotsOf({ ...base, dtmfPayloadType: 200 }).dtmfPayloadType).toBe(-1);
  });

  it('hands the nested objects over only when the rule has one', () => {
    const p = new RulePacker();
    p.pack(base);
    expect([p.address, p.extras]).toEqual(['::1', null]);
    const withBundle = { ...base, bundle: { transport: 1, mid: '0', midExtensionId: null, payloadTypes: [0] } };
    p.pack(withBundle);
    expect(p.extras).toBe(withBundle);
  });

  it('a mistyped field throws a TypeError naming it', () => {
    const cases: [keyof StreamRule | 'expected.port', unknown][] = [
      ['learning', 'sometimes'],
      ['dtmfReplace', 16],
      ['dtmfReplace', 'x'],
      ['forwardIceDtls', 'yes'],
      ['sink', undefined],
    ];
    for (const [field, wrong] of cases) {
      const rule = { ...base, [field]: wrong } as unknown as StreamRule;
      expectThrows(() => new RulePacker().pack(rule), TypeError, new RegExp(`rule\\.${field}\\b`));
    }
    const badPort = { ...base, expected: { family: 'IPv4', address: '127.0.0.1', port: '1' } } as unknown as StreamRule;
    expectThrows(() => new RulePacker().pack(badPort), TypeError, /rule\.expected\.port\b/);
  });

  it('the addon checks the ranges: an address of the other family or a port beyond 65535 is refused, naming the field', () => {
    const dp = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0 });
    try {
      const spec = { id: 1, component: 'rtp' as const, localAddress: '127.0.0.1', localPort: 0 };
      expectThrows(() => dp.addStream(spec, { ...base, expected: { family: 'IPv4', address: '::1', port: 4000 } }), TypeError, /rule\.expected\.address\b/);
      expectThrows(() => dp.addStream(spec, { ...base, expected: { family: 'IPv4', address: '127.0.0.1', port: 70000 } }), TypeError, /rule\.expected\.port\b/);
      expectThrows(() => dp.addStream(spec, { ...base, sink: -5 }), TypeError, /rule\.sink\b/);
      expectThrows(() => dp.addStream(spec, { ...base, signalGeneration: Number.NaN }), TypeError, /rule\.signalGeneration\b/);
    } finally {
      dp.close();
    }
  });
});
