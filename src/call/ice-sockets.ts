/**
 * ICE on an interface name with several addresses (`--interface=pub/A --interface=pub/B`): as rtpengine 10.5
 * does, a media that runs ICE with its party gets a socket on every address of its interface name (the same
 * port where it is free), each offered as a host candidate. The first address is the media's own socket pair
 * (MediaState.rtp/rtcp); the others are MediaState.iceSockets. Every socket receives, answers STUN from itself
 * and forwards; packets *to* the party leave from the socket whose pair the party's ICE nominated (the engine
 * reports it with an `ice-selected` event, MediaState.iceSelected keeps it). DTLS-SRTP keys belong to the
 * media, not to a socket (as rtpengine's): a browser may run its handshake over one pair and send SRTP over
 * another later, so every socket of the media uses the keys of the handshake that completed last
 * (MediaState.iceDtls, from the engine's `dtls` event). Without ICE nothing changes.
 */
import type { InterfaceConfig } from '../config/types';
import type { IceSocketPair, MediaState, MonologueState, StreamState } from './state';
import type { InterfaceTable } from './interfaces';
import type { StreamSockets } from './stream-sockets';
import { transportMediaOf } from './bundle';

/** The media's socket pairs, its own first (the order of its candidates, highest priority first). */
export function socketPairsOf(media: MediaState): IceSocketPair[] {
  return [{ rtp: media.rtp, rtcp: media.rtcp }, ...(media.iceSockets ?? [])];
}

/** The streams of the media's extra ICE sockets (none without them). */
export function extraStreamsOf(media: MediaState): StreamState[] {
  return (media.iceSockets ?? []).flatMap((p) => [p.rtp, p.rtcp]);
}

/** Every stream of the media: its own RTP and RTCP, then those of its extra ICE sockets. */
export function streamsOf(media: MediaState): StreamState[] {
  return [media.rtp, media.rtcp, ...extraStreamsOf(media)];
}

/**
 * The socket of `component` whose pair the party's ICE nominated (its own one until then). A muxed RTCP
 * stream follows its RTP socket (ICE runs on the socket, once for both).
 */
export function selectedSocketOf(media: MediaState, component: 'rtp' | 'rtcp'): StreamState {
  const key = component === 'rtcp' && media.rtcp.muxedWith !== null ? 'rtp' : component;
  const id = media.iceSelected?.[key];
  // Without extra sockets or a nomination: the media's own (asked for every rule of every command).
  if (id === undefined || !media.iceSockets || media.iceSockets.length === 0) return media[component];
  const pair = socketPairsOf(media).find((p) => p[key].id === id) ?? { rtp: media.rtp, rtcp: media.rtcp };
  return pair[component];
}

/**
 * The stream whose DTLS-SRTP handshake keys `stream` (a stream of `media`) uses: its own socket's, or with
 * several sockets the one whose handshake completed last (the media's own until one did).
 */
export function handshakeSocketOf(media: MediaState, stream: StreamState): number {
  if (!media.iceSockets || media.iceSockets.length === 0) return stream.muxedWith ?? stream.id;
  const key = stream.muxedWith !== null ? 'rtp' : stream.component;
  return media.iceDtls?.[key] ?? media[key].id;
}

/**
 * When the relay is the controlling full agent, the one socket of `component` that checks and nominates (the
 * others answer the party's checks as a lite agent: two nominations towards one party would start two DTLS
 * handshakes with it): the first, in candidate order, of the address family the party has candidates of.
 */
export function nominatingSocketOf(media: MediaState, component: 'rtp' | 'rtcp'): StreamState {
  const wanted = component === 'rtp' ? 1 : 2;
  const families = new Set((media.webrtc?.ice?.remoteCandidates ?? []).filter((c) => c.component === wanted).map((c) => c.endpoint.family));
  const pairs = socketPairsOf(media);
  const pair = pairs.find((p) => families.has(p.rtp.localAddress.includes(':') ? 'IPv6' : 'IPv4')) ?? pairs[0];
  return (pair as IceSocketPair)[component];
}

/** The stream packets *to* `mono`'s party leave from (its bundle transport's, then the nominated socket). */
export function sendingSocketOf(mono: MonologueState, media: MediaState, component: 'rtp' | 'rtcp'): StreamState {
  return selectedSocketOf(transportMediaOf(mono, media), component);
}

/**
 * The media gets sockets on the other addresses: the relay terminates ICE with its party on a socket of its
 * own (not pass-through, not a BUNDLE member or transport: the engine demuxes a bundle on one socket).
 */
function wantsExtraSockets(media: MediaState): boolean {
  return !media.rejected && media.rtp.id !== 0 && !!media.webrtc?.ice && media.icePassThrough !== true && !media.bundle;
}

/**
 * Brings the extra ICE sockets of every media of `mono` in line with its ICE state: opened when it starts ICE
 * (or its RTCP joined or left rtcp-mux), closed when it stops. Media that change are replaced, never changed in
 * place (snapshots share them). Opened sockets are closed by `undo` on a failure; replaced ones go into
 * `toClose`, closed once the command succeeded.
 */
export function syncIceSockets(
  mono: MonologueState,
  interfaces: InterfaceTable,
  sockets: StreamSockets,
  undo: Array<() => void>,
  toClose: StreamState[],
): void {
  // Most calls have no extra sockets and want none: the media list is left as it is (no copy per command).
  if (mono.medias.every((media) => (media.iceSockets?.length ?? 0) === 0 && !wantsExtraSockets(media))) return;
  mono.medias = mono.medias.map((media) => {
    const wanted: InterfaceConfig[] = wantsExtraSockets(media)
      ? interfaces.addressesOf(media.rtp.interfaceName).filter((i) => i.address !== media.rtp.localAddress)
      : [];
    const current = media.iceSockets ?? [];
    const muxed = media.rtcp.muxedWith !== null;
    const sameAddresses = current.length === wanted.length && current.every((p, i) => p.rtp.localAddress === wanted[i]?.address);
    if (sameAddresses && current.every((p) => (p.rtcp.muxedWith !== null) === muxed)) return media;
    if (sameAddresses) {
      // RTCP joined or left rtcp-mux (an answer settled it): the RTP sockets stay, as for the media's own.
      const next = current.map((p, i) => {
        const rtcp = sockets.reopenRtcp(wanted[i] as InterfaceConfig, p.rtp, muxed);
        undo.push(() => sockets.close(rtcp));
        toClose.push(p.rtcp);
        return { rtp: p.rtp, rtcp };
      });
      return { ...media, iceSockets: next };
    }
    toClose.push(...extraStreamsOf(media));
    const next: IceSocketPair[] = [];
    for (const iface of wanted) {
      const pair = sockets.openPairNear(iface, muxed, media.rtp.localPort);
      undo.push(() => {
        sockets.close(pair.rtcp);
        sockets.close(pair.rtp);
      });
      next.push(pair);
    }
    const copy: MediaState = { ...media };
    copy.iceSelected = undefined;
    copy.iceDtls = undefined;
    if (next.length > 0) copy.iceSockets = next;
    else copy.iceSockets = undefined;
    return copy;
  });
}

/**
 * A media with several sockets after an engine event on its stream `id`: `ice-selected` makes it the socket
 * media to the party leaves from (`iceSelected`), a completed DTLS handshake makes its keys the media's
 * (`iceDtls`). null when the stream is not part of such a media or nothing changes.
 */
export function withSocketEvent(media: MediaState, id: number, field: 'iceSelected' | 'iceDtls'): MediaState | null {
  if (!media.iceSockets || media.iceSockets.length === 0) return null;
  const stream = streamsOf(media).find((s) => s.id === id);
  if (!stream) return null;
  const component = stream.component;
  const now = media[field]?.[component];
  if (now === id || (now === undefined && stream === media[component])) return null;
  return { ...media, [field]: { ...media[field], [component]: id } };
}
