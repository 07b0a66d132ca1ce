/** Builders for RTP/RTCP datagrams and a loopback UDP party, shared by data-plane tests and benchmarks. */
import * as dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export interface RtpOptions {
  seq: number;
  ssrc: number;
  payloadType?: number;
  marker?: boolean;
  timestamp?: number;
  payloadBytes?: number;
  csrcs?: number[];
  /** Header extension: number of 32-bit words of extension data. */
  extensionWords?: number;
  /** Padding bytes appended (RFC 3550: last byte holds the count). */
  padding?: number;
}

/** A well-formed RTP packet; 12-byte header + payloadBytes (default 160: 172 bytes in all). */
export function rtpPacket(o: RtpOptions): Buffer {
  const csrcs = o.csrcs ?? [];
  const ext = o.extensionWords === undefined ? 0 : 4 + 4 * o.extensionWords;
  const payload = o.payloadBytes ?? 160;
  const padding = o.padding ?? 0;
  const buf = Buffer.alloc(12 + 4 * csrcs.length + ext + payload + padding, 0x5a);
  buf[0] = 0x80 | (padding > 0 ? 0x20 : 0) | (o.extensionWords !== undefined ? 0x10 : 0) | csrcs.length;
  buf[1] = ((o.marker ? 1 : 0) << 7) | ((o.payloadType ?? 0) & 0x7f);
  buf.writeUInt16BE(o.seq & 0xffff, 2);
  buf.writeUInt32BE((o.timestamp ?? o.seq * 160) >>> 0, 4);
  buf.writeUInt32BE(o.ssrc >>> 0, 8);
  let off = 12;
  for (const c of csrcs) {
    buf.writeUInt32BE(c >>> 0, off);
    off += 4;
  }
  if (o.extensionWords !== undefined) {
    buf.writeUInt16BE(0xbede, off);
    buf.writeUInt16BE(o.extensionWords, off + 2);
  }
  if (padding > 0) buf[buf.length - 1] = padding;
  return buf;
}

/** An RTCP receiver report with no report blocks (8 bytes), or a sender report (28 bytes). */
export function rtcpPacket(ssrc: number, kind: 'rr' | 'sr' = 'rr'): Buffer {
  const words = kind === 'rr' ? 1 : 6;
  const buf = Buffer.alloc(4 * (words + 1), 0);
  buf[0] = 0x80;
  buf[1] = kind === 'rr' ? 201 : 200;
  buf.writeUInt16BE(words, 2);
  buf.writeUInt32BE(ssrc >>> 0, 4);
  return buf;
}

export interface Received {
  data: Buffer;
  address: string;
  port: number;
}

/** A party on loopback: one UDP socket on an ephemeral port that records everything it receives. */
export class Party {
  readonly received: Received[] = [];
  /** Every datagram received, kept or not. */
  count = 0;
  /** Which datagrams to keep in `received` (bursts would otherwise hold every buffer). */
  keep: (data: Buffer) => boolean = () => true;
  private constructor(private readonly socket: dgram.Socket) {
    socket.on('message', (data, rinfo) => {
      this.count++;
      if (this.keep(data)) this.received.push({ data, address: rinfo.address, port: rinfo.port });
    });
  }

  static async open(address = '127.0.0.1', receiveBufferBytes = 4 << 20): Promise<Party> {
    const socket = dgram.createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', recvBufferSize: receiveBufferBytes });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, address, () => resolve());
    });
    return new Party(socket);
  }

  get address(): string {
    return (this.socket.address() as AddressInfo).address;
  }

  get port(): number {
    return (this.socket.address() as AddressInfo).port;
  }

  send(data: Buffer, port: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => this.socket.send(data, port, address, (err) => (err ? reject(err) : resolve())));
  }

  /** Fire-and-forget send; pair with flush() for bursts. */
  sendNoWait(data: Buffer, port: number, address: string): void {
    this.socket.send(data, port, address);
  }

  /** Resolves once every queued send has been handed to the kernel (one more send, awaited). */
  async flush(port: number, address: string, data: Buffer): Promise<void> {
    await this.send(data, port, address);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }
}

/** Polls `check` until it returns true or the deadline passes; returns the final verdict. */
export async function waitUntil(check: () => boolean, timeoutMs = 3000, stepMs = 5): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
