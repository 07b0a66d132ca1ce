/**
 * How a StreamRule crosses into the native engine: its scalar fields packed into one Float64Array, its
 * expected address as a string, and the rule object itself only when it carries crypto, ICE, DTLS or BUNDLE
 * (those nested objects are read natively field by field). Reading every field through N-API one property
 * at a time, each key internalized per call, cost ~4 µs per rule, twelve rules per offer+answer+delete
 * (native/src/addon.cpp ruleFromJs is the other half).
 *
 * The layout is one list, RULE_SLOTS, which the addon's own (`ruleLayout`, kRuleSlotNames) must equal: the
 * loader checks that at start (a stale build fails at once, naming the difference) and a test checks it too.
 * The types are checked here, with the contract's messages ("rule.sink must be a number or null"); the
 * addon checks the ranges.
 */
import type { Endpoint, EndpointLearning, StreamRule } from './types';
import { layoutMismatch, sameNames } from './layout-check';

/** The slots in order; the names are the rule's field paths (errors name them). */
export const RULE_SLOTS = [
  'expected.family',
  'expected.port',
  'learning',
  'strictSource',
  'mediaHandover',
  'asymmetric',
  'sink',
  'signalGeneration',
  'clockRate',
  'blockMedia',
  'silenceMedia',
  'dtmfPayloadType',
  'blockDtmf',
  'dtmfReplace',
  'forwardIceDtls',
] as const;

/** Learning modes by their code in the `learning` slot. */
export const LEARNING_CODES: readonly EndpointLearning[] = ['off', 'immediate', 'delayed', 'heuristic'];

/** The addon's export that must agree with RULE_SLOTS and LEARNING_CODES. */
export interface NativeRuleLayout {
  slots: string[];
  learning: string[];
}

/** Throws when the addon was built with another layout (a stale native build). */
export function checkRuleLayout(native: NativeRuleLayout | undefined): void {
  if (!native || !sameNames(RULE_SLOTS, native.slots) || !sameNames(LEARNING_CODES, native.learning))
    throw layoutMismatch('rule', native, 'src/dataplane/rule-packing.ts', `${RULE_SLOTS.join(',')}; ${LEARNING_CODES.join(',')}`);
}

type SlotName = (typeof RULE_SLOTS)[number];
/** Each slot's index, from RULE_SLOTS. */
const SLOT = Object.fromEntries(RULE_SLOTS.map((name, i) => [name, i])) as Record<SlotName, number>;

function fail(field: string, what: string): never {
  throw new TypeError(`rule.${field} must be ${what}`);
}

function required(rule: StreamRule, field: 'strictSource' | 'mediaHandover' | 'asymmetric'): number {
  const v: unknown = rule[field];
  if (typeof v !== 'boolean') fail(field, 'a boolean');
  return v ? 1 : 0;
}

function optional(rule: StreamRule, field: 'blockMedia' | 'silenceMedia' | 'blockDtmf' | 'forwardIceDtls'): number {
  const v: unknown = rule[field];
  if (v === undefined) return 0;
  if (typeof v !== 'boolean') fail(field, 'a boolean or absent');
  return v ? 1 : 0;
}

/**
 * One reusable set of arguments for the addon's addStream/updateStream. pack() overwrites them: call the
 * addon before the next pack() (every call is synchronous).
 */
export class RulePacker {
  readonly slots = new Float64Array(RULE_SLOTS.length);
  address: string | null = null;
  extras: StreamRule | null = null;

  pack(rule: StreamRule): void {
    const s = this.slots;
    this.packExpected(rule.expected as unknown);
    const learning = LEARNING_CODES.indexOf(rule.learning);
    if (learning < 0) fail('learning', `one of ${LEARNING_CODES.join(', ')}`);
    s[SLOT.learning] = learning;
    s[SLOT.strictSource] = required(rule, 'strictSource');
    s[SLOT.mediaHandover] = required(rule, 'mediaHandover');
    s[SLOT.asymmetric] = required(rule, 'asymmetric');
    const sink: unknown = rule.sink;
    if (sink !== null && typeof sink !== 'number') fail('sink', 'a number or null');
    s[SLOT.sink] = sink === null ? -1 : sink;
    const generation: unknown = rule.signalGeneration;
    if (typeof generation !== 'number') fail('signalGeneration', 'a number');
    s[SLOT.signalGeneration] = generation;
    const clock: unknown = rule.clockRate;
    if (clock !== undefined && typeof clock !== 'number') fail('clockRate', 'a number or absent');
    // An odd rate from an SDP (fractional, zero) means the default 8000, as it always did.
    s[SLOT.clockRate] = clock !== undefined && Number.isInteger(clock) && clock >= 1 && clock <= 0xffffffff ? clock : 0;
    s[SLOT.blockMedia] = optional(rule, 'blockMedia');
    s[SLOT.silenceMedia] = optional(rule, 'silenceMedia');
    const pt: unknown = rule.dtmfPayloadType;
    if (pt !== undefined && pt !== null && typeof pt !== 'number') fail('dtmfPayloadType', 'a number, null or absent');
    s[SLOT.dtmfPayloadType] = typeof pt === 'number' && Number.isInteger(pt) && pt >= 0 && pt < 128 ? pt : -1;
    s[SLOT.blockDtmf] = optional(rule, 'blockDtmf');
    const replace: unknown = rule.dtmfReplace;
    if (replace === undefined || replace === null) s[SLOT.dtmfReplace] = -1;
    else if (replace === 'random') s[SLOT.dtmfReplace] = -2;
    else if (typeof replace === 'number' && Number.isInteger(replace) && replace >= 0 && replace < 16) s[SLOT.dtmfReplace] = replace;
    else fail('dtmfReplace', "0..15, 'random', null or absent");
    s[SLOT.forwardIceDtls] = optional(rule, 'forwardIceDtls');
    // Checked natively, field by field: present on SRTP and WebRTC streams only.
    this.extras = rule.crypto || rule.ice || rule.dtls || rule.bundle ? rule : null;
  }

  private packExpected(expected: unknown): void {
    const s = this.slots;
    if (expected === null) {
      s[SLOT['expected.family']] = 0;
      s[SLOT['expected.port']] = 0;
      this.address = null;
      return;
    }
    if (typeof expected !== 'object') fail('expected', 'an endpoint or null');
    const e = expected as Partial<Endpoint>;
    if (e.family !== 'IPv4' && e.family !== 'IPv6') fail('expected.family', "'IPv4' or 'IPv6'");
    if (typeof e.address !== 'string') fail('expected.address', 'a string');
    if (typeof e.port !== 'number') fail('expected.port', 'a number');
    s[SLOT['expected.family']] = e.family === 'IPv4' ? 4 : 6;
    s[SLOT['expected.port']] = e.port;
    this.address = e.address;
  }
}
