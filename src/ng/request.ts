/**
 * Typed reading of ng request dicts, with rtpengine's spelling leniency.
 *
 * Keys: case-sensitive, but a space or an underscore counts as a hyphen (`call id`, `delete delay`,
 * `rtpp_flags` are `call-id`, `delete-delay`, `rtpp-flags`), plus a few case aliases rtpengine accepts
 * (`call-ID`, ...).
 *
 * Flags (items of `flags`, bare tokens of `rtpp-flags`): spaces become hyphens; case is kept (rtpengine is
 * case-sensitive), except for the case variants rtpengine lists as aliases, which are mapped to one
 * documented spelling (`sip-source-address` -> `SIP-source-address`, `webrtc` -> `WebRTC`, ...).
 * Prefix forms are moved into their structured fields: `replace-X`, `rtcp-mux-X`, `SDES-X`, `OSRTP-X`,
 * `endpoint-learning-X`, `codec-{strip,offer,transcode,mask,consume,accept,except,ignore,set}-X`,
 * `transcode-X`. A `k=v` item (`ICE=remove`) is applied as dict key `k` with value `v`. Everything else,
 * known or not, lands in `flags` (the command layer decides what it knows and logs the rest).
 *
 * `rtpp-flags` (one string, "replace-origin ICE=remove trust-address ...") is parsed like rtpengine's
 * control_ng_flags_parser.c: space-separated tokens, `k=v` pairs, `k=[a b c]` lists, the transport words
 * (`RTP`, `AVP`, `SRTP`, `AVPF`, `DTLS`, `RTP/AVP` ... `UDP/TLS/RTP/SAVPF`) combined into
 * `transport-protocol`, and `internal`/`external`/`direction=X` collected into `direction`. It is applied
 * after the dict's own keys, so for single-valued fields it wins.
 *
 * Wrong value types (`flags` not a list, `call-id` a dict, ...) throw NgError. Missing keys are NOT errors
 * here: the command layer checks what each command requires, in rtpengine's order.
 *
 * Text values are decoded as UTF-8, except identifiers (call-id, tags, via-branch, labels) and the rtpp-flags
 * text that may carry them: those are byte strings, one char per byte (see byte-string.ts).
 */
import { NgError } from '../errors';
import type { EndpointLearning } from '../dataplane/types';
import type { NgDict, NgValue } from './types';
import type { AddrType } from '../sdp/types';
import { idFromWire } from './byte-string';


export interface CodecOptions {
  strip: string[];
  offer: string[];
  transcode: string[];
  mask: string[];
  consume: string[];
  accept: string[];
  except: string[];
  ignore: string[];
  set: string[];
}

export type CodecAction = keyof CodecOptions;

export interface NormalizedRequest {
  command: string;
  callId: string | null;
  fromTag: string | null;
  toTag: string | null;
  viaBranch: string | null;
  /** The SDP body, byte-exact (a subarray of the datagram for bencode requests). */
  sdp: Buffer | null;
  /** Bare flags, hyphenated, e.g. 'trust-address', 'SIP-source-address', 'fatal', plus unknown ones. */
  flags: ReadonlySet<string>;
  /** `replace` entries, hyphenated: origin, session-connection, SDP-version, zero-address, ... */
  replace: ReadonlySet<string>;
  /** `rtcp-mux` entries: offer, demux, accept, reject, require. */
  rtcpMux: ReadonlySet<string>;
  /** `bundle` entries (RFC 9143) and `bundle-X` flags: accept, offer, require, strict, reject. */
  bundle: ReadonlySet<string>;
  ICE: string | null;
  /** `ICE-lite`: forward, backward, both, off. */
  ICElite: string | null;
  DTLS: string | null;
  /** `DTLS-reverse`: passive, active. */
  DTLSreverse: string | null;
  /** `DTLS-fingerprint`: the hash of the relay's a=fingerprint (SHA-256 ...). */
  DTLSfingerprint: string | null;
  transportProtocol: string | null;
  /** Logical interface names [from, to]; from `direction`, `from-interface`/`to-interface` or rtpp-flags. */
  direction: string[];
  receivedFrom: { family: AddrType; address: string } | null;
  mediaAddress: string | null;
  /** As sent (`IP4`/`IP6` expected); the command layer validates. */
  addressFamily: string | null;
  /** Seconds; `delete-delay` / `delete delay`. */
  deleteDelay: number | null;
  /** `label` or `set-label`. */
  label: string | null;
  toLabel: string | null;
  metadata: string | null;
  /** `record-call`: yes/on/true -> true, no/off/false -> false; the `record-call` flag -> true. */
  recordCall: boolean | null;
  /** `supports` entries as sent, e.g. 'load limit'. */
  supports: ReadonlySet<string>;
  endpointLearning: EndpointLearning | null;
  /** `SDES` entries and `SDES-X` flags (X), e.g. 'off', 'no-AES_CM_128_HMAC_SHA1_32'. */
  SDES: string[];
  OSRTP: string[];
  codec: CodecOptions;
  TOS: number | null;
  /** `list`: how many call-ids to return. */
  limit: number | null;
  ptime: number | null;
  /** The decoded dict, for anything not normalized here. */
  raw: NgDict;
}

/** Dict-key aliases beyond the space/underscore -> hyphen rule (rtpengine accepts these spellings too). */
const KEY_ALIASES: Readonly<Record<string, string>> = {
  'call-ID': 'call-id',
  'set-label': 'label',
  'tos': 'TOS',
  'ice': 'ICE',
  'dtls': 'DTLS',
  'sdes': 'SDES',
};

/** The spelling a key is handled under: spaces and underscores become hyphens, then KEY_ALIASES. */
export function canonicalKey(key: string): string {
  const k = key.replace(/[ _]/g, '-');
  return KEY_ALIASES[k] ?? k;
}

/** Case variants rtpengine accepts for flags, mapped to the documented spelling (after space -> hyphen). */
const FLAG_ALIASES: Readonly<Record<string, string>> = {
  'sip-source-address': 'SIP-source-address',
  'nat-wait': 'NAT-wait',
  'pierce-nat': 'pierce-NAT',
  'trickle-ice': 'trickle-ICE',
  'webrtc': 'WebRTC',
  'webRTC': 'WebRTC',
  'WebRtc': 'WebRTC',
  'ice-reject': 'reject-ICE',
  'ICE-reject': 'reject-ICE',
  'reject-ice': 'reject-ICE',
  'no-RTCP-attribute': 'no-rtcp-attribute',
  'full-RTCP-attribute': 'full-rtcp-attribute',
  'generate-rtcp': 'generate-RTCP',
  'inject-dtmf': 'inject-DTMF',
  'detect-dtmf': 'detect-DTMF',
  'block-dtmf': 'block-DTMF',
  'mirror-rtcp': 'mirror-RTCP',
  'rtcp-mirror': 'mirror-RTCP',
  'RTCP-mirror': 'mirror-RTCP',
  'to_tag': 'to-tag',
  'siprec': 'SIPREC',
  'no-codec-renegotiation': 'reuse-codecs',
  'recording-VSC': 'recording-vsc',
  'allow-asymmetric-codec': 'allow-asymmetric-codecs',
};

/** Flag prefix -> codec action (rtpengine's `codec-X-<codec>` aliases). Longest prefixes need no ordering: none is a prefix of another. */
const CODEC_PREFIXES: ReadonlyArray<[string, CodecAction]> = [
  ['codec-strip-', 'strip'],
  ['codec-offer-', 'offer'],
  ['codec-transcode-', 'transcode'],
  ['transcode-', 'transcode'],
  ['codec-mask-', 'mask'],
  ['codec-consume-', 'consume'],
  ['codec-accept-', 'accept'],
  ['codec-except-', 'except'],
  ['codec-ignore-', 'ignore'],
  ['codec-set-', 'set'],
];

const CODEC_ACTIONS: ReadonlySet<string> = new Set<CodecAction>([
  'strip', 'offer', 'transcode', 'mask', 'consume', 'accept', 'except', 'ignore', 'set',
]);

const ENDPOINT_LEARNING: Readonly<Record<string, EndpointLearning>> = {
  off: 'off',
  no: 'off',
  immediate: 'immediate',
  delayed: 'delayed',
  heuristic: 'heuristic',
};

/** rtpp-flags transport words: bit 0 SRTP, bit 1 AVPF, bit 2 DTLS (rtpengine's encoding). */
const TRANSPORTS: ReadonlyArray<string | undefined> = [
  'RTP/AVP', 'RTP/SAVP', 'RTP/AVPF', 'RTP/SAVPF', 'UDP/TLS/RTP/SAVP', undefined, 'UDP/TLS/RTP/SAVPF', undefined,
];

// ---------------------------------------------------------------------------------------------------------
// Value conversion

function typeName(v: NgValue): string {
  if (Buffer.isBuffer(v) || typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'integer';
  return Array.isArray(v) ? 'list' : 'dictionary';
}

function wrongType(key: string, expected: string, v: NgValue): NgError {
  return new NgError(`Invalid value for key '${key}': expected ${expected}, got ${typeName(v)}`);
}

/** A string value (bencode string or JS string; an integer is accepted as its decimal text). */
function asString(v: NgValue, key: string): string {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  throw wrongType(key, 'a string', v);
}

/** An identifier (call-id, tag, via-branch, label): its bytes, one char per byte; an integer as its text. */
function asId(v: NgValue, key: string): string {
  if (Buffer.isBuffer(v) || typeof v === 'string') return idFromWire(v);
  if (typeof v === 'number') return String(v);
  throw wrongType(key, 'a string', v);
}

/** An integer value, also accepted as a decimal string (Kamailio sends some numbers as text). */
function asInt(v: NgValue, key: string): number {
  if (typeof v === 'number') return v;
  if (Buffer.isBuffer(v) || typeof v === 'string') {
    const s = (Buffer.isBuffer(v) ? v.toString('latin1') : v).trim();
    if (/^-?\d{1,15}$/.test(s)) return Number(s);
  }
  throw wrongType(key, 'an integer', v);
}

/** A list of strings. */
function asStringList(v: NgValue, key: string): string[] {
  if (!Array.isArray(v)) throw wrongType(key, 'a list', v);
  return v.map((item) => {
    if (Array.isArray(item) || (typeof item === 'object' && !Buffer.isBuffer(item))) throw wrongType(`${key}[]`, 'a string', item);
    return asString(item, key);
  });
}

// ---------------------------------------------------------------------------------------------------------
// Accessors by key name (any accepted spelling)

/** The key actually present in `dict` that means `name` (`call id` for 'call-id'), or undefined. */
export function findKey(dict: NgDict, name: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(dict, name)) return name;
  const want = canonicalKey(name);
  for (const k of Object.keys(dict)) if (canonicalKey(k) === want) return k;
  return undefined;
}

export function getValue(dict: NgDict, name: string): NgValue | undefined {
  const k = findKey(dict, name);
  return k === undefined ? undefined : dict[k];
}

export function getString(dict: NgDict, name: string): string | null {
  const v = getValue(dict, name);
  return v === undefined ? null : asString(v, name);
}

/** Raw bytes of a string value (SDP); a JS string is UTF-8 encoded. */
export function getBuffer(dict: NgDict, name: string): Buffer | null {
  const v = getValue(dict, name);
  if (v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === 'string') return Buffer.from(v, 'utf8');
  throw wrongType(name, 'a string', v);
}

export function getInt(dict: NgDict, name: string): number | null {
  const v = getValue(dict, name);
  return v === undefined ? null : asInt(v, name);
}

export function getList(dict: NgDict, name: string): string[] | null {
  const v = getValue(dict, name);
  return v === undefined ? null : asStringList(v, name);
}

// ---------------------------------------------------------------------------------------------------------
// Normalization

function emptyCodec(): CodecOptions {
  return { strip: [], offer: [], transcode: [], mask: [], consume: [], accept: [], except: [], ignore: [], set: [] };
}

/**
 * The empty set each set field starts as, shared (never added to: addTo gives a field its own set first).
 * Most requests fill one or two of the five; five new Sets per command were a good part of what it allocated.
 */
const NO_ITEMS: ReadonlySet<string> = new Set<string>();

type SetField = 'flags' | 'replace' | 'rtcpMux' | 'bundle' | 'supports';

function addTo(out: NormalizedRequest, field: SetField, item: string): void {
  let set = out[field];
  if (set === NO_ITEMS) {
    set = new Set<string>();
    out[field] = set;
  }
  (set as Set<string>).add(item);
}

function emptyRequest(raw: NgDict): NormalizedRequest {
  return {
    command: '',
    callId: null,
    fromTag: null,
    toTag: null,
    viaBranch: null,
    sdp: null,
    flags: NO_ITEMS,
    replace: NO_ITEMS,
    rtcpMux: NO_ITEMS,
    bundle: NO_ITEMS,
    ICE: null,
    ICElite: null,
    DTLS: null,
    DTLSreverse: null,
    DTLSfingerprint: null,
    transportProtocol: null,
    direction: [],
    receivedFrom: null,
    mediaAddress: null,
    addressFamily: null,
    deleteDelay: null,
    label: null,
    toLabel: null,
    metadata: null,
    recordCall: null,
    supports: NO_ITEMS,
    endpointLearning: null,
    SDES: [],
    OSRTP: [],
    codec: emptyCodec(),
    TOS: null,
    limit: null,
    ptime: null,
    raw,
  };
}

/** rtpengine's escapes inside codec flag values: `--` stands for `=`, `..` for a space. */
function unescapeCodec(s: string): string {
  return s.replace(/--/g, '=').replace(/\.\./g, ' ');
}

function parseRecordCall(s: string): boolean | null {
  const v = s.toLowerCase();
  if (v === 'yes' || v === 'on' || v === 'true') return true;
  if (v === 'no' || v === 'off' || v === 'false') return false;
  return null;
}

function parseReceivedFrom(items: string[], key: string): { family: AddrType; address: string } {
  if (items.length < 2) throw new NgError(`Invalid value for key '${key}': expected [family, address]`);
  const fam = items[0]!.toUpperCase();
  const address = items[1]!;
  // A family other than IP4/IP6 is not fatal in rtpengine; infer it from the address instead.
  const family: AddrType = fam === 'IP4' || fam === 'IP6' ? fam : address.includes(':') ? 'IP6' : 'IP4';
  return { family, address };
}

/**
 * A value arriving as text (a `k=v` flag item or rtpp-flags token) where a list is expected:
 * `[a b c]` is a list, anything else a one-item list.
 */
function textToList(s: string): string[] {
  const t = s.trim();
  if (t.startsWith('[') && t.endsWith(']')) return t.slice(1, -1).split(/\s+/).filter((x) => x.length > 0);
  return t.length > 0 ? [t] : [];
}

/** Whether a key's value comes from the dict (typed) or from text (flag items, rtpp-flags). */
type Source = 'dict' | 'text';

function listOf(v: NgValue, key: string, source: Source): string[] {
  if (source === 'text' && (Buffer.isBuffer(v) || typeof v === 'string')) return textToList(asString(v, key));
  return asStringList(v, key);
}

function applyCodecDict(out: NormalizedRequest, v: NgValue, key: string, source: Source): void {
  if (source === 'text') {
    // `codec=[strip=PCMA offer=opus]` style text is rare; accept `codec-X=a` tokens instead (handled as flags).
    return;
  }
  if (typeof v !== 'object' || Buffer.isBuffer(v) || Array.isArray(v)) throw wrongType(key, 'a dictionary', v);
  for (const sub of Object.keys(v)) {
    const action = sub.replace(/[ _]/g, '-');
    if (!CODEC_ACTIONS.has(action)) continue; // unknown codec sub-keys stay in `raw`
    const val = v[sub]!;
    // A single string is accepted for a codec list (rtpengine's parser treats it as a one-element list).
    const items = Buffer.isBuffer(val) || typeof val === 'string' ? [asString(val, `${key}.${sub}`)] : asStringList(val, `${key}.${sub}`);
    out.codec[action as CodecAction].push(...items);
  }
}

/** Applies one main key (already canonical) with its value. */
function applyKey(out: NormalizedRequest, key: string, v: NgValue, source: Source): void {
  switch (key) {
    case 'command':
      out.command = asString(v, key);
      return;
    case 'call-id':
      out.callId = asId(v, key);
      return;
    case 'from-tag':
      out.fromTag = asId(v, key);
      return;
    case 'to-tag':
      out.toTag = asId(v, key);
      return;
    case 'via-branch':
      out.viaBranch = asId(v, key);
      return;
    case 'sdp':
      if (Buffer.isBuffer(v)) out.sdp = v;
      else if (typeof v === 'string') out.sdp = Buffer.from(v, 'utf8');
      else throw wrongType(key, 'a string', v);
      return;
    case 'flags':
      for (const f of listOf(v, key, source)) applyFlag(out, f);
      return;
    case 'replace':
      for (const r of listOf(v, key, source)) addTo(out, 'replace', r.replace(/ /g, '-'));
      return;
    case 'rtcp-mux':
      for (const r of listOf(v, key, source)) addTo(out, 'rtcpMux', r.replace(/ /g, '-'));
      return;
    case 'bundle':
      for (const b of listOf(v, key, source)) addTo(out, 'bundle', b);
      return;
    case 'supports':
      for (const s of listOf(v, key, source)) addTo(out, 'supports', s);
      return;
    case 'SDES':
      out.SDES.push(...listOf(v, key, source));
      return;
    case 'OSRTP':
      out.OSRTP.push(...listOf(v, key, source));
      return;
    case 'direction':
      out.direction = source === 'text' && !asString(v, key).trim().startsWith('[')
        ? [...out.direction, asString(v, key)]
        : listOf(v, key, source);
      return;
    case 'from-interface':
      out.direction[0] = asString(v, key);
      return;
    case 'to-interface':
      if (out.direction.length === 0) out.direction[0] = '';
      out.direction[1] = asString(v, key);
      return;
    case 'received-from':
      out.receivedFrom = parseReceivedFrom(listOf(v, key, source), key);
      return;
    case 'ICE':
      out.ICE = asString(v, key);
      return;
    case 'DTLS':
      out.DTLS = asString(v, key);
      return;
    case 'ICE-lite':
      out.ICElite = asString(v, key);
      return;
    case 'DTLS-reverse':
      out.DTLSreverse = asString(v, key);
      return;
    case 'DTLS-fingerprint':
      out.DTLSfingerprint = asString(v, key);
      return;
    case 'transport-protocol':
      out.transportProtocol = asString(v, key);
      return;
    case 'media-address':
      out.mediaAddress = asString(v, key);
      return;
    case 'address-family':
      out.addressFamily = asString(v, key);
      return;
    case 'delete-delay':
      out.deleteDelay = asInt(v, key);
      return;
    case 'label':
      out.label = asId(v, key);
      return;
    case 'to-label':
      out.toLabel = asId(v, key);
      return;
    case 'metadata':
      out.metadata = asString(v, key);
      return;
    case 'record-call':
      out.recordCall = parseRecordCall(asString(v, key));
      return;
    case 'endpoint-learning':
      out.endpointLearning = ENDPOINT_LEARNING[asString(v, key)] ?? null;
      return;
    case 'codec':
      applyCodecDict(out, v, key, source);
      return;
    case 'TOS':
      out.TOS = asInt(v, key);
      return;
    case 'limit':
      out.limit = asInt(v, key);
      return;
    case 'ptime':
      out.ptime = asInt(v, key);
      return;
    default:
      // Not normalized here; still available in `raw`.
      return;
  }
}

/** One flag token (a `flags` item or a bare rtpp-flags word). */
function applyFlag(out: NormalizedRequest, token: string): void {
  const eq = token.indexOf('=');
  if (eq > 0) {
    applyTextKeyValue(out, token.slice(0, eq), token.slice(eq + 1));
    return;
  }
  const hyphenated = token.replace(/ /g, '-');
  const flag = FLAG_ALIASES[hyphenated] ?? hyphenated;
  if (flag.length === 0) return;

  const rest = (prefix: string): string | null =>
    flag.length > prefix.length && flag.startsWith(prefix) ? flag.slice(prefix.length) : null;

  let x: string | null;
  if ((x = rest('endpoint-learning-')) !== null) {
    out.endpointLearning = ENDPOINT_LEARNING[x] ?? out.endpointLearning;
    return;
  }
  if ((x = rest('replace-')) !== null) {
    addTo(out, 'replace', x);
    return;
  }
  if ((x = rest('rtcp-mux-')) !== null) {
    addTo(out, 'rtcpMux', x);
    return;
  }
  if ((x = rest('bundle-')) !== null) {
    addTo(out, 'bundle', x);
    return;
  }
  if ((x = rest('OSRTP-')) !== null) {
    out.OSRTP.push(x);
    return;
  }
  if ((x = rest('SDES-')) !== null) {
    out.SDES.push(x);
    return;
  }
  for (const [prefix, action] of CODEC_PREFIXES) {
    if ((x = rest(prefix)) !== null) {
      out.codec[action].push(unescapeCodec(x));
      return;
    }
  }
  if (flag === 'record-call') out.recordCall = true;
  addTo(out, 'flags', flag);
}

/** A `k=v` pair from text: rtpp-flags or a `flags` item such as `ICE=remove`. */
function applyTextKeyValue(out: NormalizedRequest, rawKey: string, value: string): void {
  const key = canonicalKey(rawKey);
  // `codec-strip=PCMA`, `transcode=opus`: the value form of the codec prefix flags.
  for (const [prefix, action] of CODEC_PREFIXES) {
    if (key === prefix.slice(0, -1)) {
      for (const item of textToList(value)) out.codec[action].push(unescapeCodec(item));
      return;
    }
  }
  // rtpengine marks a from-tag given in flags text as `directional`.
  if (key === 'from-tag') addTo(out, 'flags', 'directional');
  if (key === 'sdp' || key === 'command' || key === 'rtpp-flags') return; // never taken from flags text
  applyKey(out, key, value, 'text');
}

/** Splits rtpp-flags text into tokens, keeping `k=[a b c]` together. */
function tokenizeRtppFlags(text: string): string[] {
  const words = text.split(' ').filter((w) => w.length > 0);
  const tokens: string[] = [];
  for (let i = 0; i < words.length; i++) {
    let tok = words[i]!;
    const eq = tok.indexOf('=');
    if (eq > 0 && tok[eq + 1] === '[') {
      let depth = 0;
      const count = (s: string): void => {
        for (const ch of s) depth += ch === '[' ? 1 : ch === ']' ? -1 : 0;
      };
      count(tok);
      while (depth > 0 && i + 1 < words.length) {
        tok += ' ' + words[++i]!;
        count(words[i]!);
      }
    }
    tokens.push(tok);
  }
  return tokens;
}

/** Full transport names in rtpp-flags set the transport bits outright (rtpengine's parse_rtpp_flags). */
const TRANSPORT_WORDS: Readonly<Record<string, number>> = {
  'RTP/AVP': 0x100,
  'RTP/SAVP': 0x101,
  'RTP/AVPF': 0x102,
  'RTP/SAVPF': 0x103,
  'UDP/TLS/RTP/SAVP': 0x104,
  'UDP/TLS/RTP/SAVPF': 0x106,
};

/** Applies an rtpp-flags string to `out` (rtpengine's parse_rtpp_flags). */
function applyRtppFlags(out: NormalizedRequest, text: string): void {
  let transport = 0;
  for (const token of tokenizeRtppFlags(text)) {
    switch (token) {
      case 'RTP':
        transport = (transport | 0x100) & ~0x001;
        continue;
      case 'AVP':
        transport = (transport | 0x100) & ~0x002;
        continue;
      case 'SRTP':
        transport |= 0x101;
        continue;
      case 'AVPF':
        transport |= 0x102;
        continue;
      case 'DTLS':
        transport |= 0x104;
        continue;
      case 'internal':
      case 'external':
        out.direction.push(token);
        continue;
    }
    const full = TRANSPORT_WORDS[token];
    if (full !== undefined) {
      transport = full;
      continue;
    }
    applyFlag(out, token);
  }
  if (transport) {
    const t = TRANSPORTS[transport & 0x7];
    if (t) out.transportProtocol = t;
  }
}

/** Parses an rtpp-flags string on its own (e.g. for tests or logging). */
export function parseRtppFlags(text: string): NormalizedRequest {
  const out = emptyRequest(Object.create(null) as NgDict);
  applyRtppFlags(out, text);
  return out;
}

/**
 * Reads every key the command layer uses into typed fields. Throws NgError for values of the wrong type;
 * does not check that required keys are present.
 */
export function normalizeRequest(dict: NgDict): NormalizedRequest {
  const out = emptyRequest(dict);
  let rtppFlags: string | null = null;
  for (const rawKey of Object.keys(dict)) {
    const key = canonicalKey(rawKey);
    const v = dict[rawKey]!;
    if (key === 'rtpp-flags') {
      // Bytes kept as they are: the text may carry a from-tag or call-id (see asId).
      rtppFlags = asId(v, rawKey);
      continue;
    }
    applyKey(out, key, v, 'dict');
  }
  if (rtppFlags !== null) applyRtppFlags(out, rtppFlags);
  return out;
}
