/**
 * JSON form of ng messages (rtpengine accepts a JSON object instead of a bencode dict when the body starts
 * with '{', and replies in JSON).
 *
 * Decoding maps JSON onto the same NgValue shapes bencode produces, so the command layer sees one type:
 *  - strings -> Buffer (UTF-8 bytes), integers -> number, arrays -> lists, objects -> null-prototype dicts;
 *  - true/false -> 1/0 (bencode has no booleans);
 *  - null -> the entry is left out (of a dict or a list);
 *  - non-integer or unsafe numbers and nesting deeper than MAX_DEPTH -> JsonShapeError.
 * Encoding turns Buffers into UTF-8 strings (JSON cannot carry raw bytes; a non-UTF-8 SDP is not
 * byte-exact in JSON, use bencode for that) and keeps dict insertion order.
 *
 * The text must be valid UTF-8 (RFC 8259): anything else is refused (JsonUtf8Error, a JsonSyntaxError),
 * never patched with U+FFFD, which would make distinct byte strings one. Dict keys are byte strings as in
 * bencode.ts (one char per byte of their UTF-8 form), so a tag used as a key reads the same either way.
 */
import { MAX_DEPTH } from './bencode';
import type { NgDict, NgValue } from './types';

/** The text is not JSON at all (rtpengine: "Failed to parse JSON document"). */
export class JsonSyntaxError extends Error {
  override readonly name: string = 'JsonSyntaxError';
}

/** The body is not valid UTF-8, so it is no JSON text. */
export class JsonUtf8Error extends JsonSyntaxError {
  override readonly name = 'JsonUtf8Error';
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Key as bencode.ts holds it: one char per byte of its UTF-8 form. */
function keyFromJson(key: string): string {
  return Buffer.from(key, 'utf8').toString('latin1');
}

/** The inverse, for keys that are byte strings (all chars <= U+00FF); others are written as they are. */
function keyToJson(key: string): string {
  for (let i = 0; i < key.length; i++) if (key.charCodeAt(i) > 0xff) return key;
  return Buffer.from(key, 'latin1').toString('utf8');
}

/** Valid JSON, but not something an ng dict can hold (rtpengine: "Could not decode bencode dictionary"). */
export class JsonShapeError extends Error {
  override readonly name = 'JsonShapeError';
}

function fromJson(v: unknown, depth: number): NgValue | undefined {
  if (v === null) return undefined;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new JsonShapeError(`number ${v} is not a safe integer`);
    return v;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (depth >= MAX_DEPTH) throw new JsonShapeError(`nesting deeper than ${MAX_DEPTH}`);
  if (Array.isArray(v)) {
    const out: NgValue[] = [];
    for (const item of v) {
      const x = fromJson(item, depth + 1);
      if (x !== undefined) out.push(x);
    }
    return out;
  }
  if (typeof v === 'object') {
    const out: NgDict = Object.create(null) as NgDict;
    const src = v as Record<string, unknown>;
    for (const key of Object.keys(src)) {
      const x = fromJson(src[key], depth + 1);
      if (x !== undefined) out[keyFromJson(key)] = x;
    }
    return out;
  }
  throw new JsonShapeError(`unsupported JSON value of type ${typeof v}`);
}

/** Parses a JSON body whose top level must be an object. */
export function decodeJsonDict(buf: Buffer): NgDict {
  let text: string;
  try {
    text = strictUtf8.decode(buf);
  } catch {
    throw new JsonUtf8Error('JSON text is not valid UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new JsonSyntaxError(e instanceof Error ? e.message : String(e));
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new JsonShapeError('top-level JSON value is not an object');
  }
  return fromJson(parsed, 0) as NgDict;
}

function toJson(v: NgValue, depth: number): unknown {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (depth >= MAX_DEPTH) throw new JsonShapeError(`nesting deeper than ${MAX_DEPTH}`);
  if (Array.isArray(v)) return v.map((x) => toJson(x, depth + 1));
  // A plain object (not null-prototype) so JSON.stringify of `__proto__` keys behaves as an own property.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(v)) {
    Object.defineProperty(out, keyToJson(key), { value: toJson(v[key]!, depth + 1), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

/** Encodes a dict as compact JSON (UTF-8 bytes). */
export function encodeJsonDict(dict: NgDict): Buffer {
  return Buffer.from(JSON.stringify(toJson(dict, 0)), 'utf8');
}
