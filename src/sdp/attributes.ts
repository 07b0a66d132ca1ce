/**
 * Reading the pieces of SDP lines that ngrelay cares about. Shared by the parser (which reports them to the
 * call model) and the rewriter (which decides per line whether it owns it).
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { AddrType, ConnectionAddress, Direction, SdpLine } from './types';

/** An a= line split at the first ':'. The name is not trimmed: rtpengine 10.5 does not see `a=sendonly ` as a direction. */
export interface Attribute {
  name: string;
  /** Text after ':' ('' for flag attributes). */
  value: string;
}

/** The line's attribute: split once by splitSdpLines (`line.attr`), or here for a line made elsewhere. */
export function attributeOf(line: SdpLine): Attribute | null {
  return line.attr !== undefined ? line.attr : splitAttribute(line.type, line.value);
}

export function splitAttribute(type: string, value: string): Attribute | null {
  if (type !== 'a') return null;
  const colon = value.indexOf(':');
  if (colon < 0) return { name: value, value: '' };
  return { name: value.slice(0, colon), value: value.slice(colon + 1) };
}

const DIRECTIONS: ReadonlySet<string> = new Set(['sendrecv', 'sendonly', 'recvonly', 'inactive']);

export function directionOf(attr: Attribute | null): Direction | null {
  if (attr === null || attr.value !== '' || !DIRECTIONS.has(attr.name)) return null;
  return attr.name as Direction;
}

/** ICE attributes (RFC 8839); all of them go when ICE is removed. */
const ICE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'ice-ufrag',
  'ice-pwd',
  'ice-options',
  'ice-lite',
  'ice-mismatch',
  'ice-pacing',
  'candidate',
  'remote-candidates',
  'end-of-candidates',
]);

export function isIceAttribute(attr: Attribute | null): boolean {
  return attr !== null && ICE_ATTRIBUTES.has(attr.name);
}

/** DTLS-SRTP attributes of a party (RFC 8122, 4145, 8842): never passed to the other party. */
const DTLS_ATTRIBUTES: ReadonlySet<string> = new Set(['fingerprint', 'setup', 'tls-id']);

export function isDtlsAttribute(attr: Attribute | null): boolean {
  return attr !== null && DTLS_ATTRIBUTES.has(attr.name);
}

/** The attributes whose presence means the peer does ICE (end-of-candidates alone does not). */
export function isIceCredentialOrCandidate(attr: Attribute | null): boolean {
  return attr !== null && (attr.name === 'ice-ufrag' || attr.name === 'ice-pwd' || attr.name === 'candidate');
}

/** Whitespace-separated tokens of a value, ignoring leading/trailing whitespace. */
export function tokens(value: string): string[] {
  const trimmed = value.trim();
  return trimmed === '' ? [] : trimmed.split(/[ \t]+/);
}

/** A decimal integer made of digits only, within [0, max]; null otherwise. */
export function parseBoundedInt(text: string, max: number): number | null {
  if (!/^[0-9]{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= max ? n : null;
}

function isAddressOfType(addrType: AddrType, address: string): boolean {
  return addrType === 'IP4' ? isIPv4(address) : isIPv6(address);
}

/** `IN IP4 <addr>` (the three tokens of c=, or the tail of a=rtcp / o=); null when malformed. */
export function parseConnectionTokens(netType: string, addrType: string, address: string): ConnectionAddress | null {
  if (netType !== 'IN' || (addrType !== 'IP4' && addrType !== 'IP6')) return null;
  if (!isAddressOfType(addrType, address)) return null;
  return { addrType, address };
}

/** Payload type of `a=rtpmap:`/`a=fmtp:`/`a=rtcp-fb:` values: leading digits followed by whitespace or the end. */
export function leadingPayloadType(value: string): string | null {
  const m = /^([0-9]{1,3})(?:[ \t]|$)/.exec(value);
  return m === null ? null : (m[1] as string);
}

/** Protocols that carry RTP: rtpengine 10.5 manages codecs (rtpmap/fmtp/ptime) only for these. */
export function isRtpProtocol(proto: string): boolean {
  return /(^|\/)RTP\//i.test(proto);
}
