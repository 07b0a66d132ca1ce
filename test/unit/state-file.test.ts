import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { expectThrows } from '../support/errors';
import { STATE_FORMAT_VERSION, StateFileError, decodeStateFile, encodeStateFile, writeFileAtomic } from '../../src/state/state-file';
import { CallStore, StateDirError } from '../../src/state/call-store';
import type { CallState } from '../../src/call/state';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(path.join(tmpdir(), 'ngrelay-statefile-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(StateFileError);
    return (err as StateFileError).reason;
  }
  throw new Error('did not throw');
}

const call = (callId: string): CallState => ({
  callId,
  createdMs: 1,
  lastSignalMs: 2,
  answeredMs: null,
  monologues: [],
  deleteAtMs: null,
  loopToken: 'abc',
  recordCall: false,
  metadata: null,
  recording: null,
  nextMonologueKey: 1,
  endReason: null,
});

describe('state file format', () => {
  it('round-trips a value with nulls, undefined and buffers', () => {
    const value = { a: null, b: undefined, c: [1, 'x', { d: true }], e: Buffer.from([1, 2]) };
    expect(decodeStateFile('call', encodeStateFile('call', value))).toEqual(value);
  });

  it('refuses a truncated file, a damaged one, a file of another version or kind, and a foreign file', () => {
    const bytes = encodeStateFile('call', { hello: 'world' });
    expect(reasonOf(() => decodeStateFile('call', bytes.subarray(0, bytes.length - 3)))).toBe('truncated');
    expect(reasonOf(() => decodeStateFile('call', bytes.subarray(0, 10)))).toBe('truncated');
    const damaged = Buffer.from(bytes);
    damaged.writeUInt8(damaged.readUInt8(damaged.length - 2) ^ 0x40, damaged.length - 2);
    expect(reasonOf(() => decodeStateFile('call', damaged))).toBe('corrupt');
    const other = Buffer.from(bytes);
    other.writeUInt16BE(STATE_FORMAT_VERSION + 1, 4);
    expect(reasonOf(() => decodeStateFile('call', other))).toBe('other-version');
    expectThrows(() => decodeStateFile('call', other), StateFileError, /another ngrelay version/);
    expect(reasonOf(() => decodeStateFile('progress', bytes))).toBe('wrong-kind');
    expect(reasonOf(() => decodeStateFile('call', Buffer.from('{"json": "not ours"}')))).toBe('not-a-state-file');
  });

  it('writes atomically: no temporary file stays, the content is the new one', () => {
    const dir = tempDir();
    const file = path.join(dir, 'x');
    writeFileAtomic(file, Buffer.from('one'), false);
    writeFileAtomic(file, Buffer.from('two'), true);
    expect(readdirSync(dir)).toEqual(['x']);
  });
});

describe('CallStore', () => {
  it('a state dir whose parent is missing stops the start with StateDirError naming it', () => {
    const dir = path.join(tempDir(), 'missing', 'state');
    expect(() => new CallStore(dir, false).prepare()).toThrow(StateDirError);
    expect(() => new CallStore(dir, false).prepare()).toThrow(`state directory ${dir} (--state-dir)`);
  });

  it('loads the good call files, sets the bad ones aside as *.rejected and drops leftover temporary files', () => {
    const dir = tempDir();
    const store = new CallStore(dir, false);
    store.prepare();
    store.writeCall(call('good'), 10);
    store.writeCall(call('old'), 10);
    const old = store.fileOf('old');
    const bytes = encodeStateFile('call', { writtenMs: 1, call: call('old') });
    bytes.writeUInt16BE(STATE_FORMAT_VERSION + 1, 4);
    writeFileSync(old, bytes);
    writeFileSync(`${store.fileOf('torn')}.tmp`, Buffer.from('NGRS'));
    store.prepare();
    const loaded = store.load();
    expect(loaded.calls.map((c) => c.callId)).toEqual(['good']);
    expect(loaded.skipped).toHaveLength(1);
    expect(loaded.skipped[0]?.reason).toBe('other-version');
    expect(readdirSync(store.callsDir).sort()).toEqual([path.basename(store.fileOf('good')), `${path.basename(old)}.rejected`].sort());
    store.removeCall('good');
    store.removeCall('never-there');
    expect(store.load().calls).toEqual([]);
  });
});
