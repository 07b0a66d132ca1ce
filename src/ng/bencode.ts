/**
 * Bencode codec for the ng protocol, over Buffers.
 *
 * Decoding is zero-copy: every string value is a `subarray` of the input, so an SDP body comes out as the
 * exact bytes that came in (CRLF, non-UTF-8 bytes and all). Keep the input Buffer alive and unmodified as
 * long as the decoded value is used.
 *
 * Decoding is strict about syntax (a malformed datagram must become an error reply, never a guess) and lax
 * about dict key order (rtpengine and Kamailio do not sort keys):
 *  - truncated input, a bad or leading-zero length (`03:abc`), a bad integer (`i03e`, `i-0e`, `ie`, beyond
 *    Number.MAX_SAFE_INTEGER), a non-string dict key, trailing bytes after the top-level value and nesting
 *    deeper than MAX_DEPTH all throw BencodeError.
 *  - a repeated dict key: the last value wins (as rtpengine's hash-table insert does), and the key keeps the
 *    position of its first occurrence.
 *
 * Dict keys are decoded as latin1: one char per byte, lossless and never throwing, so any key bytes survive
 * a decode/encode round trip. The encoder writes a key whose chars are all <= U+00FF as latin1 (the inverse),
 * and any other key as UTF-8. All real ng keys are ASCII, where latin1 and UTF-8 agree.
 *
 * Encoding writes dict keys in insertion order (NOT sorted, like rtpengine), Buffers verbatim, JS strings
 * as UTF-8, numbers as integers only.
 *
 * Known limit: dicts are plain JS objects (see types.ts), which enumerate integer-like keys ("0", "42")
 * first in ascending order; such keys do not keep their wire order.
 */
import type { NgDict, NgValue } from './types';

/** Deepest list/dict nesting accepted by decode (and produced by encode). ng messages need about 6. */
export const MAX_DEPTH = 64;

export type BencodeErrorCode =
  | 'truncated'
  | 'bad-length'
  | 'bad-integer'
  | 'bad-type'
  | 'bad-key'
  | 'trailing-bytes'
  | 'too-deep'
  | 'not-encodable';

/** The input is not valid bencode (or a value cannot be bencoded). `offset` is where decoding stopped. */
export class BencodeError extends Error {
  override readonly name = 'BencodeError';
  constructor(
    readonly code: BencodeErrorCode,
    message: string,
    readonly offset = -1,
  ) {
    super(offset >= 0 ? `${message} at byte ${offset}` : message);
  }
}

const CH_D = 0x64; // 'd'
const CH_L = 0x6c; // 'l'
const CH_I = 0x69; // 'i'
const CH_E = 0x65; // 'e'
const CH_COLON = 0x3a;
const CH_MINUS = 0x2d;
const CH_0 = 0x30;
const CH_9 = 0x39;

/** Digits of Number.MAX_SAFE_INTEGER (9007199254740991): anything longer is out of range anyway. */
const MAX_SAFE_DIGITS = 16;

class Decoder {
  pos = 0;
  constructor(private readonly buf: Buffer) {}

  value(depth: number): NgValue {
    const buf = this.buf;
    if (this.pos >= buf.length) throw new BencodeError('truncated', 'unexpected end of input', this.pos);
    const c = buf[this.pos]!;
    if (c === CH_D) return this.dict(depth + 1);
    if (c === CH_L) return this.list(depth + 1);
    if (c === CH_I) return this.integer();
    if (c >= CH_0 && c <= CH_9) return this.string();
    throw new BencodeError('bad-type', `unexpected byte 0x${c.toString(16).padStart(2, '0')}`, this.pos);
  }

  private dict(depth: number): NgDict {
    if (depth > MAX_DEPTH) throw new BencodeError('too-deep', `nesting deeper than ${MAX_DEPTH}`, this.pos);
    const buf = this.buf;
    this.pos++; // 'd'
    const out: NgDict = Object.create(null) as NgDict;
    for (;;) {
      if (this.pos >= buf.length) throw new BencodeError('truncated', 'unterminated dictionary', this.pos);
      const c = buf[this.pos]!;
      if (c === CH_E) {
        this.pos++;
        return out;
      }
      if (c < CH_0 || c > CH_9) throw new BencodeError('bad-key', 'dictionary key is not a string', this.pos);
      const key = this.string().toString('latin1');
      out[key] = this.value(depth);
    }
  }

  private list(depth: number): NgValue[] {
    if (depth > MAX_DEPTH) throw new BencodeError('too-deep', `nesting deeper than ${MAX_DEPTH}`, this.pos);
    const buf = this.buf;
    this.pos++; // 'l'
    const out: NgValue[] = [];
    for (;;) {
      if (this.pos >= buf.length) throw new BencodeError('truncated', 'unterminated list', this.pos);
      if (buf[this.pos] === CH_E) {
        this.pos++;
        return out;
      }
      out.push(this.value(depth));
    }
  }

  /** `i<n>e`: optional '-', no leading zeros, no `-0`, safe-integer range. */
  private integer(): number {
    const buf = this.buf;
    const start = this.pos;
    let p = start + 1; // after 'i'
    let negative = false;
    if (p < buf.length && buf[p] === CH_MINUS) {
      negative = true;
      p++;
    }
    const digitsStart = p;
    let n = 0;
    while (p < buf.length && buf[p]! >= CH_0 && buf[p]! <= CH_9) {
      if (p - digitsStart >= MAX_SAFE_DIGITS) throw new BencodeError('bad-integer', 'integer out of range', start);
      n = n * 10 + (buf[p]! - CH_0);
      p++;
    }
    if (p >= buf.length) throw new BencodeError('truncated', 'unterminated integer', p);
    if (buf[p] !== CH_E) throw new BencodeError('bad-integer', 'invalid byte in integer', p);
    const digits = p - digitsStart;
    if (digits === 0) throw new BencodeError('bad-integer', 'integer without digits', start);
    if (digits > 1 && buf[digitsStart] === CH_0) throw new BencodeError('bad-integer', 'integer with leading zero', start);
    if (negative && n === 0) throw new BencodeError('bad-integer', 'negative zero', start);
    if (n > Number.MAX_SAFE_INTEGER) throw new BencodeError('bad-integer', 'integer out of range', start);
    this.pos = p + 1;
    return negative ? -n : n;
  }

  /** `<len>:<bytes>`: decimal length without leading zeros (a lone `0` is fine). */
  private string(): Buffer {
    const buf = this.buf;
    const start = this.pos;
    let p = start;
    let len = 0;
    while (p < buf.length && buf[p]! >= CH_0 && buf[p]! <= CH_9) {
      if (p - start >= MAX_SAFE_DIGITS) throw new BencodeError('bad-length', 'string length out of range', start);
      len = len * 10 + (buf[p]! - CH_0);
      p++;
    }
    if (p >= buf.length) throw new BencodeError('truncated', 'unterminated string length', p);
    if (buf[p] !== CH_COLON) throw new BencodeError('bad-length', 'invalid byte in string length', p);
    if (p - start > 1 && buf[start] === CH_0) throw new BencodeError('bad-length', 'string length with leading zero', start);
    const dataStart = p + 1;
    if (len > buf.length - dataStart) throw new BencodeError('truncated', 'string runs past end of input', start);
    this.pos = dataStart + len;
    return buf.subarray(dataStart, dataStart + len);
  }
}

/** Decodes exactly one bencode value that must span the whole buffer. */
export function decode(buf: Buffer): NgValue {
  const d = new Decoder(buf);
  const v = d.value(0);
  if (d.pos !== buf.length) throw new BencodeError('trailing-bytes', 'trailing bytes after value', d.pos);
  return v;
}

/** Decodes a buffer whose top-level value must be a dict (an ng message body). */
export function decodeDict(buf: Buffer): NgDict {
  if (buf.length === 0) throw new BencodeError('truncated', 'empty input', 0);
  if (buf[0] !== CH_D) throw new BencodeError('bad-type', 'top-level value is not a dictionary', 0);
  return decode(buf) as NgDict;
}

/** Strings up to this length are written char by char in JS: a Buffer.write call costs more than the copy. */
const SHORT_TEXT = 64;
/** The scratch buffer encode() keeps between calls; one that grew beyond this is let go again. */
const KEPT_SCRATCH_BYTES = 1 << 20;
let scratch = Buffer.allocUnsafe(16 * 1024);

/**
 * Output buffer: encoding goes into a scratch buffer kept between calls (encode is synchronous, never
 * re-entered), which grows by doubling; the result is one copy of the bytes written. Short ASCII strings
 * and integers are written byte by byte: per ng reply there are dozens of them (keys, counters), and a
 * native Buffer.write per item was most of the encoder's time (profile at 500 cycles/s).
 */
class Writer {
  buf = scratch;
  len = 0;
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  /** A non-negative integer's decimal digits. */
  private digits(n: number): void {
    if (n < 10) {
      this.buf[this.len++] = 0x30 + n;
      return;
    }
    let width = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) width++;
    let pos = this.len + width;
    this.len = pos;
    for (let t = n; width > 0; width--) {
      this.buf[--pos] = 0x30 + (t % 10);
      t = Math.floor(t / 10);
    }
  }
  /** `<n>:`, the length prefix of a byte string. */
  lengthPrefix(n: number): void {
    this.reserve(17);
    this.digits(n);
    this.buf[this.len++] = 0x3a;
  }
  /** `i<n>e` for a safe integer. */
  integer(n: number): void {
    this.reserve(18);
    this.buf[this.len++] = 0x69;
    if (n < 0) {
      this.buf[this.len++] = 0x2d;
      n = -n;
    }
    this.digits(n);
    this.buf[this.len++] = 0x65;
  }
  /** Bytes already encoded (a cached key). */
  raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  bytes(b: Uint8Array): void {
    this.lengthPrefix(b.length);
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  text(s: string, encoding: 'utf8' | 'latin1'): void {
    // Short text whose chars all fit the encoding's one-byte range (ASCII for utf8): copied in JS.
    if (s.length <= SHORT_TEXT) {
      const limit = encoding === 'utf8' ? 0x80 : 0x100;
      let i = 0;
      while (i < s.length && s.charCodeAt(i) < limit) i++;
      if (i === s.length) {
        this.lengthPrefix(s.length);
        this.reserve(s.length);
        for (let j = 0; j < s.length; j++) this.buf[this.len++] = s.charCodeAt(j);
        return;
      }
    }
    const n = encoding === 'utf8' ? Buffer.byteLength(s, 'utf8') : s.length;
    this.lengthPrefix(n);
    this.reserve(n);
    this.len += this.buf.write(s, this.len, encoding);
  }
  result(): Buffer {
    const out = Buffer.allocUnsafe(this.len);
    this.buf.copy(out, 0, 0, this.len);
    // Keep a grown scratch for the next reply, unless one huge value made it large.
    if (this.buf.length <= KEPT_SCRATCH_BYTES) scratch = this.buf;
    return out;
  }
}

/** True when every char fits one latin1 byte, so the key can be written back byte-for-byte. */
function isLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return false;
  return true;
}

/**
 * Dict keys as encoded (`<len>:<bytes>`), by key. A reply is mostly the same few dozen keys ("packets", "local
 * port", ...), and writing each char by char was half of what encoding a `delete` reply cost: the string
 * accesses go megamorphic in a relay that has handled a few kinds of reply (92 -> 46 µs per offer+answer+delete).
 * Bounded: keys come from the wire too (tags, labels), so the map starts over when full; long keys are not kept.
 */
const KEY_CACHE_ENTRIES = 4096;
const KEY_CACHE_MAX_LENGTH = 64;
const encodedKeys = new Map<string, Buffer>();

function encodedKey(key: string): Buffer {
  let bytes = encodedKeys.get(key);
  if (bytes !== undefined) return bytes;
  const body = Buffer.from(key, isLatin1(key) ? 'latin1' : 'utf8');
  bytes = Buffer.concat([Buffer.from(`${body.length}:`, 'latin1'), body]);
  if (key.length <= KEY_CACHE_MAX_LENGTH) {
    if (encodedKeys.size >= KEY_CACHE_ENTRIES) encodedKeys.clear();
    encodedKeys.set(key, bytes);
  }
  return bytes;
}

function encodeInto(w: Writer, v: unknown, depth: number): void {
  // Strings and integers first: they are most of a reply's values, and need no prototype walk (instanceof).
  if (typeof v === 'string') {
    w.text(v, 'utf8');
  } else if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new BencodeError('not-encodable', `cannot bencode non-integer number ${v}`);
    w.integer(Object.is(v, -0) ? 0 : v);
  } else if (v instanceof Uint8Array) {
    w.bytes(v); // Buffer included
  } else if (Array.isArray(v)) {
    if (depth >= MAX_DEPTH) throw new BencodeError('too-deep', `nesting deeper than ${MAX_DEPTH}`);
    w.byte(CH_L);
    for (let i = 0; i < v.length; i++) encodeInto(w, v[i], depth + 1);
    w.byte(CH_E);
  } else if (typeof v === 'object' && v !== null) {
    if (depth >= MAX_DEPTH) throw new BencodeError('too-deep', `nesting deeper than ${MAX_DEPTH}`);
    w.byte(CH_D);
    const obj = v as Record<string, unknown>;
    const keys = Object.keys(obj);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      w.raw(encodedKey(key));
      encodeInto(w, obj[key], depth + 1);
    }
    w.byte(CH_E);
  } else {
    throw new BencodeError('not-encodable', `cannot bencode a value of type ${v === null ? 'null' : typeof v}`);
  }
}

/**
 * Encodes a value; dict keys in insertion order. Throws BencodeError for values bencode cannot hold.
 * `prefix`: bytes written before it in the same buffer (an ng reply's `<cookie> `, without a second copy).
 */
export function encode(value: NgValue, prefix?: Uint8Array): Buffer {
  const w = new Writer();
  if (prefix) w.raw(prefix);
  encodeInto(w, value, 0);
  return w.result();
}

/**
 * Byte length of the one complete bencode value at the start of `buf`, or null when the buffer ends inside
 * it (more bytes needed: a stream transport waits). Throws BencodeError for input that can never become
 * valid bencode, so a stream can answer and give up instead of waiting forever.
 */
export function bencodeLength(buf: Buffer): number | null {
  const d = new Decoder(buf);
  try {
    d.value(0);
  } catch (err) {
    if (err instanceof BencodeError && err.code === 'truncated') return null;
    throw err;
  }
  return d.pos;
}
