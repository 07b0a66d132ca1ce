/**
 * SDP parser: keeps every line as its original bytes and extracts what the call model needs.
 * Malformed input (no `v=0` first, a line that is not `<letter>=`, a bad m=, c= or o= line) throws
 * NgError('Failed to parse SDP'), rtpengine's reply; `sdpParseDetail(err)` names the line and the fault,
 * for the log. Attribute lines are never an error: one that does not parse (e.g. `a=rtcp:abc`) is treated
 * as unknown.
 */
import {
  attributeOf,
  directionOf,
  isIceCredentialOrCandidate,
  parseBoundedInt,
  parseConnectionTokens,
  tokens,
} from './attributes';
import { parseRtpmap } from './codecs';
import { parseCrypto } from './crypto';
import { WebrtcAttributeReader } from './webrtc-attributes';
import { sdpParseError, splitSdpLines } from './lines';
import type { ConnectionAddress, Direction, ParsedSdp, SdpLine, SdpMedia, SdpOrigin } from './types';

export { sdpParseDetail } from './lines';

/** Throws NgError('Failed to parse SDP'); its sdpParseDetail() names `line` (number and text) and `what`. */
function fail(line: SdpLine, what: string): never {
  throw sdpParseError(line.lineNo ?? null, what, `${line.type}=${line.value}`);
}

function parseConnection(line: SdpLine): ConnectionAddress {
  const t = tokens(line.value);
  if (t.length !== 3) fail(line, 'c= needs 3 fields (IN IP4|IP6 address)');
  return parseConnectionTokens(t[0] as string, t[1] as string, t[2] as string) ?? fail(line, 'bad c= address');
}

function parseOrigin(line: SdpLine): SdpOrigin {
  const t = tokens(line.value);
  if (t.length !== 6) fail(line, 'o= needs 6 fields');
  const [username, sessionId, sessionVersion, netType, addrType, address] = t as [
    string, string, string, string, string, string,
  ];
  if (addrType !== 'IP4' && addrType !== 'IP6') fail(line, 'o= address type is neither IP4 nor IP6');
  return { username, sessionId, sessionVersion, netType, addrType, address };
}

interface MediaLine {
  type: string;
  port: number;
  portCount: number | null;
  proto: string;
  formats: string[];
}

function parseMediaLine(line: SdpLine): MediaLine {
  const t = tokens(line.value);
  if (t.length < 3) fail(line, 'm= needs at least 3 fields (media port proto)');
  const [type, portSpec, proto] = t as [string, string, string];
  const [portText, countText, ...extra] = portSpec.split('/');
  if (extra.length > 0) fail(line, 'bad m= port/count');
  const port = parseBoundedInt(portText as string, 65535) ?? fail(line, 'bad m= port');
  const portCount = countText === undefined ? null : (parseBoundedInt(countText, 65535) ?? fail(line, 'bad m= port count'));
  return { type, port, portCount, proto, formats: t.slice(3) };
}

/** a=rtcp:<port> [IN IP4 <addr>]; null when malformed. */
function parseRtcp(value: string): SdpMedia['rtcp'] {
  const t = tokens(value);
  const port = t[0] === undefined ? null : parseBoundedInt(t[0], 65535);
  if (port === null) return null;
  if (t.length === 1) return { port, connection: null };
  if (t.length !== 4) return null;
  const connection = parseConnectionTokens(t[1] as string, t[2] as string, t[3] as string);
  return connection === null ? null : { port, connection };
}

/** What the session level contributes to every media section. */
interface SessionDefaults {
  connection: ConnectionAddress | null;
  direction: Direction | null;
  hasIce: boolean;
  loopProtectTokens: string[];
  webrtc: WebrtcAttributeReader;
}

function parseMedia(index: number, lines: SdpLine[], session: SessionDefaults): SdpMedia {
  const mline = parseMediaLine(lines[0] as SdpLine);
  let connection: ConnectionAddress | null = null;
  let direction: Direction | null = null;
  let rtcp: SdpMedia['rtcp'] = null;
  let rtcpMux = false;
  let hasIce = session.hasIce;
  const rtpmaps = new Map<string, string>();
  const ownTokens: string[] = [];
  const crypto: SdpMedia['crypto'] = [];
  const webrtc = new WebrtcAttributeReader();
  for (const line of lines.slice(1)) {
    if (line.type === 'c') {
      connection = parseConnection(line);
      continue;
    }
    const attr = attributeOf(line);
    if (attr === null) continue;
    // The last direction attribute wins, as in rtpengine 10.5.
    direction = directionOf(attr) ?? direction;
    if (isIceCredentialOrCandidate(attr)) hasIce = true;
    webrtc.read(attr);
    switch (attr.name) {
      case 'crypto':
        crypto.push(parseCrypto(attr.value));
        break;
      case 'rtcp':
        rtcp = parseRtcp(attr.value);
        break;
      case 'rtcp-mux':
        if (attr.value === '') rtcpMux = true;
        break;
      case 'rtpmap': {
        const parsed = parseRtpmap(attr.value);
        if (parsed !== null && !rtpmaps.has(parsed[0])) rtpmaps.set(parsed[0], parsed[1]);
        break;
      }
      case 'rtpengine':
        ownTokens.push(attr.value.trim());
        break;
    }
  }
  const loopProtectTokens = [...session.loopProtectTokens, ...ownTokens];
  return {
    index,
    type: mline.type,
    port: mline.port,
    portCount: mline.portCount,
    proto: mline.proto,
    formats: mline.formats,
    connection,
    effectiveConnection: connection ?? session.connection,
    direction: direction ?? session.direction ?? 'sendrecv',
    rtcp,
    rtcpMux,
    hasIce,
    rtpmaps,
    loopProtectToken: ownTokens[0] ?? session.loopProtectTokens[0] ?? null,
    loopProtectTokens,
    crypto,
    ice: webrtc.ice(session.webrtc),
    dtls: webrtc.dtls(session.webrtc),
    mid: webrtc.mid,
    lines,
  };
}

export function parseSdp(buf: Buffer): ParsedSdp {
  const { eol, lines } = splitSdpLines(buf);
  const first = lines[0];
  if (first === undefined) throw sdpParseError(null, 'empty body');
  if (first.type !== 'v' || first.value.trim() !== '0') fail(first, "the first line is not 'v=0'");

  const firstMedia = lines.findIndex((l) => l.type === 'm');
  const sessionLines = firstMedia < 0 ? lines : lines.slice(0, firstMedia);
  let origin: SdpOrigin | null = null;
  const session: SessionDefaults = {
    connection: null,
    direction: null,
    hasIce: false,
    loopProtectTokens: [],
    webrtc: new WebrtcAttributeReader(),
  };
  const bundleGroups: string[][] = [];
  for (const line of sessionLines) {
    if (line.type === 'o') origin = parseOrigin(line);
    else if (line.type === 'c') session.connection = parseConnection(line);
    const attr = attributeOf(line);
    if (attr === null) continue;
    session.direction = directionOf(attr) ?? session.direction;
    if (isIceCredentialOrCandidate(attr) || attr.name === 'ice-lite') session.hasIce = true;
    if (attr.name === 'rtpengine') session.loopProtectTokens.push(attr.value.trim());
    if (attr.name === 'group') {
      const [semantics, ...mids] = tokens(attr.value);
      if (semantics === 'BUNDLE' && mids.length > 0) bundleGroups.push(mids);
    } else session.webrtc.read(attr);
  }

  const media: SdpMedia[] = [];
  if (firstMedia >= 0) {
    let start = firstMedia;
    for (let i = firstMedia + 1; i <= lines.length; i++) {
      if (i === lines.length || (lines[i] as SdpLine).type === 'm') {
        media.push(parseMedia(media.length, lines.slice(start, i), session));
        start = i;
      }
    }
  }
  return { eol, origin, connection: session.connection, sessionLines, media, bundleGroups };
}
