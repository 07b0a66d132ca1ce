/**
 * SDES (RFC 4568) `a=crypto` attributes: the suites ngrelay's native SRTP core implements, parsing offered
 * lines, formatting them back, and generating ngrelay's own keys. Keys are written in base64 without padding,
 * as rtpengine does (its `SDES-pad` flag turns padding on; see `pad`).
 *
 * Grammar (RFC 4568 §9.2): a=crypto:<tag> <crypto-suite> <key-params> [<session-param> ...]
 *   key-params = key-param *(";" key-param);  key-param = "inline:" base64(key||salt) ["|" lifetime] ["|" MKI ":" length]
 */
import { randomBytes } from 'node:crypto';
import { SRTP_SUITES, srtpSuite, type SrtpSuite } from '../dataplane/srtp-suites';

/** The suites SDES can negotiate are exactly those the native SRTP core implements (one table: srtp-suites.ts). */
export type SdesSuite = SrtpSuite;
export const SDES_SUITES: readonly SdesSuite[] = SRTP_SUITES;

export function sdesSuite(name: string): SdesSuite | undefined {
  return srtpSuite(name);
}

export interface SdesMki {
  /** MKI value (decimal in SDP), carried big-endian in `length` bytes of every packet. */
  value: bigint;
  /** 1..128 bytes. */
  length: number;
}

export interface SdesKeyParam {
  /** Master key and master salt, split by the suite's lengths. */
  key: Buffer;
  salt: Buffer;
  /** Master key lifetime in packets, as written ("2^31" or decimal); undefined when absent. */
  lifetime?: string;
  mki?: SdesMki;
}

export interface SdesSessionParams {
  unencryptedSrtp: boolean;
  unencryptedSrtcp: boolean;
  unauthenticatedSrtp: boolean;
  /** KDR exponent; only absent/0 (no re-keying from the index) is supported by the native core. */
  kdr?: number;
  /** Window size hint (WSH). */
  wsh?: number;
  /** Parameters kept verbatim (FEC_ORDER, FEC_KEY, unknown ones) so a pass-through can reproduce them. */
  other: string[];
}

export interface SdesCrypto {
  tag: number;
  suite: SdesSuite;
  keys: SdesKeyParam[];
  params: SdesSessionParams;
}

export type SdesParseResult = { ok: true; crypto: SdesCrypto } | { ok: false; reason: string };

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function fail(reason: string): SdesParseResult {
  return { ok: false, reason };
}

function parseLifetime(s: string): string | undefined {
  const pow = /^2\^(\d{1,2})$/.exec(s);
  if (pow) return Number(pow[1]) <= 48 ? s : undefined;
  return /^[1-9]\d{0,14}$/.test(s) ? s : undefined;
}

function parseKeyParam(text: string, suite: SdesSuite): SdesKeyParam | string {
  if (!text.startsWith('inline:')) return `key method is not "inline": ${text}`;
  const [material = '', ...rest] = text.slice('inline:'.length).split('|');
  if (!BASE64.test(material)) return 'key is not base64';
  const bytes = Buffer.from(material, 'base64');
  const expected = suite.masterKeyLength + suite.masterSaltLength;
  if (bytes.length !== expected) return `key+salt is ${bytes.length} bytes, ${suite.name} needs ${expected}`;
  const param: SdesKeyParam = {
    key: bytes.subarray(0, suite.masterKeyLength),
    salt: bytes.subarray(suite.masterKeyLength),
  };
  if (rest.length > 2) return 'too many "|" fields in key parameter';
  for (const [i, field] of rest.entries()) {
    const mki = /^(\d{1,39}):(\d{1,3})$/.exec(field);
    if (mki) {
      if (param.mki) return 'two MKI fields';
      const value = BigInt(mki[1] as string);
      const length = Number(mki[2]);
      if (length < 1 || length > 128) return `MKI length ${length} outside 1..128`;
      if (value >= 1n << BigInt(8 * length)) return 'MKI value does not fit its length';
      param.mki = { value, length };
    } else {
      // RFC 4568: the lifetime, when present, precedes the MKI.
      if (i !== 0 || param.lifetime !== undefined) return `unexpected key parameter field: ${field}`;
      const lifetime = parseLifetime(field);
      if (lifetime === undefined) return `bad key lifetime: ${field}`;
      param.lifetime = lifetime;
    }
  }
  return param;
}

function parseSessionParams(tokens: string[]): SdesSessionParams | string {
  const p: SdesSessionParams = { unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false, other: [] };
  for (const t of tokens) {
    if (t === 'UNENCRYPTED_SRTP') p.unencryptedSrtp = true;
    else if (t === 'UNENCRYPTED_SRTCP') p.unencryptedSrtcp = true;
    else if (t === 'UNAUTHENTICATED_SRTP') p.unauthenticatedSrtp = true;
    else if (t.startsWith('KDR=')) {
      if (!/^KDR=\d{1,2}$/.test(t) || Number(t.slice(4)) > 24) return `bad ${t}`;
      p.kdr = Number(t.slice(4));
    } else if (t.startsWith('WSH=')) {
      if (!/^WSH=\d{1,9}$/.test(t) || Number(t.slice(4)) < 64) return `bad ${t}`;
      p.wsh = Number(t.slice(4));
    } else p.other.push(t);
  }
  return p;
}

/**
 * Parses the value of an `a=crypto` attribute (with or without the leading "a=crypto:"). Unknown suites and
 * malformed lines come back as { ok: false } with a reason: the caller skips that line (an offer may carry
 * suites ngrelay does not implement) and decides what to do when none is usable.
 */
export function parseCrypto(value: string): SdesParseResult {
  const text = value.trim().replace(/^a=crypto:/, '');
  const fields = text.split(/[ \t]+/);
  const [tagText = '', suiteName = '', keyParams = '', ...session] = fields;
  if (!/^\d{1,9}$/.test(tagText)) return fail(`bad crypto tag: ${tagText}`);
  const suite = sdesSuite(suiteName);
  if (!suite) return fail(`unsupported crypto suite: ${suiteName}`);
  if (!keyParams) return fail('missing key parameters');
  const keys: SdesKeyParam[] = [];
  for (const k of keyParams.split(';')) {
    const parsed = parseKeyParam(k, suite);
    if (typeof parsed === 'string') return fail(parsed);
    keys.push(parsed);
  }
  // RFC 4568 §6.1: several keys are only distinguishable by MKI.
  if (keys.length > 1 && keys.some((k) => !k.mki)) return fail('several keys without MKI');
  const params = parseSessionParams(session);
  if (typeof params === 'string') return fail(params);
  if (suite.aead && (params.unencryptedSrtp || params.unauthenticatedSrtp)) {
    return fail(`${suite.name} cannot be unencrypted or unauthenticated`);
  }
  return { ok: true, crypto: { tag: Number(tagText), suite, keys, params } };
}

/** True when the native core can run this crypto as is (KDR 0 only). */
export function cryptoUsable(c: SdesCrypto): boolean {
  return c.params.kdr === undefined || c.params.kdr === 0;
}

export interface FormatOptions {
  /** Base64 with "=" padding (rtpengine's SDES-pad); default off. */
  pad?: boolean;
}

/** The attribute value ("1 AES_CM_128_HMAC_SHA1_80 inline:..."), without the "a=crypto:" prefix. */
export function formatCrypto(c: SdesCrypto, options: FormatOptions = {}): string {
  const keys = c.keys.map((k) => {
    let b64 = Buffer.concat([k.key, k.salt]).toString('base64');
    if (!options.pad) b64 = b64.replace(/=+$/, '');
    let s = `inline:${b64}`;
    if (k.lifetime !== undefined) s += `|${k.lifetime}`;
    if (k.mki) s += `|${k.mki.value.toString()}:${k.mki.length}`;
    return s;
  });
  const session: string[] = [];
  if (c.params.kdr !== undefined) session.push(`KDR=${c.params.kdr}`);
  if (c.params.unencryptedSrtp) session.push('UNENCRYPTED_SRTP');
  if (c.params.unencryptedSrtcp) session.push('UNENCRYPTED_SRTCP');
  if (c.params.unauthenticatedSrtp) session.push('UNAUTHENTICATED_SRTP');
  if (c.params.wsh !== undefined) session.push(`WSH=${c.params.wsh}`);
  session.push(...c.params.other);
  return [String(c.tag), c.suite.name, keys.join(';'), ...session].join(' ');
}

export interface GenerateOptions {
  unencryptedSrtp?: boolean;
  unencryptedSrtcp?: boolean;
  unauthenticatedSrtp?: boolean;
}

/** A fresh crypto line for `suite` with a key and salt from the OS CSPRNG (crypto.randomBytes). */
export function generateCrypto(tag: number, suite: SdesSuite, options: GenerateOptions = {}): SdesCrypto {
  const material = randomBytes(suite.masterKeyLength + suite.masterSaltLength);
  return {
    tag,
    suite,
    keys: [{ key: material.subarray(0, suite.masterKeyLength), salt: material.subarray(suite.masterKeyLength) }],
    params: {
      unencryptedSrtp: !suite.aead && options.unencryptedSrtp === true,
      unencryptedSrtcp: options.unencryptedSrtcp === true,
      unauthenticatedSrtp: !suite.aead && options.unauthenticatedSrtp === true,
      other: [],
    },
  };
}

/**
 * Suites ngrelay may offer under the ng `SDES` flags: `no-<suite>` removes one, any `only-<suite>` restricts
 * to those named; order stays the preference order. (`off` is the caller's: it means no SDES at all.)
 */
export function offerableSuites(sdesFlags: readonly string[]): SdesSuite[] {
  const only = new Set(sdesFlags.filter((f) => f.startsWith('only-')).map((f) => f.slice(5)));
  const no = new Set(sdesFlags.filter((f) => f.startsWith('no-')).map((f) => f.slice(3)));
  return SDES_SUITES.filter((s) => (only.size === 0 || only.has(s.name)) && !no.has(s.name));
}
