/**
 * Keeps ng replies within one UDP datagram.
 *
 * A reply the kernel cannot send (EMSGSIZE: a `list` of huge call-ids, a `query` of a call with hundreds
 * of media) would otherwise leave the client in silence, retransmitting until it gives up. Such a reply is
 * replaced by a short error reply that says why, in the request's encoding and with its cookie, so the
 * client learns at once; the full reply is for the stream transports (TCP/HTTP/WebSocket), which have no
 * such limit and do not use this module.
 */
import { encode } from './bencode';
import { ngDict } from './dict';
import { encodeJsonDict } from './json';

/** Largest UDP payload over IPv4 (65,535 - 20 IP - 8 UDP); IPv6 allows 20 bytes more, one bound keeps it simple. */
export const MAX_UDP_PAYLOAD = 65_507;

const SPACE = 0x20;
const BRACE = 0x7b;

function replyTooLargeReason(bytes: number, limit: number): string {
  return `Reply too large for a UDP datagram (${bytes} bytes, limit ${limit}); use a TCP, HTTP or WebSocket ng transport`;
}

/**
 * `message` is a whole ng reply (`<cookie> <dict>`). Returns it unchanged when it fits `limit`, else the
 * error reply with the same cookie, or null when not even that fits (a cookie of nearly 64 kB).
 */
export function fitDatagram(message: Buffer, limit = MAX_UDP_PAYLOAD): Buffer | null {
  if (message.length <= limit) return message;
  const space = message.indexOf(SPACE);
  if (space < 0) return null;
  const cookie = message.subarray(0, space + 1);
  const error = ngDict([
    ['result', 'error'],
    ['error-reason', replyTooLargeReason(message.length, limit)],
  ]);
  const body = message[space + 1] === BRACE ? encodeJsonDict(error) : encode(error);
  if (cookie.length + body.length > limit) return null;
  return Buffer.concat([cookie, body]);
}
