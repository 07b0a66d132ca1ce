/**
 * A party of a test call that only counts what it receives, with the plain audio SDP and 172-byte RTP the
 * call-log and signals tests send, and a polling wait that names what did not happen.
 */
import dgram from 'node:dgram';

export interface CountingParty {
  socket: dgram.Socket;
  port: number;
  received: number;
}

export async function countingParty(address: string): Promise<CountingParty> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const p: CountingParty = { socket, port: socket.address().port, received: 0 };
  socket.on('message', () => (p.received += 1));
  return p;
}

/** A G.711 packet: 12-byte header (seq, timestamp at 8 kHz / 20 ms, ssrc) and 160 bytes of payload. */
export function rtp172(seq: number, ssrc: number): Buffer {
  const b = Buffer.alloc(172);
  b[0] = 0x80;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

export function plainAudioSdp(address: string, port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${address}`, 's=-', `c=IN IP4 ${address}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');
}

export async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`${what}: not in time`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
