/** Parsed SDP and the rewrite plan the call model hands back to the SDP writer. */
import type { SdesParseResult } from './crypto';
import type { SdpDtls, SdpIce } from './webrtc-attributes';

/** Address family as SDP `c=`/`o=` lines and ng `address family` spell it (Node's spelling is `Family`). */
export type AddrType = 'IP4' | 'IP6';
export type Direction = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export interface ConnectionAddress {
  addrType: AddrType;
  address: string;
}

/** One SDP line, kept as the exact bytes it arrived as (without its line ending). */
export interface SdpLine {
  /** The letter before '=' (v, o, s, c, m, a, ...). */
  type: string;
  /** Everything after '=', decoded as latin1 so that any byte survives a round trip (the line's bytes are `${type}=${value}` in latin1). */
  value: string;
  /** 1-based line number in the body it was parsed from (for error messages); absent on generated lines. */
  lineNo?: number;
  /** The a= line split at its first ':' (null for other lines), made once by the splitter; absent = not yet. */
  readonly attr?: { readonly name: string; readonly value: string } | null;
}

export interface SdpOrigin {
  username: string;
  sessionId: string;
  sessionVersion: string;
  netType: string;
  addrType: AddrType;
  address: string;
}

export interface SdpMedia {
  /** 0-based position among the m= lines. */
  index: number;
  type: string;
  port: number;
  /** The "/2" in `m=audio 5000/2 ...`, when present. */
  portCount: number | null;
  proto: string;
  formats: string[];
  /** Media-level c=, if any. */
  connection: ConnectionAddress | null;
  /** media c= if present, otherwise session c= (null when neither). */
  effectiveConnection: ConnectionAddress | null;
  /** Media-level direction attribute, falling back to the session-level one, then 'sendrecv'. */
  direction: Direction;
  /** a=rtcp:<port> [IN IP4 addr]. */
  rtcp: { port: number; connection: ConnectionAddress | null } | null;
  rtcpMux: boolean;
  /** The section has ICE attributes (candidates, ufrag, pwd) of its own or inherited from session level. */
  hasIce: boolean;
  /** a=rtpmap entries: payload type → "PCMU/8000". */
  rtpmaps: Map<string, string>;
  /** a=rtpengine:<token> (loop protection): the media's own, else the first session-level one. */
  loopProtectToken: string | null;
  /**
   * Every a=rtpengine token seen at session and media level, in order (rtpengine 10.5 writes its token at
   * session level and appends it after any token an earlier relay left there). Optional: added by the SDP module.
   */
  loopProtectTokens?: string[];
  /** Every a=crypto line of the section, parsed once (in order; malformed or unknown-suite ones with a reason). */
  crypto: SdesParseResult[];
  /** The party's ICE for this section (its own attributes, else the session's); null = no ICE attributes. */
  ice: SdpIce | null;
  /** The party's DTLS-SRTP attributes (a=fingerprint / a=setup, media or session level); null = none. */
  dtls: SdpDtls | null;
  /** a=mid (RFC 9143); null = none. */
  mid: string | null;
  /** The m= line and every line after it up to the next m=. */
  lines: SdpLine[];
}

export interface ParsedSdp {
  /** Line ending of the input ('\r\n' or '\n'); the output uses the same one. */
  eol: '\r\n' | '\n';
  origin: SdpOrigin | null;
  /** Session-level c=. */
  connection: ConnectionAddress | null;
  /** Session-level lines (before the first m=). */
  sessionLines: SdpLine[];
  media: SdpMedia[];
  /** a=group:BUNDLE groups (RFC 9143), each the list of its mids in order. */
  bundleGroups: string[][];
}

export interface MediaRewrite {
  /** The relay's port for this media (even RTP port); 0 = rejected. */
  port: number;
  /** Address written into c= for this media. */
  connection: ConnectionAddress;
  /** a=rtcp:<port>; null = omit the attribute (rejected media). */
  rtcpPort: number | null;
  /** Emit a=rtcp-mux. */
  rtcpMux: boolean;
  direction: Direction;
  /** Replaces the m= line's protocol (transport-protocol). null = keep. */
  proto: string | null;
  /** Remove ICE attributes (ufrag, pwd, options, candidates, end-of-candidates, remote-candidates, ice-lite). */
  removeIce: boolean;
  /** Extra attribute values to append (without "a="), e.g. "rtpengine:<token>". */
  extraAttributes: string[];
  /**
   * SDES: when set, the input's a=crypto lines are dropped and these values (without "a=", e.g.
   * "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...") are written after a=rtcp/a=rtcp-mux and before a=ptime,
   * where rtpengine 10.5 puts them. Undefined = a=crypto lines are copied like unknown ones. Optional.
   */
  crypto?: string[];
  /**
   * DTLS-SRTP: the input's a=fingerprint / a=setup / a=tls-id lines are always dropped (the relay terminates
   * DTLS, a party's certificate never reaches the other); these values (e.g. "setup:actpass",
   * "fingerprint:sha-256 ...") are written after the a=crypto lines, where rtpengine 10.5 puts them. Optional.
   */
  dtls?: string[];
  /**
   * ICE towards the receiver: the input's ICE attributes are dropped (as with removeIce) and these values
   * ("ice-ufrag:...", "candidate:...", "end-of-candidates") are written last. Optional; absent = removeIce rules.
   */
  ice?: string[];
  /**
   * ICE/DTLS pass-through (ng `ICE=optional`/`force-relay` towards a party whose peer does ICE itself): the
   * input's ICE and DTLS attributes (ufrag, pwd, candidates, a=fingerprint, a=setup) are kept where they are,
   * and `ice` (the relay's own candidates) is added last. Optional; default false.
   */
  passThroughIce?: boolean;
  /**
   * `ICE=force-relay`: the m= port, the c= lines and the input's a=rtcp / a=rtcp-mux are left as they are (the
   * relay is reached through its relay candidates only). Optional; default false.
   */
  keepTransport?: boolean;
  /**
   * a=mid: a string replaces the input's a=mid lines with this one (an answer carries the offer's mid;
   * `generate-mid`), null drops them; absent = they are copied.
   */
  mid?: string | null;
}

export interface SdpRewrite {
  /** replace-origin: new address of the o= line. null = keep the o= line as it is. */
  origin: ConnectionAddress | null;
  /** New session version for the o= line (replace SDP-version). null = keep. */
  sessionVersion: string | null;
  /** What a session-level c= becomes, when the SDP has one. */
  sessionConnection: ConnectionAddress;
  /** One entry per m= line, in order. */
  media: MediaRewrite[];
  /**
   * Attribute values (without "a=") appended after the last session-level line, e.g. "rtpengine:<token>":
   * rtpengine 10.5 writes its loop-protect attribute at session level, not per media. Optional.
   */
  sessionAttributes?: string[];
  /**
   * `replace: ["session-connection"]`: rewrite the session c= even when every m= has its own c=.
   * Without it, rtpengine 10.5 rewrites the session c= only if some m= (rejected ones included) has no c=
   * of its own and so uses it. Optional; default false.
   */
  replaceSessionConnection?: boolean;
  /** `ICE=force-relay` on every media: the session c= is left as it is (see MediaRewrite.keepTransport). */
  keepSessionConnection?: boolean;
}
