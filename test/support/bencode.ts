/**
 * A small, strict bencode codec that belongs to the tests only.
 *
 * It is deliberately independent of src/ng/bencode.ts: the integration and compatibility tests talk to the
 * relay through this codec, so a bug in ngrelay's codec cannot hide itself by being on both ends of the wire.
 * Strings decode to Buffers (SDP is bytes); dict keys keep wire order (rtpengine does not sort them).
 */

/** A decoded bencode value: byte strings stay Buffers, integers are numbers. */
export type BValue = Buffer | number | BValue[] | BDict;
export interface BDict {
  [key: string]: BValue;
}

/** What the encoder accepts: like BValue, but JS strings are allowed (encoded as UTF-8). */
export type BInput = Buffer | string | number | BInput[] | BInputDict;
export interface BInputDict {
  [key: string]: BInput | undefined;
}

export class BencodeDecodeError extends Error {
  override readonly name = 'BencodeDecodeError';
}

/** Encodes keys in insertion order (not sorted), like Kamailio's module does; `undefined` values are skipped. */
export function encode(value: BInput): Buffer {
  const parts: Buffer[] = [];
  encodeInto(value, parts);
  return Buffer.concat(parts);
}

function encodeInto(value: BInput, parts: Buffer[]): void {
  if (Buffer.isBuffer(value)) {
    parts.push(Buffer.from(`${value.length}:`, 'latin1'), value);
  } else if (typeof value === 'string') {
    const bytes = Buffer.from(value, 'utf8');
    parts.push(Buffer.from(`${bytes.length}:`, 'latin1'), bytes);
  } else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new TypeError(`bencode integers must be safe integers, got ${value}`);
    parts.push(Buffer.from(`i${value}e`, 'latin1'));
  } else if (Array.isArray(value)) {
    parts.push(Buffer.from('l', 'latin1'));
    for (const item of value) encodeInto(item, parts);
    parts.push(Buffer.from('e', 'latin1'));
  } else {
    parts.push(Buffer.from('d', 'latin1'));
    for (const [key, item] of Object.entries(value)) {
      if (item === undefined) continue;
      encodeInto(key, parts);
      encodeInto(item, parts);
    }
    parts.push(Buffer.from('e', 'latin1'));
  }
}

/** Decodes exactly one value spanning the whole buffer; anything else throws BencodeDecodeError. */
export function decode(buf: Buffer): BValue {
  const cursor = { pos: 0 };
  const value = decodeAt(buf, cursor, 0);
  if (cursor.pos !== buf.length) {
    throw new BencodeDecodeError(`trailing bytes at offset ${cursor.pos}`);
  }
  return value;
}

const MAX_DEPTH = 64;

function decodeAt(buf: Buffer, cursor: { pos: number }, depth: number): BValue {
  if (depth > MAX_DEPTH) throw new BencodeDecodeError('nesting too deep');
  const lead = buf[cursor.pos];
  if (lead === undefined) throw new BencodeDecodeError(`unexpected end at offset ${cursor.pos}`);
  const ch = String.fromCharCode(lead);
  if (ch === 'i') {
    const end = buf.indexOf(0x65 /* e */, cursor.pos + 1);
    if (end < 0) throw new BencodeDecodeError('unterminated integer');
    const text = buf.toString('latin1', cursor.pos + 1, end);
    if (!/^(0|-?[1-9][0-9]*)$/.test(text)) throw new BencodeDecodeError(`bad integer "${text}"`);
    cursor.pos = end + 1;
    return Number(text);
  }
  if (ch === 'l') {
    cursor.pos += 1;
    const list: BValue[] = [];
    while (buf[cursor.pos] !== 0x65) {
      if (cursor.pos >= buf.length) throw new BencodeDecodeError('unterminated list');
      list.push(decodeAt(buf, cursor, depth + 1));
    }
    cursor.pos += 1;
    return list;
  }
  if (ch === 'd') {
    cursor.pos += 1;
    const dict: BDict = Object.create(null) as BDict;
    while (buf[cursor.pos] !== 0x65) {
      if (cursor.pos >= buf.length) throw new BencodeDecodeError('unterminated dict');
      const key = decodeAt(buf, cursor, depth + 1);
      if (!Buffer.isBuffer(key)) throw new BencodeDecodeError('dict key is not a string');
      dict[key.toString('utf8')] = decodeAt(buf, cursor, depth + 1);
    }
    cursor.pos += 1;
    return dict;
  }
  if (ch >= '0' && ch <= '9') {
    const colon = buf.indexOf(0x3a /* : */, cursor.pos);
    if (colon < 0) throw new BencodeDecodeError('string without colon');
    const lenText = buf.toString('latin1', cursor.pos, colon);
    if (!/^(0|[1-9][0-9]*)$/.test(lenText)) throw new BencodeDecodeError(`bad string length "${lenText}"`);
    const start = colon + 1;
    const end = start + Number(lenText);
    if (end > buf.length) throw new BencodeDecodeError('string runs past the end');
    cursor.pos = end;
    return Buffer.from(buf.subarray(start, end));
  }
  throw new BencodeDecodeError(`unexpected byte 0x${lead.toString(16)} at offset ${cursor.pos}`);
}

export function isDict(value: BValue | undefined): value is BDict {
  return value !== undefined && typeof value === 'object' && !Buffer.isBuffer(value) && !Array.isArray(value);
}

/** A JSON-friendly view (Buffers as UTF-8 text) for failure messages and readable assertions. */
export type PlainValue = string | number | PlainValue[] | { [key: string]: PlainValue };

export function toPlain(value: BValue): PlainValue {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map(toPlain);
  const out: { [key: string]: PlainValue } = {};
  for (const [key, item] of Object.entries(value)) out[key] = toPlain(item);
  return out;
}
