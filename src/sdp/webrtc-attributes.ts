/**
 * The WebRTC attributes of a media section, read once by the parser: ICE (RFC 8839: a=ice-ufrag, a=ice-pwd,
 * a=ice-options, a=ice-lite, a=candidate, a=end-of-candidates), DTLS-SRTP (RFC 8122 a=fingerprint, RFC 4145 /
 * 5763 a=setup, RFC 8842 a=tls-id) and a=mid (RFC 9143). Session-level values apply to every media that has no
 * value of its own (RFC 8839 §5.4, RFC 8122 §5). A malformed line is left out, never an error: an SDP is only
 * refused for its structure (see parse.ts).
 */
import { isIP } from 'node:net';
import type { DtlsFingerprint, IceCandidate } from '../dataplane/types';
import type { Attribute } from './attributes';
import { parseBoundedInt, tokens } from './attributes';

export type DtlsSetup = 'actpass' | 'active' | 'passive' | 'holdconn';

/** What a party's SDP says about ICE for one media section. */
export interface SdpIce {
  ufrag: string | null;
  pwd: string | null;
  /** a=ice-options tokens (e.g. 'trickle', 'ice2'). */
  options: string[];
  /** a=ice-lite (session level). */
  lite: boolean;
  /** Well-formed UDP candidates, in SDP order. */
  candidates: IceCandidate[];
  endOfCandidates: boolean;
}

export interface SdpDtls {
  fingerprint: DtlsFingerprint | null;
  setup: DtlsSetup | null;
  tlsId: string | null;
}

const HASHES: ReadonlySet<string> = new Set(['sha-1', 'sha-224', 'sha-256', 'sha-384', 'sha-512']);
const DIGEST_BYTES: Readonly<Record<DtlsFingerprint['hash'], number>> = {
  'sha-1': 20,
  'sha-224': 28,
  'sha-256': 32,
  'sha-384': 48,
  'sha-512': 64,
};

/** `sha-256 AB:CD:...` (hash name case-insensitive, RFC 8122 §5); null when malformed. */
function parseFingerprint(value: string): DtlsFingerprint | null {
  const [hashText, digest, ...rest] = tokens(value);
  if (hashText === undefined || digest === undefined || rest.length > 0) return null;
  const hash = hashText.toLowerCase();
  if (!HASHES.has(hash)) return null;
  if (!/^[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})*$/.test(digest)) return null;
  const bytes = Buffer.from(digest.replace(/:/g, ''), 'hex');
  const typed = hash as DtlsFingerprint['hash'];
  return bytes.length === DIGEST_BYTES[typed] ? { hash: typed, value: bytes } : null;
}

/** The a=fingerprint value of a fingerprint: upper-case hex pairs joined by ':' (as rtpengine writes it). */
export function formatFingerprint(f: DtlsFingerprint): string {
  return `${f.hash} ${fingerprintHex(f.value)}`;
}

function fingerprintHex(value: Buffer): string {
  return [...value].map((b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

function parseSetup(value: string): DtlsSetup | null {
  const v = value.trim();
  return v === 'actpass' || v === 'active' || v === 'passive' || v === 'holdconn' ? v : null;
}

const CANDIDATE_TYPES: ReadonlySet<string> = new Set(['host', 'srflx', 'prflx', 'relay']);

/**
 * `<foundation> <component> <transport> <priority> <address> <port> typ <type> ...` (RFC 8839 §5.1). Only UDP
 * candidates with an IP address are kept (TCP candidates and mDNS `.local` names are not reachable by a relay).
 */
function parseCandidate(value: string): IceCandidate | null {
  const t = tokens(value);
  if (t.length < 8 || t[6] !== 'typ') return null;
  const [foundation, componentText, transport, priorityText, address, portText, , type] = t as string[];
  if (!/^[A-Za-z0-9+/]{1,32}$/.test(foundation as string)) return null;
  if ((transport as string).toUpperCase() !== 'UDP') return null;
  const component = parseBoundedInt(componentText as string, 256);
  const priority = parseBoundedInt(priorityText as string, 0xffffffff);
  const port = parseBoundedInt(portText as string, 65535);
  const family = isIP(address as string);
  if (component === null || component < 1 || priority === null || port === null || port === 0 || family === 0) return null;
  if (!CANDIDATE_TYPES.has(type as string)) return null;
  return {
    foundation: foundation as string,
    component,
    priority,
    type: type as IceCandidate['type'],
    endpoint: { family: family === 6 ? 'IPv6' : 'IPv4', address: address as string, port },
  };
}

/** Accumulates the WebRTC attributes of one level (session or media). */
export class WebrtcAttributeReader {
  ufrag: string | null = null;
  pwd: string | null = null;
  options: string[] | null = null;
  lite = false;
  readonly candidates: IceCandidate[] = [];
  endOfCandidates = false;
  fingerprint: DtlsFingerprint | null = null;
  setup: DtlsSetup | null = null;
  tlsId: string | null = null;
  mid: string | null = null;

  read(attr: Attribute): void {
    switch (attr.name) {
      case 'ice-ufrag':
        this.ufrag ??= attr.value.trim() || null;
        break;
      case 'ice-pwd':
        this.pwd ??= attr.value.trim() || null;
        break;
      case 'ice-options':
        this.options ??= tokens(attr.value);
        break;
      case 'ice-lite':
        this.lite = true;
        break;
      case 'candidate': {
        const c = parseCandidate(attr.value);
        if (c !== null) this.candidates.push(c);
        break;
      }
      case 'end-of-candidates':
        this.endOfCandidates = true;
        break;
      case 'fingerprint':
        // RFC 8122 allows several; the first usable one is what the relay checks the certificate against.
        this.fingerprint ??= parseFingerprint(attr.value);
        break;
      case 'setup':
        this.setup ??= parseSetup(attr.value);
        break;
      case 'tls-id':
        this.tlsId ??= attr.value.trim() || null;
        break;
      case 'mid':
        this.mid ??= attr.value.trim() || null;
        break;
    }
  }

  /** This media level's ICE, falling back to the session level's for what the media does not say. */
  ice(session: WebrtcAttributeReader): SdpIce | null {
    const ufrag = this.ufrag ?? session.ufrag;
    const pwd = this.pwd ?? session.pwd;
    const candidates = [...session.candidates, ...this.candidates];
    if (ufrag === null && pwd === null && candidates.length === 0) return null;
    return {
      ufrag,
      pwd,
      options: this.options ?? session.options ?? [],
      lite: session.lite || this.lite,
      candidates,
      endOfCandidates: this.endOfCandidates || session.endOfCandidates,
    };
  }

  dtls(session: WebrtcAttributeReader): SdpDtls | null {
    const fingerprint = this.fingerprint ?? session.fingerprint;
    const setup = this.setup ?? session.setup;
    if (fingerprint === null && setup === null) return null;
    return { fingerprint, setup, tlsId: this.tlsId ?? session.tlsId };
  }
}
