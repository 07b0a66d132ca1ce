/**
 * The traffic of the DTMF log tests (dtmf-log*.test.ts): a PCMU + telephone-event SDP, RFC 4733 event packets
 * and plain audio packets of one SSRC.
 */
export const sdp = (port: number): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', ''].join('\r\n');

export function event(seq: number, ts: number, digit: number, duration: number, end: boolean, marker: boolean): Buffer {
  const b = Buffer.alloc(16);
  b[0] = 0x80;
  b[1] = 101 | (marker ? 0x80 : 0);
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(ts >>> 0, 4);
  b.writeUInt32BE(0x1234, 8);
  b[12] = digit;
  b[13] = (end ? 0x80 : 0) | 10;
  b.writeUInt16BE(duration, 14);
  return b;
}

export function audio(seq: number): Buffer {
  const b = Buffer.alloc(172, 0xff);
  b[0] = 0x80;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(0x1234, 8);
  return b;
}
