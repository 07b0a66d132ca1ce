/**
 * The native binding checks every field of addStream's two objects (StreamSocketSpec, StreamRule) and of
 * updateStream's rule: a missing or mistyped field throws a TypeError that names it, and nothing is bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, StreamRule, StreamSocketSpec } from '../../src/dataplane/types';
import { portFree, PortRuns, streamRule } from '../support/dataplane-fixtures';
import { expectThrows } from '../support/errors';

const LO = '127.0.0.1';
const ports = new PortRuns(44000, 44999);
let engine: DataPlane;

beforeAll(() => {
  engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0 });
});
afterAll(() => engine.close());

const ice = {
  localUfrag: 'lUfr',
  localPwd: 'local-password-0123456789',
  remoteUfrag: null,
  remotePwd: null,
  controlling: false,
  lite: true,
  tieBreaker: '0123456789abcdef',
  remoteCandidates: [],
};

/** Returns `value` with `path` (dotted) deleted or replaced. */
function alter<T extends object>(value: T, path: string, replacement: unknown | typeof DELETE): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  const keys = path.split('.');
  let o = copy;
  for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
  const last = keys[keys.length - 1]!;
  if (replacement === DELETE) delete o[last];
  else o[last] = replacement;
  return copy as T;
}
const DELETE = Symbol('delete');

describe('native binding: field checks of addStream(spec, rule) and updateStream(id, rule)', () => {
  const fullRule = (): StreamRule =>
    streamRule({
      expected: { family: 'IPv4', address: LO, port: 4000 },
      crypto: {
        inbound: { suite: 'AES_CM_128_HMAC_SHA1_80', key: Buffer.alloc(16, 1), salt: Buffer.alloc(14, 2), unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false },
        outbound: null,
        recrypt: false,
      },
      ice,
      dtls: { role: 'passive', remoteFingerprint: { hash: 'sha-256', value: Buffer.alloc(32, 3) }, generation: 1 },
    });

  it('accepts a complete spec and rule (the reference for the cases below)', async () => {
    const port = await ports.take(2, LO);
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, fullRule());
    engine.updateStream(1, fullRule());
    engine.removeStream(1);
  });

  const required: [string, unknown][] = [
    ['expected', 'x'],
    ['learning', 3],
    ['strictSource', 'yes'],
    ['mediaHandover', 1],
    ['asymmetric', null],
    ['sink', 'two'],
    ['signalGeneration', null],
    ['expected.port', '4000'],
    ['expected.address', 5],
    ['expected.family', 'IPv5'],
    ['crypto.recrypt', 0],
    ['crypto.inbound.key', 'k'],
    ['crypto.inbound.unencryptedSrtp', 'no'],
    ['ice.localUfrag', 1],
    ['ice.localPwd', null],
    ['ice.remoteUfrag', 7],
    ['ice.controlling', 'no'],
    ['ice.lite', 1],
    ['ice.tieBreaker', 'xyz'],
    ['ice.remoteCandidates', {}],
    ['dtls.role', 'both'],
    ['dtls.generation', '1'],
    ['dtls.remoteFingerprint.value', 'AB:CD'],
  ];

  for (const [field, wrong] of required) {
    it(`rule.${field}: missing or mistyped throws a TypeError naming it, and binds nothing`, async () => {
      const port = await ports.take(2, LO);
      const spec: StreamSocketSpec = { id: 2, component: 'rtp', localAddress: LO, localPort: port };
      const name = new RegExp(`rule\\.${field.replace(/\./g, '\\.')}\\b`);
      expect(() => engine.addStream(spec, alter(fullRule(), field, DELETE))).toThrow(TypeError);
      expect(() => engine.addStream(spec, alter(fullRule(), field, DELETE))).toThrow(name);
      expect(() => engine.addStream(spec, alter(fullRule(), field, wrong))).toThrow(name);
      expect(await portFree(port, LO)).toBe(true);
    });
  }

  it('optional rule fields may be absent but not mistyped', async () => {
    const port = await ports.take(2, LO);
    const spec: StreamSocketSpec = { id: 3, component: 'rtp', localAddress: LO, localPort: port };
    for (const [field, wrong] of [['blockMedia', 'no'], ['silenceMedia', 1], ['blockDtmf', 'x'], ['clockRate', '8000'], ['dtmfPayloadType', 'pt']] as const) {
      expectThrows(() => engine.addStream(spec, alter(fullRule(), field, wrong)), TypeError, new RegExp(`rule\\.${field}\\b`));
    }
    engine.addStream(spec, fullRule());
    engine.removeStream(3);
  });

  it('updateStream checks its rule the same way and keeps the old one', async () => {
    const port = await ports.take(2, LO);
    engine.addStream({ id: 4, component: 'rtp', localAddress: LO, localPort: port }, fullRule());
    expectThrows(() => engine.updateStream(4, alter(fullRule(), 'ice.localPwd', DELETE)), TypeError, /rule\.ice\.localPwd\b/);
    expect(() => engine.updateStream(4, alter(fullRule(), 'strictSource', DELETE))).toThrow(TypeError);
    engine.removeStream(4);
  });

  for (const [field, wrong] of [['id', '1'], ['component', 'rtx'], ['localAddress', 1], ['localPort', '3']] as const) {
    it(`spec.${field}: missing or mistyped throws naming it`, async () => {
      const port = await ports.take(2, LO);
      const spec: StreamSocketSpec = { id: 5, component: 'rtp', localAddress: LO, localPort: port };
      expectThrows(() => engine.addStream(alter(spec, field, DELETE), fullRule()), TypeError, new RegExp(`spec\\.${field}\\b`));
      expectThrows(() => engine.addStream(alter(spec, field, wrong), fullRule()), TypeError, new RegExp(`spec\\.${field}\\b`));
      expect(await portFree(port, LO)).toBe(true);
    });
  }
});
