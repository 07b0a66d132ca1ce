/**
 * BUNDLE (RFC 8843 / RFC 9143) towards a WebRTC party: which of its m= lines share one transport, and what the
 * engine needs to demultiplex them (StreamBundle in src/dataplane/types.ts).
 *
 * A party's SDP bundles when it has an a=group:BUNDLE whose first m= line (the offerer's tagged m=, RFC 8843
 * §7.2) carries ICE, and whose other members do not have a transport of their own: `a=bundle-only` (port 0
 * allowed), or no candidates while the tagged m= line has some, or the tagged m= line's port (Chromium's
 * `bundlePolicy: 'max-bundle'`). A group whose members each have their own candidates and port (Chromium's
 * 'balanced') is answered unbundled, a transport per m= line, as rtpengine 10.5 answers every offer, which
 * RFC 8843 §7.3.3 allows. The relay's SDP to a bundling party then puts every member on the tagged m= line's
 * port with its ICE and DTLS attributes and keeps a=mid and the group; the other party gets separate m= lines
 * and ports (no a=group; its a=mid/a=extmap lines are passed on as rtpengine 10.5 passes them).
 * The relay adds no a=extmap for the MID header extension where the other party's SDP has none: the relay does
 * not put a MID into the packets it sends, and Chromium, once MID is negotiated, drops packets without one from
 * SSRCs it was not told about (observed: no inbound audio from a plain phone) instead of going by payload type.
 */
import { attributeOf } from '../sdp/attributes';
import type { ParsedSdp, SdpMedia } from '../sdp/types';
import type { StreamBundle } from '../dataplane/types';
import type { MediaBundleState, MediaState, MonologueState } from './state';

export const MID_EXTENSION_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid';

function hasAttribute(media: SdpMedia, name: string): boolean {
  return media.lines.some((l) => attributeOf(l)?.name === name);
}

/** The a=extmap id of the MID header extension in one m= section; null = not there. */
export function midExtensionId(media: SdpMedia): number | null {
  for (const line of media.lines) {
    const attr = attributeOf(line);
    if (attr?.name !== 'extmap') continue;
    const m = /^(\d+)(?:\/\S+)?[ \t]+(\S+)/.exec(attr.value);
    if (m && m[2] === MID_EXTENSION_URI) {
      const id = Number(m[1]);
      if (id >= 1 && id <= 255) return id;
    }
  }
  return null;
}

/** A member without a transport of its own (see the module comment). */
function sharesTransport(member: SdpMedia, tagged: SdpMedia): boolean {
  if (hasAttribute(member, 'bundle-only')) return true;
  if (member.port === 0) return false;
  const taggedCandidates = tagged.ice?.candidates.length ?? 0;
  if (taggedCandidates > 0 && (member.ice?.candidates.length ?? 0) === 0) return true;
  return member.port === tagged.port && tagged.port !== 9;
}

/** The member states of one group (`members` in the group's order, the transport first). */
function groupStates(members: readonly SdpMedia[], out: Map<number, MediaBundleState>): void {
  const memberIndexes = members.map((m) => m.index);
  for (const m of members) {
    const others = new Set(members.filter((o) => o !== m).flatMap((o) => o.formats));
    out.set(m.index, {
      transportIndex: memberIndexes[0] as number,
      memberIndexes,
      midExtensionId: midExtensionId(m),
      payloadTypes: m.formats.filter((f) => /^\d+$/.test(f) && Number(f) <= 127 && !others.has(f)).map(Number),
    });
  }
}

/**
 * The bundled media of a party's SDP (an offer, or the answer to a bundled offer), by 0-based media index;
 * empty when it bundles nothing the relay keeps bundled. `policy` is the ng `bundle` list: `reject` never
 * bundles (rtpengine 10.5's answer), `accept` also takes groups whose members have transports of their own.
 */
export function bundledMedia(sdp: ParsedSdp, policy: ReadonlySet<string>): Map<number, MediaBundleState> {
  const out = new Map<number, MediaBundleState>();
  if (policy.has('reject')) return out;
  for (const mids of sdp.bundleGroups) {
    const members = mids
      .map((mid) => sdp.media.find((m) => m.mid === mid))
      .filter((m): m is SdpMedia => m !== undefined && !out.has(m.index));
    const tagged = members[0];
    if (!tagged || members.length < 2 || tagged.port === 0 || tagged.ice === null) continue;
    if (!policy.has('accept') && !members.slice(1).some((m) => sharesTransport(m, tagged))) continue;
    groupStates(members, out);
  }
  return out;
}

/**
 * ng `bundle` `offer` / `require`: the relay's offer to the receiver bundles every live m= line of `sdp` (the
 * first one is the transport); rtpengine's `require` writes them with one port too, as ngrelay always does.
 * null = the policy asks for nothing (a bundle the receiver accepted earlier stays).
 */
export function offeredBundle(sdp: ParsedSdp, policy: ReadonlySet<string>): Map<number, MediaBundleState> | null {
  if (!policy.has('offer') && !policy.has('require') && !policy.has('strict')) return null;
  const out = new Map<number, MediaBundleState>();
  const live = sdp.media.filter((m) => m.port !== 0 && /RTP\//i.test(m.proto));
  if (live.length >= 2) groupStates(live, out);
  return out;
}

/** Whether the receiver's answer keeps media `mid` in a BUNDLE group the relay offered. */
export function answerKeepsBundle(sdp: ParsedSdp, mid: string | null | undefined): boolean {
  return typeof mid === 'string' && sdp.bundleGroups.some((g) => g.includes(mid));
}

/** The media whose transport `media` uses: its group's transport media, else (none, or rejected) itself. */
export function transportMediaOf(mono: MonologueState, media: MediaState): MediaState {
  const b = media.bundle;
  if (!b || b.transportIndex === media.index - 1) return media;
  const t = mono.medias[b.transportIndex];
  return t && !t.rejected ? t : media;
}

/** A member that is not its group's transport: it uses the transport's socket, ICE and DTLS. */
export function isBundledAway(mono: MonologueState, media: MediaState): boolean {
  return transportMediaOf(mono, media) !== media;
}

/** The engine's StreamBundle for the RTP stream of `media`; null = not bundled. */
export function streamBundle(mono: MonologueState, media: MediaState): StreamBundle | null {
  const b = media.bundle;
  if (!b) return null;
  const transport = transportMediaOf(mono, media);
  return {
    transport: transport.rtp.id,
    mid: media.mid ?? null,
    midExtensionId: b.midExtensionId,
    payloadTypes: b.payloadTypes,
  };
}

/**
 * a=group:BUNDLE values (without "a=") for a party, from its media's bundle states; `midOf` gives the mid the
 * SDP being written carries for a 0-based media index (null = none: left out of the group).
 */
export function bundleGroupValues(mono: MonologueState, midOf: (index: number) => string | null): string[] {
  const seen = new Set<number>();
  const out: string[] = [];
  for (const media of mono.medias) {
    const b = media.bundle;
    if (!b || media.rejected || seen.has(b.transportIndex)) continue;
    seen.add(b.transportIndex);
    const mids = b.memberIndexes
      .filter((i) => mono.medias[i] !== undefined && !(mono.medias[i] as MediaState).rejected)
      .map(midOf)
      .filter((mid): mid is string => mid !== null);
    if (mids.length > 0) out.push(`group:BUNDLE ${mids.join(' ')}`);
  }
  return out;
}
