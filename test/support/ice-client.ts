/**
 * A test-side STUN/ICE client, written independently of the engine (node:crypto HMAC-SHA1, zlib's CRC-32):
 * builds binding requests as a browser's ICE agent sends them and checks the engine's responses.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const MAGIC_COOKIE = 0x2112a442;

export interface CheckOptions {
  /** USERNAME as sent ("relayUfrag:ourUfrag"). */
  username: string;
  /** Key for MESSAGE-INTEGRITY (the relay's ice-pwd); null = no MESSAGE-INTEGRITY. */
  password: string | null;
  priority?: number;
  useCandidate?: boolean;
  /** Our role: ICE-CONTROLLING (default) or ICE-CONTROLLED with this tie-breaker (16 hex digits). */
  role?: 'controlling' | 'controlled';
  tieBreaker?: string;
  fingerprint?: boolean;
  /** Corrupt the FINGERPRINT value after computing it. */
  badFingerprint?: boolean;
  transactionId?: Buffer;
}

function attr(type: number, value: Buffer): Buffer {
  const pad = (4 - (value.length % 4)) % 4;
  const b = Buffer.alloc(4 + value.length + pad);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(value.length, 2);
  value.copy(b, 4);
  return b;
}

function withLength(header: Buffer, bodyLength: number): Buffer {
  const h = Buffer.from(header);
  h.writeUInt16BE(bodyLength, 2);
  return h;
}

/** Appends MESSAGE-INTEGRITY and/or FINGERPRINT to header+attributes (RFC 8489 §14.5, §14.7). */
export function finish(header: Buffer, attrs: Buffer[], password: string | null, fingerprint: boolean, badFingerprint = false): Buffer {
  let body = Buffer.concat(attrs);
  if (password !== null) {
    const h = withLength(header, body.length + 24);
    const mac = createHmac('sha1', password).update(Buffer.concat([h, body])).digest();
    body = Buffer.concat([body, attr(0x0008, mac)]);
  }
  if (fingerprint) {
    const h = withLength(header, body.length + 8);
    let fp = (crc32(Buffer.concat([h, body])) ^ 0x5354554e) >>> 0;
    if (badFingerprint) fp = (fp ^ 1) >>> 0;
    const v = Buffer.alloc(4);
    v.writeUInt32BE(fp, 0);
    body = Buffer.concat([body, attr(0x8028, v)]);
  }
  return Buffer.concat([withLength(header, body.length), body]);
}

export function bindingRequest(o: CheckOptions): { packet: Buffer; transactionId: Buffer } {
  const transactionId = o.transactionId ?? randomBytes(12);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0001, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const attrs: Buffer[] = [attr(0x0006, Buffer.from(o.username, 'utf8'))];
  const prio = Buffer.alloc(4);
  prio.writeUInt32BE((o.priority ?? 0x6e0001ff) >>> 0, 0);
  attrs.push(attr(0x0024, prio));
  attrs.push(attr(o.role === 'controlled' ? 0x8029 : 0x802a, Buffer.from(o.tieBreaker ?? '1122334455667788', 'hex')));
  if (o.useCandidate) attrs.push(attr(0x0025, Buffer.alloc(0)));
  return { packet: finish(header, attrs, o.password, o.fingerprint ?? true, o.badFingerprint), transactionId };
}

export interface StunResponse {
  type: number;
  transactionId: Buffer;
  xorMapped: { address: string; port: number } | null;
  errorCode: number | null;
  integrityOk: boolean;
  fingerprintOk: boolean;
  username: string | null;
  useCandidate: boolean;
  controlling: boolean;
  controlled: boolean;
}

/** Parses a response, checking MESSAGE-INTEGRITY with `password` and FINGERPRINT. */
export function parseResponse(b: Buffer, password: string): StunResponse | null {
  if (b.length < 20 || b.readUInt32BE(4) !== MAGIC_COOKIE || b.readUInt16BE(2) + 20 !== b.length) return null;
  const res: StunResponse = {
    type: b.readUInt16BE(0),
    transactionId: b.subarray(8, 20),
    xorMapped: null,
    errorCode: null,
    integrityOk: false,
    fingerprintOk: false,
    username: null,
    useCandidate: false,
    controlling: false,
    controlled: false,
  };
  let off = 20;
  while (off + 4 <= b.length) {
    const type = b.readUInt16BE(off);
    const len = b.readUInt16BE(off + 2);
    const v = b.subarray(off + 4, off + 4 + len);
    if (type === 0x0020 && v[1] === 0x01) {
      const port = v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
      const a = (v.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0;
      res.xorMapped = { address: [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.'), port };
    } else if (type === 0x0006) {
      res.username = v.toString('utf8');
    } else if (type === 0x0025) {
      res.useCandidate = true;
    } else if (type === 0x802a) {
      res.controlling = true;
    } else if (type === 0x8029) {
      res.controlled = true;
    } else if (type === 0x0009) {
      res.errorCode = (v[2]! & 7) * 100 + v[3]!;
    } else if (type === 0x0008) {
      const h = withLength(b.subarray(0, 20), off + 24 - 20);
      const mac = createHmac('sha1', password).update(Buffer.concat([h, b.subarray(20, off)])).digest();
      res.integrityOk = mac.equals(v);
    } else if (type === 0x8028) {
      res.fingerprintOk = ((crc32(b.subarray(0, off)) ^ 0x5354554e) >>> 0) === v.readUInt32BE(0);
    }
    off += 4 + len + ((4 - (len % 4)) % 4);
  }
  return res;
}

/** A binding success response to `transactionId` (XOR-MAPPED-ADDRESS of an IPv4 `mapped`), signed with `password`. */
export function bindingSuccess(transactionId: Buffer, password: string, mapped: { address: string; port: number }): Buffer {
  const header = Buffer.alloc(20);
  header.writeUInt16BE(0x0101, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(header, 8);
  const v = Buffer.alloc(8);
  v[1] = 0x01;
  v.writeUInt16BE(mapped.port ^ (MAGIC_COOKIE >>> 16), 2);
  const ip = mapped.address.split('.').reduce((acc, x) => acc * 256 + Number(x), 0);
  v.writeUInt32BE((ip ^ MAGIC_COOKIE) >>> 0, 4);
  return finish(header, [attr(0x0020, v)], password, true);
}
