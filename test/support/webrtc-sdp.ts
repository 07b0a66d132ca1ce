/**
 * The little SDP work the WebRTC tests do themselves: read where a relay wants media sent, keep only the
 * browser's loopback UDP candidates, and write the plain RTP/AVP SDP of the SIP phone the test plays.
 */

export interface MediaLine {
  kind: string;
  port: number;
  proto: string;
  /** The media-level c= address, else the session-level one. */
  address: string;
  payloadTypes: number[];
  /** payload type -> "PCMU/8000", "VP8/90000", ... */
  rtpmaps: Map<number, string>;
  /** Every a= line of this m= section, without "a=". */
  attributes: string[];
}

export function lines(sdp: string): string[] {
  return sdp.split(/\r?\n/).filter((l) => l.length > 0);
}

export function parseMediaLines(sdp: string): MediaLine[] {
  let sessionAddress = '';
  const media: MediaLine[] = [];
  let current: MediaLine | undefined;
  for (const line of lines(sdp)) {
    if (line.startsWith('m=')) {
      const [kind = '', port = '0', proto = '', ...pts] = line.slice(2).split(' ');
      current = { kind, port: Number(port), proto, address: sessionAddress, payloadTypes: pts.map(Number), rtpmaps: new Map(), attributes: [] };
      media.push(current);
    } else if (line.startsWith('c=')) {
      const address = line.split(' ')[2] ?? '';
      if (current) current.address = address;
      else sessionAddress = address;
    } else if (line.startsWith('a=') && current) {
      const attribute = line.slice(2);
      current.attributes.push(attribute);
      const rtpmap = /^rtpmap:(\d+) (\S+)/.exec(attribute);
      if (rtpmap) current.rtpmaps.set(Number(rtpmap[1]), rtpmap[2] ?? '');
    }
  }
  return media;
}

/** The attribute values of `name` ("a=name:value") in one m= section. */
export function attributeValues(media: MediaLine, name: string): string[] {
  return media.attributes.filter((a) => a === name || a.startsWith(`${name}:`)).map((a) => a.slice(name.length + 1));
}

/**
 * Drops every candidate that is not UDP on 127.0.0.1. Chromium gathers on all interfaces; the relays of the
 * tests listen on 127.0.0.1 only and every packet of the test must stay on loopback.
 */
export function keepLoopbackCandidates(sdp: string): string {
  const kept = sdp
    .split('\r\n')
    .filter((line) => !line.startsWith('a=candidate:') || / udp \d+ 127\.0\.0\.1 \d+ typ /i.test(line));
  return kept.join('\r\n');
}

/** The payload type of the first codec named `encoding` (case-insensitive) in a media line, if offered. */
export function payloadTypeOf(media: MediaLine, encoding: string): number | undefined {
  const wanted = encoding.toLowerCase();
  for (const pt of media.payloadTypes) {
    if (pt === 0 && wanted === 'pcmu' && !media.rtpmaps.has(0)) return 0; // static payload type, rtpmap optional
    if ((media.rtpmaps.get(pt) ?? '').toLowerCase().startsWith(`${wanted}/`)) return pt;
  }
  return undefined;
}

export interface PlainMedia {
  kind: 'audio' | 'video';
  port: number;
  payloadType: number;
  /** e.g. "PCMU/8000"; the rtpmap line written for the payload type. */
  encoding: string;
}

/** A SIP phone's SDP: plain RTP/AVP, one codec per m= line, RTCP on port+1 (no rtcp-mux). */
export function plainSdp(address: string, media: PlainMedia[], sessionId = 4242): string {
  const out = ['v=0', `o=sipphone ${sessionId} 1 IN IP4 ${address}`, 's=-', `c=IN IP4 ${address}`, 't=0 0'];
  for (const m of media) {
    out.push(`m=${m.kind} ${m.port} RTP/AVP ${m.payloadType}`, `a=rtpmap:${m.payloadType} ${m.encoding}`, 'a=sendrecv');
  }
  return `${out.join('\r\n')}\r\n`;
}

/** The codec a plain phone picks from an offered m= line: PCMU for audio, VP8 for video. */
export function plainChoice(media: MediaLine): { payloadType: number; encoding: string } {
  const encoding = media.kind === 'video' ? 'VP8/90000' : 'PCMU/8000';
  const payloadType = payloadTypeOf(media, encoding.split('/')[0] ?? '');
  if (payloadType === undefined) {
    throw new Error(`the offer's ${media.kind} line has no ${encoding}: m=${media.kind} ${media.port} ${media.proto} ${media.payloadTypes.join(' ')}`);
  }
  return { payloadType, encoding };
}
