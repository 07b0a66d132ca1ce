/** RTCP packets built field by field for the parser tests (RFC 3550 §6.4, RFC 3611 §4.7). */

export interface BlockFields {
  ssrc: number;
  fractionLost?: number;
  cumulativeLost?: number;
  extHighestSeq?: number;
  jitter?: number;
  lsr?: number;
  dlsr?: number;
}

export function reportBlock(b: BlockFields): Buffer {
  const out = Buffer.alloc(24);
  out.writeUInt32BE(b.ssrc >>> 0, 0);
  out[4] = b.fractionLost ?? 0;
  out.writeUIntBE((b.cumulativeLost ?? 0) & 0xffffff, 5, 3);
  out.writeUInt32BE((b.extHighestSeq ?? 0) >>> 0, 8);
  out.writeUInt32BE((b.jitter ?? 0) >>> 0, 12);
  out.writeUInt32BE((b.lsr ?? 0) >>> 0, 16);
  out.writeUInt32BE((b.dlsr ?? 0) >>> 0, 20);
  return out;
}

function header(pt: number, count: number, body: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x80 | (count & 0x1f);
  h[1] = pt;
  h.writeUInt16BE(body.length / 4, 2);
  return Buffer.concat([h, body]);
}

export function sr(ssrc: number, ntpMsw: number, ntpLsw: number, blocks: BlockFields[] = [], packets = 100, octets = 16000): Buffer {
  const info = Buffer.alloc(24);
  info.writeUInt32BE(ssrc >>> 0, 0);
  info.writeUInt32BE(ntpMsw >>> 0, 4);
  info.writeUInt32BE(ntpLsw >>> 0, 8);
  info.writeUInt32BE(12345, 12);
  info.writeUInt32BE(packets >>> 0, 16);
  info.writeUInt32BE(octets >>> 0, 20);
  return header(200, blocks.length, Buffer.concat([info, ...blocks.map(reportBlock)]));
}

export function rr(ssrc: number, blocks: BlockFields[] = []): Buffer {
  const s = Buffer.alloc(4);
  s.writeUInt32BE(ssrc >>> 0, 0);
  return header(201, blocks.length, Buffer.concat([s, ...blocks.map(reportBlock)]));
}

export function sdes(ssrc: number, cname: string): Buffer {
  const text = Buffer.from(cname);
  const chunkLen = Math.ceil((4 + 2 + text.length + 1) / 4) * 4;
  const chunk = Buffer.alloc(chunkLen);
  chunk.writeUInt32BE(ssrc >>> 0, 0);
  chunk[4] = 1;
  chunk[5] = text.length;
  text.copy(chunk, 6);
  return header(202, 1, chunk);
}

export function bye(ssrc: number): Buffer {
  const s = Buffer.alloc(4);
  s.writeUInt32BE(ssrc >>> 0, 0);
  return header(203, 1, s);
}

/** RTCP XR with one VoIP Metrics block (BT=7, 36 bytes). */
export function xrVoip(sender: number, about: number, f: { lossRate: number; roundTripDelayMs: number; mosLq: number; mosCq: number }): Buffer {
  const body = Buffer.alloc(4 + 4 + 32);
  body.writeUInt32BE(sender >>> 0, 0);
  body[4] = 7;
  body.writeUInt16BE(8, 6);
  const b = 8;
  body.writeUInt32BE(about >>> 0, b);
  body[b + 4] = f.lossRate;
  body.writeUInt16BE(f.roundTripDelayMs, b + 12);
  body[b + 22] = 90;
  body[b + 24] = f.mosLq;
  body[b + 25] = f.mosCq;
  return header(207, 0, body);
}

/** A transport-layer feedback packet (RTPFB generic NACK), as WebRTC endpoints send in reduced-size RTCP. */
export function nack(sender: number, media: number): Buffer {
  const body = Buffer.alloc(12);
  body.writeUInt32BE(sender >>> 0, 0);
  body.writeUInt32BE(media >>> 0, 4);
  body.writeUInt32BE(0x00100000, 8);
  return header(205, 1, body);
}
