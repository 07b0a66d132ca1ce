import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BencodeError, MAX_DEPTH, decode, decodeDict, encode, type BencodeErrorCode } from '../../src/ng/bencode';
import type { NgDict, NgValue } from '../../src/ng/types';

const TRANSCRIPTS = '/work/shared/reference/rtpengine-10.5-transcripts';

function dict(entries: Array<[string, NgValue]>): NgDict {
  const d = Object.create(null) as NgDict;
  for (const [k, v] of entries) d[k] = v;
  return d;
}

function b(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function errorCode(input: Buffer, fn: (x: Buffer) => unknown = decode): BencodeErrorCode | 'none' {
  try {
    fn(input);
    return 'none';
  } catch (e) {
    if (e instanceof BencodeError) return e.code;
    throw e;
  }
}

/** Transcript payloads: `<cookie> <bencode>` per file. */
function transcriptBodies(): Array<{ name: string; body: Buffer }> {
  return readdirSync(TRANSCRIPTS)
    .filter((f) => f.endsWith('.bin'))
    .sort()
    .map((f) => {
      const msg = readFileSync(path.join(TRANSCRIPTS, f));
      return { name: f, body: msg.subarray(msg.indexOf(0x20) + 1) };
    });
}

/** Makes values comparable across our decoder and the npm oracle (Uint8Array strings, plain objects). */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bytes: Buffer.from(v).toString('hex') };
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v)) o[k] = plain((v as Record<string, unknown>)[k]);
    return o;
  }
  return v;
}

function sortKeysDeep(v: NgValue): NgValue {
  if (Buffer.isBuffer(v) || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  const out = Object.create(null) as NgDict;
  for (const k of Object.keys(v).sort()) out[k] = sortKeysDeep(v[k]!);
  return out;
}

describe('bencode decode', () => {
  it('decodes every type', () => {
    const v = decode(b('d3:str5:hello3:inti-42e4:listli1e2:abe4:dictd1:x0:ee')) as NgDict;
    expect(Object.keys(v)).toEqual(['str', 'int', 'list', 'dict']);
    expect((v['str'] as Buffer).toString()).toBe('hello');
    expect(v['int']).toBe(-42);
    const list = v['list'] as NgValue[];
    expect(list[0]).toBe(1);
    expect((list[1] as Buffer).toString()).toBe('ab');
    expect(((v['dict'] as NgDict)['x'] as Buffer).length).toBe(0);
  });

  it('keeps wire key order, unsorted', () => {
    const v = decode(b('d1:zi1e1:ai2e1:mi3ee')) as NgDict;
    expect(Object.keys(v)).toEqual(['z', 'a', 'm']);
  });

  it('returns dicts without a prototype, so __proto__ is an ordinary key', () => {
    const v = decode(b('d9:__proto__i5e8:toString3:abce')) as NgDict;
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(v['__proto__']).toBe(5);
    expect(Object.keys(v)).toEqual(['__proto__', 'toString']);
  });

  it('lets the last of repeated keys win, at the first position', () => {
    const v = decode(b('d1:ai1e1:bi2e1:ai3ee')) as NgDict;
    expect(Object.keys(v)).toEqual(['a', 'b']);
    expect(v['a']).toBe(3);
  });

  it('is zero-copy: strings are views of the input', () => {
    const input = b('d3:sdp4:v=0\re');
    const v = decode(input) as NgDict;
    const sdp = v['sdp'] as Buffer;
    expect(sdp.buffer).toBe(input.buffer);
    input[input.length - 2] = 0x41; // the '\r' inside the SDP
    expect(sdp.toString('latin1')).toBe('v=0A');
  });

  it('keeps an SDP with CRLF and non-UTF-8 bytes byte-exact', () => {
    const sdp = Buffer.concat([b('v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns='), Buffer.from([0xff, 0xfe, 0x80, 0x00, 0xc3]), b('\r\n')]);
    const msg = Buffer.concat([b(`d7:command5:offer3:sdp${sdp.length}:`), sdp, b('e')]);
    const v = decode(msg) as NgDict;
    expect(Buffer.compare(v['sdp'] as Buffer, sdp)).toBe(0);
    expect(Buffer.compare(encode(v), msg)).toBe(0);
  });

  it('decodes integers at the safe-integer limits', () => {
    expect(decode(b(`i${Number.MAX_SAFE_INTEGER}e`))).toBe(Number.MAX_SAFE_INTEGER);
    expect(decode(b(`i-${Number.MAX_SAFE_INTEGER}e`))).toBe(-Number.MAX_SAFE_INTEGER);
    expect(decode(b('i0e'))).toBe(0);
    expect(decode(b('0:'))).toEqual(Buffer.alloc(0));
  });

  it('decodes keys as latin1, losslessly', () => {
    const v = decode(Buffer.concat([b('d2:'), Buffer.from([0xc3, 0xff]), b('i1ee')])) as NgDict;
    const key = Object.keys(v)[0]!;
    expect(key).toBe('\u00c3\u00ff');
    expect(Buffer.compare(encode(v), Buffer.concat([b('d2:'), Buffer.from([0xc3, 0xff]), b('i1ee')]))).toBe(0);
  });

  const malformed: Array<[string, string, BencodeErrorCode]> = [
    ['empty input', '', 'truncated'],
    ['truncated string', '5:abc', 'truncated'],
    ['truncated string length', '12', 'truncated'],
    ['truncated dict', 'd3:abc', 'truncated'],
    ['dict with key but no value', 'd3:abce', 'bad-type'],
    ['unterminated dict', 'd3:abci1e', 'truncated'],
    ['unterminated list', 'li1e', 'truncated'],
    ['unterminated integer', 'i12', 'truncated'],
    ['length past the end', 'd3:sdp100:v=0e', 'truncated'],
    ['huge length', '99999999999999999999:x', 'bad-length'],
    ['leading zero in length', '03:abc', 'bad-length'],
    ['negative length', '-3:abc', 'bad-type'],
    ['length with a sign', '+3:abc', 'bad-type'],
    ['non-digit in length', '3x:abc', 'bad-length'],
    ['leading zero in integer', 'i03e', 'bad-integer'],
    ['negative zero', 'i-0e', 'bad-integer'],
    ['negative with leading zero', 'i-03e', 'bad-integer'],
    ['empty integer', 'ie', 'bad-integer'],
    ['lone minus', 'i-e', 'bad-integer'],
    ['plus sign', 'i+1e', 'bad-integer'],
    ['float', 'i1.5e', 'bad-integer'],
    ['integer beyond MAX_SAFE_INTEGER', 'i9007199254740992e', 'bad-integer'],
    ['integer far out of range', 'i123456789012345678901234567890e', 'bad-integer'],
    ['negative integer beyond range', 'i-9007199254740993e', 'bad-integer'],
    ['integer key', 'di1ei2ee', 'bad-key'],
    ['list key', 'dlee1:ae', 'bad-key'],
    ['trailing bytes', 'd1:ai1eexyz', 'trailing-bytes'],
    ['two top-level values', 'dede', 'trailing-bytes'],
    ['trailing newline', 'de\n', 'trailing-bytes'],
    ['unknown type byte', 'x', 'bad-type'],
    ['stray end', 'e', 'bad-type'],
  ];
  for (const [name, input, code] of malformed) {
    it(`rejects ${name}`, () => {
      expect(errorCode(b(input))).toBe(code);
    });
  }

  it('rejects every strict prefix of a valid message as truncated', () => {
    const msg = readFileSync(path.join(TRANSCRIPTS, '02-offer.request.bin'));
    const body = msg.subarray(msg.indexOf(0x20) + 1);
    for (let i = 0; i < body.length; i++) {
      expect(errorCode(body.subarray(0, i))).not.toBe('none');
    }
  });

  it('rejects a list nesting bomb without overflowing the stack', () => {
    expect(errorCode(Buffer.alloc(100_000, 'l'))).toBe('too-deep');
    expect(errorCode(Buffer.concat([Buffer.alloc(100_000, 'l'), Buffer.alloc(100_000, 'e')]))).toBe('too-deep');
  });

  it('rejects a dict nesting bomb', () => {
    expect(errorCode(Buffer.from('d1:a'.repeat(50_000), 'latin1'))).toBe('too-deep');
  });

  it('accepts nesting up to MAX_DEPTH and no deeper', () => {
    const ok = 'l'.repeat(MAX_DEPTH) + 'e'.repeat(MAX_DEPTH);
    expect(errorCode(b(ok))).toBe('none');
    const deep = 'l'.repeat(MAX_DEPTH + 1) + 'e'.repeat(MAX_DEPTH + 1);
    expect(errorCode(b(deep))).toBe('too-deep');
  });

  it('decodeDict rejects a top level that is not a dict', () => {
    for (const s of ['le', 'i1e', '4:ping', '']) {
      expect(errorCode(b(s), decodeDict)).not.toBe('none');
    }
    expect(errorCode(b('le'), decodeDict)).toBe('bad-type');
    expect(Object.keys(decodeDict(b('d7:command4:pinge')))).toEqual(['command']);
  });
});

describe('bencode encode', () => {
  it('writes dict keys in insertion order, not sorted', () => {
    expect(encode(dict([['result', 'error'], ['error-reason', 'Unrecognized command']])).toString()).toBe(
      'd6:result5:error12:error-reason20:Unrecognized commande',
    );
    expect(encode(dict([['z', 1], ['a', 2]])).toString()).toBe('d1:zi1e1:ai2ee');
  });

  it('writes JS strings as UTF-8 with the byte length', () => {
    expect(Buffer.compare(encode('é€'), Buffer.concat([b('5:'), Buffer.from('é€', 'utf8')]))).toBe(0);
  });

  it('writes Buffers verbatim', () => {
    const raw = Buffer.from([0, 1, 0xff, 0x0d, 0x0a]);
    expect(Buffer.compare(encode([raw]), Buffer.concat([b('l5:'), raw, b('e')]))).toBe(0);
  });

  it('writes integers, negative and zero', () => {
    expect(encode([0, -1, 42, Number.MAX_SAFE_INTEGER]).toString()).toBe(`li0ei-1ei42ei${Number.MAX_SAFE_INTEGER}ee`);
    expect(encode(-0).toString()).toBe('i0e');
  });

  it('refuses non-integers and non-ng values', () => {
    for (const bad of [1.5, NaN, Infinity, 2 ** 60]) {
      expect(() => encode(bad)).toThrow(BencodeError);
    }
    expect(() => encode([null as unknown as NgValue])).toThrow(BencodeError);
    expect(() => encode(dict([['x', true as unknown as NgValue]]))).toThrow(BencodeError);
  });

  it('round-trips nested values', () => {
    const v = dict([
      ['sdp', Buffer.from('v=0\r\n')],
      ['list', [1, 'two', [dict([['k', 'v']])], dict([])]],
      ['empty', []],
    ]);
    const again = encode(decode(encode(v)));
    expect(Buffer.compare(again, encode(v))).toBe(0);
    expect(encode(v).toString()).toBe('d3:sdp5:v=0\r\n4:listli1e3:twold1:k1:veedee5:emptylee');
  });

  it('writes every length, integer and string kind like a plain reference encoder', () => {
    // The encoder copies short strings and digits byte by byte; this checks it against Buffer's own
    // conversions for the boundary cases (one and two digits, powers of ten, the 64-char short limit,
    // non-ASCII in short and long strings, latin1 and non-latin1 keys).
    const reference = (v: NgValue): Buffer => {
      if (Buffer.isBuffer(v)) return Buffer.concat([b(`${v.length}:`), v]);
      if (typeof v === 'string') return Buffer.concat([b(`${Buffer.byteLength(v)}:`), Buffer.from(v, 'utf8')]);
      if (typeof v === 'number') return b(`i${v}e`);
      if (Array.isArray(v)) return Buffer.concat([b('l'), ...v.map(reference), b('e')]);
      const parts = Object.keys(v).map((k) => {
        const key = [...k].every((c) => c.charCodeAt(0) <= 0xff) ? Buffer.from(k, 'latin1') : Buffer.from(k, 'utf8');
        return Buffer.concat([b(`${key.length}:`), key, reference(v[k]!)]);
      });
      return Buffer.concat([b('d'), ...parts, b('e')]);
    };
    const ints = [0, 7, 9, 10, 99, 100, 12345, -5, -10, -987654321, 2 ** 32, -(2 ** 40), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
    const strings = ['', 'a', 'x'.repeat(63), 'y'.repeat(64), 'z'.repeat(65), 'é', 'ab€', `${'q'.repeat(63)}é`, `${'r'.repeat(70)}€`, '\u00ff', '\u007f'];
    const keyed = dict([
      ['plain', 1],
      ['clé', 2],
      ['ключ', 3],
      ['k'.repeat(64), 4],
      ['\u00e9'.repeat(65), 5],
    ]);
    const value: NgValue = [...ints, ...strings, keyed, Buffer.from([0xff, 0x00]), [[dict([['n', -1]])]]];
    expect(encode(value).toString('latin1')).toBe(reference(value).toString('latin1'));
    // Twice in a row: the second encode reuses the scratch buffer the first one left.
    expect(encode(value).toString('latin1')).toBe(reference(value).toString('latin1'));
  });

  it('returns its own bytes: a later encode does not change an earlier result', () => {
    const first = encode(dict([['result', 'ok']]));
    encode(dict([['result', 'pong'], ['x', 'y'.repeat(1000)]]));
    expect(first.toString()).toBe('d6:result2:oke');
  });

  it('grows its buffer for large values', () => {
    const big = Buffer.alloc(200_000, 0x61);
    const out = encode(dict([['sdp', big]]));
    expect(out.length).toBe(big.length + 'd3:sdp200000:e'.length);
    expect(Buffer.compare((decode(out) as NgDict)['sdp'] as Buffer, big)).toBe(0);
  });
});

describe('bencode on rtpengine 10.5 transcripts', () => {
  const bodies = transcriptBodies();

  it('has transcript files to check', () => {
    expect(bodies.length).toBeGreaterThanOrEqual(20);
  });

  for (const { name, body } of bodies) {
    it(`${name}: decode then encode gives the same bytes`, () => {
      const v = decodeDict(body);
      expect(Buffer.compare(encode(v), body)).toBe(0);
    });

    it(`${name}: agrees with the bencode npm package`, async () => {
      const oracle = (await import('bencode')).default as {
        decode(buf: Uint8Array): unknown;
        encode(v: unknown): Uint8Array;
      };
      const ours = decodeDict(body);
      expect(plain(ours)).toEqual(plain(oracle.decode(body)));
      // The oracle sorts keys; ours keeps insertion order, so compare on a key-sorted copy.
      expect(Buffer.compare(encode(sortKeysDeep(ours)), Buffer.from(oracle.encode(ours)))).toBe(0);
    });
  }
});

describe('encode: the cache of encoded dict keys', () => {
  it('writes every key right whether cached or not: latin1, UTF-8, long ones, and after the cache starts over', () => {
    const keys = ['packets', 'caf\u00e9', '\u{1F600}x', 'k'.repeat(200)];
    for (let i = 0; i < 5000; i++) keys.push(`key-${i}`); // more than the cache holds
    for (const key of [...keys, ...keys.slice(0, 4)]) {
      const d = Object.create(null) as Record<string, NgValue>;
      d[key] = 1;
      const body = isLatin1Key(key) ? Buffer.from(key, 'latin1') : Buffer.from(key, 'utf8');
      expect(encode(d as NgDict)).toEqual(Buffer.concat([Buffer.from(`d${body.length}:`), body, Buffer.from('i1ee')]));
    }
  });
});

function isLatin1Key(s: string): boolean {
  return [...s].every((c) => c.charCodeAt(0) <= 0xff && c.length === 1);
}
