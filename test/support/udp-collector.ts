/** A UDP socket on loopback that keeps every datagram it receives (a party that only listens and sends). */
import dgram from 'node:dgram';

export interface CollectingSocket {
  socket: dgram.Socket;
  port: number;
  got: Buffer[];
}

export async function collectingSocket(host = '127.0.0.1'): Promise<CollectingSocket> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, host, () => r()));
  const got: Buffer[] = [];
  socket.on('message', (m) => got.push(m));
  return { socket, port: socket.address().port, got };
}
