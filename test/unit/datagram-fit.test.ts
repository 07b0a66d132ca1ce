import { describe, expect, it } from 'vitest';
import { decodeDict, encode } from '../../src/ng/bencode';
import { fitDatagram, MAX_UDP_PAYLOAD } from '../../src/ng/datagram-fit';
import { JsonUtf8Error, JsonSyntaxError, decodeJsonDict, encodeJsonDict } from '../../src/ng/json';
import { ngDict } from '../../src/ng/dict';

const frame = (cookie: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(`${cookie} `), body]);

describe('fitDatagram', () => {
  it('passes a reply that fits through unchanged (the same Buffer)', () => {
    const msg = frame('c1', encode(ngDict([['result', 'pong']])));
    expect(fitDatagram(msg)).toBe(msg);
  });

  it('turns a bencode reply over the limit into a short error with the same cookie', () => {
    const msg = frame('ck', encode(ngDict([['calls', [Buffer.alloc(MAX_UDP_PAYLOAD)]], ['result', 'ok']])));
    const out = fitDatagram(msg)!;
    expect(out.length).toBeLessThan(300);
    expect(out.subarray(0, 3).toString()).toBe('ck ');
    const d = decodeDict(out.subarray(3));
    expect(d['result']!.toString()).toBe('error');
    expect(d['error-reason']!.toString()).toMatch(/^Reply too large for a UDP datagram \(\d+ bytes, limit 65507\)/);
  });

  it('answers a JSON reply over the limit in JSON', () => {
    const msg = frame('j', encodeJsonDict(ngDict([['sdp', 'x'.repeat(70_000)]])));
    const out = fitDatagram(msg)!;
    const d = JSON.parse(out.subarray(2).toString()) as Record<string, string>;
    expect(d['result']).toBe('error');
  });

  it('uses the given limit, and gives up (null) when not even the error fits', () => {
    const msg = frame('c', encode(ngDict([['sdp', 'x'.repeat(500)]])));
    expect(fitDatagram(msg, 400)).not.toBe(msg);
    expect(fitDatagram(frame('c'.repeat(500), encode(ngDict([['a', 'b']]))), 400)).toBeNull();
  });
});

describe('JSON ng bodies are UTF-8', () => {
  it('refuses invalid UTF-8 with JsonUtf8Error (a JsonSyntaxError)', () => {
    const bad = Buffer.from('{"command":"ping","x":"\xff\xfe"}', 'latin1');
    expect(() => decodeJsonDict(bad)).toThrow(JsonUtf8Error);
    expect(() => decodeJsonDict(bad)).toThrow(JsonSyntaxError);
  });

  it('keeps a non-ASCII key as the bytes bencode would give it, and writes it back as the same UTF-8', () => {
    const d = decodeJsonDict(Buffer.from('{"t\u00e9":"v"}', 'utf8'));
    expect(Object.keys(d)).toEqual([Buffer.from('t\u00e9', 'utf8').toString('latin1')]);
    expect(encodeJsonDict(d).toString('utf8')).toBe('{"t\u00e9":"v"}');
  });
});
