/** The statistics dict of `query` and `delete`, in rtpengine 10.5's shape and key order. */
import type { DtlsStatus, Endpoint, IceStatus, RtpQuality, StreamCounters, StreamQuality } from '../dataplane/types';
import { DTLS_SRTP_PROFILES } from '../dataplane/srtp-suites';
import type { NgDict, NgValue } from '../ng/types';
import { ngDict } from '../ng/dict';
import { idToWire } from '../ng/byte-string';
import type { CallState, MediaState, MonologueState, StreamState } from '../call/state';
import { ssrcStatistics } from '../call/ssrc-stats';
import { transportMediaOf } from '../call/bundle';
import { extraStreamsOf, handshakeSocketOf, selectedSocketOf } from '../call/ice-sockets';

type CountersOf = (id: number) => StreamCounters | undefined;
type QualityOf = (id: number) => StreamQuality | undefined;

/**
 * ngrelay's own measurement of a received RTP stream (rtpengine has no such key; it is present only once RTP
 * arrived, so replies without media keep rtpengine's key set).
 */
function rtpQualityDict(q: RtpQuality): NgDict {
  return ngDict([
    ['SSRC', q.ssrc],
    ['packets received', q.received],
    ['packets expected', q.expected],
    ['packets lost', q.lost],
    ['duplicates', q.duplicates],
    ['reordered', q.reordered],
    ['jitter us', Math.round(q.jitterMs * 1000)],
    ['SSRC changes', q.ssrcChanges],
  ]);
}

const seconds = (ms: number): number => Math.floor(ms / 1000);

// The dicts a query or delete reply holds per stream are filled key by key, not from [key, value] pairs: a
// `delete` reply is ~45 dicts, and the pair arrays were a good part of what a command allocated.

function endpointDict(ep: Endpoint | null): NgDict {
  const d = ngDict();
  if (!ep) return d;
  d['family'] = ep.family;
  d['address'] = ep.address;
  d['port'] = ep.port;
  return d;
}


function mediaFlags(media: MediaState, mono: MonologueState, initialized: boolean): string[] {
  const flags: string[] = [];
  if (initialized) flags.push('initialized');
  if (media.direction === 'sendrecv' || media.direction === 'sendonly') flags.push('send');
  if (media.direction === 'sendrecv' || media.direction === 'recvonly') flags.push('recv');
  if (media.rtcpMux) flags.push('rtcp-mux');
  if (media.rejected) flags.push('rejected');
  // rtpengine 10.5's words and order for DTLS and ICE.
  const dtls = media.webrtc?.dtls;
  if (dtls) flags.push('DTLS-SRTP');
  if (dtls?.role) flags.push(`DTLS role ${dtls.role}`);
  if (media.webrtc?.ice) flags.push('ICE');
  if (media.webrtc?.ice?.remoteTrickle) flags.push('trickle ICE');
  if (mono.isAnswerer || mono.tag === '') flags.push('ICE controlling');
  // ngrelay's: the media shares its BUNDLE group's transport (src/call/bundle.ts).
  if (media.bundle) flags.push('bundle');
  return flags;
}

/**
 * The SRTP suite of this party's side (rtpengine shows it on both streams of an SRTP media): the SDES one, or
 * with DTLS-SRTP the profile the handshake of the RTP stream negotiated (none before it completes).
 */
function cryptoSuite(media: MediaState, countersOf: CountersOf): string | null {
  if (media.webrtc?.dtls) {
    const profile = countersOf(handshakeSocketOf(media, media.rtp))?.dtls?.profile;
    return profile ? (DTLS_SRTP_PROFILES[profile] ?? profile) : null;
  }
  return media.crypto?.theirs?.suite ?? media.crypto?.ours?.suite ?? null;
}

/**
 * The figures of one component of a media: with a socket per address (src/call/ice-sockets.ts) the packets of
 * all of them, and where media goes, ICE and DTLS as the nominated and the keying socket see them.
 */
function componentCounters(media: MediaState, stream: StreamState, countersOf: CountersOf): StreamCounters | undefined {
  const own = countersOf(stream.id);
  if (!media.iceSockets || media.iceSockets.length === 0) return own;
  const others = extraStreamsOf(media).filter((x) => x.component === stream.component && x.id !== 0);
  if (others.length === 0 || !own) return own;
  const all = [own, ...others.map((x) => countersOf(x.id)).filter((c): c is StreamCounters => c !== undefined)];
  const selected = countersOf(selectedSocketOf(media, stream.component).id) ?? own;
  const keying = countersOf(handshakeSocketOf(media, stream)) ?? own;
  return {
    ...own,
    packets: all.reduce((n, c) => n + c.packets, 0),
    bytes: all.reduce((n, c) => n + c.bytes, 0),
    errors: all.reduce((n, c) => n + c.errors, 0),
    lastPacketMs: Math.max(...all.map((c) => c.lastPacketMs)),
    endpoint: selected.endpoint,
    confirmed: selected.confirmed,
    ssrc: selected.ssrc,
    lastSeq: selected.lastSeq,
    ...(selected.ice ? { ice: selected.ice } : {}),
    ...(keying.dtls ? { dtls: keying.dtls } : {}),
  };
}

/** ngrelay's ICE state of a stream (rtpengine has no such key; present only on streams that run ICE). */
function iceDict(ice: IceStatus, local: StreamState): NgDict {
  return ngDict([
    ['state', ice.state],
    ['selected', endpointDict(ice.selected)],
    // The relay's side of that pair: the socket media to the party leaves from (one of several addresses).
    ['selected local', endpointDict({ family: local.localAddress.includes(':') ? 'IPv6' : 'IPv4', address: local.localAddress, port: local.localPort })],
    ['checks received', ice.checksReceived],
    ['checks sent', ice.checksSent],
    ['STUN rejected', ice.stunRejected],
    ['last consent', seconds(ice.lastConsentMs)],
  ]);
}

/** ngrelay's DTLS state of a stream (present only on streams that run a handshake). */
function dtlsDict(dtls: DtlsStatus): NgDict {
  const entries: Array<[string, NgValue]> = [
    ['state', dtls.state],
    ['role', dtls.role],
  ];
  if (dtls.profile !== null) entries.push(['profile', dtls.profile]);
  if (dtls.peerFingerprint !== null) entries.push(['peer fingerprint', `sha-256 ${dtls.peerFingerprint}`]);
  if (dtls.error !== null) entries.push(['error', dtls.error]);
  return ngDict(entries);
}

function streamDict(
  stream: StreamState,
  counters: StreamCounters | undefined,
  quality: StreamQuality | undefined,
  call: CallState,
  mono: MonologueState,
  suite: string | null,
  ice: boolean,
  /** The socket of this component that ICE nominated (src/call/ice-sockets.ts): the relay's side of the pair. */
  iceLocal: StreamState,
): NgDict {
  const current = counters?.endpoint ?? stream.expected;
  const flags: string[] = [stream.component === 'rtp' ? 'RTP' : 'RTCP'];
  if (current) flags.push('filled');
  if (counters?.confirmed) flags.push('confirmed');
  // rtpengine's name for a stream its kernel module forwards (here: the eBPF fast path, `--table`).
  if (counters?.inKernel === true) flags.push('kernelized');
  if (mono.options.strictSource) flags.push('strict source address');
  if (mono.options.mediaHandover) flags.push('media handover');
  if (stream.muxedWith !== null) flags.push('rtcp-mux');
  if (ice) flags.push('ICE');
  const d = ngDict();
  d['local port'] = stream.localPort;
  d['local address'] = stream.localAddress;
  d['family'] = stream.localAddress.includes(':') ? 'IPv6' : 'IPv4';
  d['endpoint'] = endpointDict(current);
  d['advertised endpoint'] = endpointDict(stream.advertised);
  if (suite !== null) d['crypto suite'] = suite;
  d['last packet'] = seconds(counters && counters.lastPacketMs > 0 ? counters.lastPacketMs : call.createdMs);
  d['flags'] = flags;
  if (stream.component === 'rtp' && counters?.ssrc != null) d['SSRC'] = counters.ssrc;
  const stats = ngDict();
  stats['packets'] = counters?.packets ?? 0;
  stats['bytes'] = counters?.bytes ?? 0;
  stats['errors'] = counters?.errors ?? 0;
  // A BUNDLE transport: packets that matched none of its m= lines (ngrelay's; also in errors).
  if (counters?.bundleUnmatched !== undefined) stats['bundle unmatched'] = counters.bundleUnmatched;
  d['stats'] = stats;
  if (stream.component === 'rtp' && quality?.rtp) d['quality'] = rtpQualityDict(quality.rtp);
  if (counters?.ice) d['ICE'] = iceDict(counters.ice, iceLocal);
  if (counters?.dtls) d['DTLS'] = dtlsDict(counters.dtls);
  return d;
}

function tagLabel(call: CallState, mono: MonologueState): string {
  if (mono.tag !== '') return mono.tag;
  const untagged = call.monologues.filter((m) => m.tag === '');
  return `<untagged ${untagged.indexOf(mono) + 1}>`;
}

function peersOf(call: CallState, mono: MonologueState): NgDict[] {
  return call.monologues
    .filter((m) => m !== mono && (m.peerKey === mono.key || mono.peerKey === m.key))
    .map((m) => {
      const d = ngDict();
      d['tag'] = idToWire(m.tag);
      d['type'] = 'offer/answer';
      return d;
    });
}

export function callStatistics(call: CallState, countersOf: CountersOf, qualityOf: QualityOf = () => undefined): NgDict {
  const rtcpQualities: StreamQuality[] = [];
  const totals: Record<'rtp' | 'rtcp', [number, number, number]> = { rtp: [0, 0, 0], rtcp: [0, 0, 0] };
  const tags = ngDict();
  for (const mono of call.monologues) {
    const initialized = mono.tag !== '' || mono.isAnswerer;
    const medias: NgDict[] = mono.medias.map((media) => {
      const streams = [media.rtp, media.rtcp].filter((s) => s.id !== 0).map((s) => {
        const c = componentCounters(media, s, countersOf);
        const q = qualityOf(s.id);
        if (q && s.component === 'rtcp') rtcpQualities.push(q);
        const t = totals[s.component];
        t[0] += c?.packets ?? 0;
        t[1] += c?.bytes ?? 0;
        t[2] += c?.errors ?? 0;
        // A bundled m= line's SRTP is its transport's handshake.
        return streamDict(s, c, q, call, mono, cryptoSuite(transportMediaOf(mono, media), countersOf), !!media.webrtc?.ice, selectedSocketOf(media, s.component));
      });
      const d = ngDict();
      d['index'] = media.index;
      d['type'] = media.type;
      d['protocol'] = media.protocol;
      // rtpengine names the codec once media has flowed on the stream.
      const flowed = (countersOf(media.rtp.id)?.packets ?? 0) > 0;
      if (media.codec && initialized && flowed) d['codec'] = media.codec;
      d['streams'] = streams;
      d['flags'] = mediaFlags(media, mono, initialized);
      return d;
    });
    const peers = peersOf(call, mono);
    const entries: Array<[string, NgValue]> = [['tag', idToWire(mono.tag)]];
    if (mono.label !== null) entries.push(['label', idToWire(mono.label)]);
    entries.push(['created', seconds(mono.createdMs)], ['subscriptions', peers], ['subscribers', peers], ['medias', medias]);
    tags[tagLabel(call, mono)] = ngDict(entries);
  }
  const stat = (t: [number, number, number]): NgDict => {
    const d = ngDict();
    d['packets'] = t[0];
    d['bytes'] = t[1];
    d['errors'] = t[2];
    return d;
  };
  const entries: Array<[string, NgValue]> = [
    ['created', seconds(call.createdMs)],
    ['created_us', (call.createdMs % 1000) * 1000],
    ['last signal', seconds(call.lastSignalMs)],
    ['SSRC', ssrcStatistics(rtcpQualities)],
    ['tags', tags],
    ['totals', ngDict([
      ['RTP', stat(totals.rtp)],
      ['RTCP', stat(totals.rtcp)],
    ])],
  ];
  if (call.metadata !== null) entries.splice(3, 0, ['metadata', call.metadata]);
  return ngDict(entries);
}
