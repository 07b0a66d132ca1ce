/**
 * SDP bodies a SIP endpoint would send, built from a few parameters so each test says only what matters to
 * it. CRLF line ends, as on the wire.
 */

export interface MediaSpec {
  type: 'audio' | 'video';
  port: number;
  /** Defaults to RTP/AVP. */
  proto?: string;
  /** A media-level c= address, if any. */
  connection?: string;
  /** Direction attribute; omitted = none written (sendrecv implied). */
  direction?: 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';
  /** Extra a= lines (without "a="), written after the codec lines and before ptime/direction. */
  attributes?: string[];
}

export interface SdpSpec {
  /** o= and session-level c= address. */
  address: string;
  sessionId?: number;
  version?: number;
  /** Session-level c= address; defaults to `address`. `null` = no session-level c=. */
  connection?: string | null;
  media: MediaSpec[];
}

const AUDIO_CODECS = ['rtpmap:0 PCMU/8000', 'rtpmap:8 PCMA/8000', 'rtpmap:101 telephone-event/8000', 'fmtp:101 0-16'];
const VIDEO_CODECS = ['rtpmap:96 H264/90000', 'fmtp:96 profile-level-id=42e01f;packetization-mode=1'];

export function buildSdp(spec: SdpSpec): string {
  const lines = [
    'v=0',
    `o=- ${spec.sessionId ?? 1001} ${spec.version ?? 1} IN IP4 ${spec.address}`,
    's=ngrelay-test',
  ];
  const sessionConnection = spec.connection === undefined ? spec.address : spec.connection;
  if (sessionConnection !== null) lines.push(`c=IN IP4 ${sessionConnection}`);
  lines.push('t=0 0');
  for (const media of spec.media) {
    const audio = media.type === 'audio';
    lines.push(`m=${media.type} ${media.port} ${media.proto ?? 'RTP/AVP'} ${audio ? '0 8 101' : '96'}`);
    if (media.connection) lines.push(`c=IN IP4 ${media.connection}`);
    for (const attribute of audio ? AUDIO_CODECS : VIDEO_CODECS) lines.push(`a=${attribute}`);
    for (const attribute of media.attributes ?? []) lines.push(`a=${attribute}`);
    if (audio) lines.push('a=ptime:20');
    if (media.direction) lines.push(`a=${media.direction}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** The caller's (A) and callee's (B) loopback addresses: distinct from the relay's 127.0.0.1, so rewrites show. */
export const CALLER_ADDRESS = '127.0.0.41';
export const CALLEE_ADDRESS = '127.0.0.42';

export function callerAudio(port = 40000, extra: Partial<MediaSpec> = {}, sdp: Partial<SdpSpec> = {}): string {
  return buildSdp({
    address: CALLER_ADDRESS,
    sessionId: 1001,
    ...sdp,
    media: [{ type: 'audio', port, direction: 'sendrecv', ...extra }],
  });
}

export function calleeAudio(port = 40002, extra: Partial<MediaSpec> = {}, sdp: Partial<SdpSpec> = {}): string {
  return buildSdp({
    address: CALLEE_ADDRESS,
    sessionId: 2002,
    ...sdp,
    media: [{ type: 'audio', port, direction: 'sendrecv', ...extra }],
  });
}

/** The m= ports of an SDP, in order. */
export function mediaPorts(sdp: string): number[] {
  return [...sdp.matchAll(/^m=\S+ (\d+)/gm)].map((m) => Number(m[1]));
}

/** The lines of an SDP that start with `prefix` (e.g. "a=rtcp:", "c="). */
export function sdpLines(sdp: string, prefix: string): string[] {
  return sdp.split('\r\n').filter((line) => line.startsWith(prefix));
}
