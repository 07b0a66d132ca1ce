/**
 * SDP writer: applies an SdpRewrite to a ParsedSdp the way rtpengine 10.5 rewrites an SDP.
 *
 * Lines ngrelay OWNS (rewritten, moved, dropped or generated here); every other line is copied byte for byte
 * and keeps its relative order:
 *  Session level
 *   - o=            rebuilt only when plan.origin / plan.sessionVersion say so.
 *   - c=            address replaced by plan.sessionConnection when some m= has no c= of its own (rejected
 *                   ones included) or plan.replaceSessionConnection; else copied.
 *   - a=sendrecv|sendonly|recvonly|inactive   dropped (10.5 writes the direction into each m= instead).
 *   - a=group:BUNDLE ...   dropped (kept under ICE pass-through); the relay's own groups come in
 *     plan.sessionAttributes (src/call/bundle.ts).
 *   - ICE attributes       dropped when any media has removeIce or plan.ice.
 *   - a=fingerprint, a=setup, a=tls-id   dropped (DTLS is terminated by the relay, per media).
 *   - plan.sessionAttributes are appended after the last session line (loop-protect `a=rtpengine:`).
 *  Media level (m= with a port)
 *   - m=            rebuilt: `m=<type> <plan.port>[/count] <plan.proto ?? proto> <formats>`.
 *   - c=            address replaced by plan.connection (the rest of the line is kept).
 *   - a=mid         moved after the copied lines.
 *   - RTP protocols only: a=rtpmap, a=fmtp, a=rtcp-fb:<pt> are moved into a codec block after a=mid: for
 *     each format of the m= line, its rtpmap (generated for static or unknown types), fmtp and rtcp-fb
 *     lines; lines for payload types not on the m= line are dropped. Malformed ones are unknown lines.
 *   - a=sendrecv|sendonly|recvonly|inactive   dropped; exactly one `a=<plan.direction>` follows the codecs.
 *   - a=rtcp, a=rtcp-mux   dropped; `a=rtcp:<plan.rtcpPort>` and `a=rtcp-mux` (plan.rtcpMux) follow
 *                   (RTP protocols only).
 *   - a=crypto      only when plan.crypto is set: dropped, and plan.crypto written after a=rtcp(-mux).
 *   - a=fingerprint, a=setup, a=tls-id   always dropped (the relay terminates DTLS); plan.dtls follows a=crypto.
 *   - a=bundle-only  always dropped (each side's bundling is the relay's: src/call/bundle.ts).
 *   - a=mid         with plan.mid: dropped, and plan.mid (a string) written where they were.
 *   - plan.ice (ICE towards the receiver) is written last, replacing the input's ICE attributes.
 *   - a=ptime       the first one moves after a=rtcp(-mux) (and a=crypto); further ones are dropped (non-RTP: all dropped).
 *   - plan.extraAttributes follow.
 *   - ICE attributes dropped when removeIce; an a=end-of-candidates is then written last, as 10.5 does.
 *   - plan.passThroughIce: the input's ICE and DTLS attributes are kept in place (session level too), plan.ice
 *     (the relay's candidates) is added last, then the input's a=end-of-candidates. plan.keepTransport: m= port, c=, a=rtcp and a=rtcp-mux are copied.
 *  Media level (rejected, plan.port 0)
 *   - m= with port 0; c= rewritten; codec lines, direction, a=rtcp, a=rtcp-mux, a=ptime and all ICE
 *     attributes dropped; a=mid moved last; nothing generated (10.5 writes no direction for it).
 *
 * Output line endings: the input's (rtpengine 10.5 itself writes CRLF for the lines it generates even in an
 * LF body; ngrelay keeps the body consistent).
 */
import { attributeOf, directionOf, isDtlsAttribute, isIceAttribute, isRtpProtocol, leadingPayloadType } from './attributes';
import { parseRtpmap, rtpmapEncoding } from './codecs';
import type { ConnectionAddress, MediaRewrite, ParsedSdp, SdpLine, SdpMedia, SdpOrigin, SdpRewrite } from './types';

/**
 * Output under construction: latin1 text, each line followed by the line ending, made bytes once at the end.
 * A copied line is its exact input bytes again: latin1 maps every byte to one char and back.
 */
class LineWriter {
  private text = '';
  constructor(private readonly eol: string) {}
  copy(line: SdpLine): void {
    this.text += line.type + '=' + line.value + this.eol;
  }
  write(type: string, value: string): void {
    this.text += type + '=' + value + this.eol;
  }
  toBuffer(): Buffer {
    return Buffer.from(this.text, 'latin1');
  }
}

/** `c=` value with the address replaced; whatever follows the address token (e.g. whitespace) is kept. */
function connectionValue(original: string, conn: ConnectionAddress): string {
  const m = /^[ \t]*\S+[ \t]+\S+[ \t]+\S+(.*)$/.exec(original);
  const suffix = m === null ? '' : (m[1] as string);
  return `IN ${conn.addrType} ${conn.address}${suffix}`;
}

function originValue(origin: SdpOrigin, plan: SdpRewrite): string {
  const version = plan.sessionVersion ?? origin.sessionVersion;
  const addrType = plan.origin?.addrType ?? origin.addrType;
  const address = plan.origin?.address ?? origin.address;
  return `${origin.username} ${origin.sessionId} ${version} ${origin.netType} ${addrType} ${address}`;
}

function writeSession(out: LineWriter, sdp: ParsedSdp, plan: SdpRewrite): void {
  const sessionConnUsed =
    plan.keepSessionConnection !== true && (plan.replaceSessionConnection === true || sdp.media.some((m) => m.connection === null));
  const passThrough = plan.media.some((m) => m.passThroughIce === true);
  const stripIce = !passThrough && plan.media.some((m) => m.removeIce || m.ice !== undefined);
  for (const line of sdp.sessionLines) {
    if (line.type === 'o' && sdp.origin !== null && (plan.origin !== null || plan.sessionVersion !== null)) {
      out.write('o', originValue(sdp.origin, plan));
      continue;
    }
    if (line.type === 'c' && sessionConnUsed) {
      out.write('c', connectionValue(line.value, plan.sessionConnection));
      continue;
    }
    const attr = attributeOf(line);
    if (directionOf(attr) !== null) continue;
    if (attr?.name === 'group' && /^BUNDLE(?:[ \t]|$)/.test(attr.value) && !passThrough) continue;
    if (stripIce && isIceAttribute(attr)) continue;
    if (isDtlsAttribute(attr) && !passThrough) continue;
    out.copy(line);
  }
  for (const value of plan.sessionAttributes ?? []) out.write('a', value);
}

function mediaLineValue(media: SdpMedia, port: number, proto: string): string {
  const portSpec = media.portCount === null ? `${port}` : `${port}/${media.portCount}`;
  return [media.type, portSpec, proto, ...media.formats].join(' ');
}

/** Codec lines of one media, by payload type, in input order. */
interface CodecLines {
  fmtp: Map<string, SdpLine[]>;
  rtcpFb: Map<string, SdpLine[]>;
}

function pushTo(map: Map<string, SdpLine[]>, pt: string, line: SdpLine): void {
  const list = map.get(pt);
  if (list === undefined) map.set(pt, [line]);
  else list.push(line);
}

function writeMedia(out: LineWriter, media: SdpMedia, plan: MediaRewrite): void {
  const rejected = plan.port === 0;
  const rtp = isRtpProtocol(media.proto);
  const keep = plan.keepTransport === true && !rejected;
  const passThrough = plan.passThroughIce === true && !rejected;
  out.write('m', mediaLineValue(media, keep ? media.port : plan.port, plan.proto ?? media.proto));

  const mids: SdpLine[] = [];
  const codecs: CodecLines = { fmtp: new Map(), rtcpFb: new Map() };
  let ptime: SdpLine | null = null;
  let endOfCandidates = false;
  for (const line of media.lines.slice(1)) {
    if (line.type === 'c') {
      if (keep) out.copy(line);
      else out.write('c', connectionValue(line.value, plan.connection));
      continue;
    }
    const attr = attributeOf(line);
    if (attr === null) {
      out.copy(line);
      continue;
    }
    if (directionOf(attr) !== null) continue;
    if (attr.name === 'rtcp' || (attr.name === 'rtcp-mux' && attr.value === '')) {
      if (keep) out.copy(line);
      continue;
    }
    if (attr.name === 'crypto' && plan.crypto !== undefined) continue;
    if (isDtlsAttribute(attr)) {
      if (passThrough) out.copy(line);
      continue;
    }
    if (attr.name === 'bundle-only' && !passThrough) continue;
    if (attr.name === 'mid') {
      if (plan.mid === undefined) mids.push(line);
      continue;
    }
    if (attr.name === 'ptime') {
      if (rtp && !rejected) ptime ??= line;
      continue;
    }
    if (isIceAttribute(attr) && (rejected || ((plan.removeIce || plan.ice !== undefined) && (!passThrough || attr.name === 'end-of-candidates')))) {
      if (attr.name === 'end-of-candidates') endOfCandidates = true;
      continue;
    }
    if (rtp) {
      if (attr.name === 'rtpmap' && parseRtpmap(attr.value) !== null) continue;
      const pt = attr.name === 'fmtp' || attr.name === 'rtcp-fb' ? leadingPayloadType(attr.value) : null;
      if (pt !== null) {
        pushTo(attr.name === 'fmtp' ? codecs.fmtp : codecs.rtcpFb, pt, line);
        continue;
      }
    }
    out.copy(line);
  }

  for (const mid of mids) out.copy(mid);
  if (typeof plan.mid === 'string') out.write('a', `mid:${plan.mid}`);
  if (rejected) return;
  if (rtp) {
    for (const pt of media.formats) {
      out.write('a', `rtpmap:${pt} ${rtpmapEncoding(pt, media.rtpmaps)}`);
      for (const line of codecs.fmtp.get(pt) ?? []) out.copy(line);
      for (const line of codecs.rtcpFb.get(pt) ?? []) out.copy(line);
    }
  }
  out.write('a', plan.direction);
  // 10.5 writes no RTCP attributes for non-RTP media (udptl, BFCP...), whatever the plan says.
  if (rtp && plan.rtcpPort !== null) out.write('a', `rtcp:${plan.rtcpPort}`);
  if (rtp && plan.rtcpMux) out.write('a', 'rtcp-mux');
  for (const value of plan.crypto ?? []) out.write('a', value);
  for (const value of plan.dtls ?? []) out.write('a', value);
  if (ptime !== null) out.copy(ptime);
  for (const value of plan.extraAttributes) out.write('a', value);
  if (plan.ice !== undefined) for (const value of plan.ice) out.write('a', value);
  // Pass-through: the sender's a=end-of-candidates follows the relay's own candidates (rtpengine 10.5).
  if (endOfCandidates && (plan.ice === undefined || passThrough)) out.write('a', 'end-of-candidates');
}

/** Checks the plan fits the SDP: one MediaRewrite per m= line. */
function assertPlanMatches(sdp: ParsedSdp, plan: SdpRewrite): void {
  if (plan.media.length !== sdp.media.length) {
    throw new RangeError(`SdpRewrite has ${plan.media.length} media entries for ${sdp.media.length} m= lines`);
  }
}

export function rewriteSdp(sdp: ParsedSdp, plan: SdpRewrite): Buffer {
  assertPlanMatches(sdp, plan);
  const out = new LineWriter(sdp.eol);
  writeSession(out, sdp, plan);
  sdp.media.forEach((media, i) => writeMedia(out, media, plan.media[i] as MediaRewrite));
  return out.toBuffer();
}
