/**
 * Small readers and builders the relay-level tests share: a path into a bencoded reply, the audio port of a
 * reply's SDP, and the plain PCMU offer/answer SDP of a phone on 127.0.0.1.
 */
import { isDict, toPlain, type BDict, type BValue } from './bencode';

/** The value at `keys` inside a decoded reply (dict keys and list indexes), or undefined. */
export function get(v: BValue | undefined, ...keys: Array<string | number>): BValue | undefined {
  let cur = v;
  for (const k of keys) {
    if (cur === undefined) return undefined;
    if (typeof k === 'number') cur = Array.isArray(cur) ? cur[k] : undefined;
    else cur = isDict(cur) ? cur[k] : undefined;
  }
  return cur;
}

/** A phone's plain PCMU SDP on 127.0.0.1 with RTP on `port` and RTCP on `port + 1`. */
export function sdp(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=rtcp:${port + 1}`, 'a=sendrecv', ''].join('\r\n');
}

/** The port of the first m=audio line of a reply's SDP. */
export function portOf(reply: BDict): number {
  const body = reply['sdp'];
  if (!Buffer.isBuffer(body)) throw new Error(`no sdp: ${JSON.stringify(toPlain(reply))}`);
  return Number(/^m=audio (\d+)/m.exec(body.toString('latin1'))?.[1]);
}
