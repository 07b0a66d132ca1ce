/**
 * Start-up check that every `--interface` address is on this machine. Without it the relay starts and every
 * offer then fails with EADDRNOTAVAIL; rtpengine refuses to start instead. Binding a UDP socket to port 0
 * asks the kernel itself, so addresses the device list does not show (all of 127.0.0.0/8) count as local.
 */
import { createSocket } from 'node:dgram';
import type { InterfaceConfig } from './types';

/** An `--interface` address that cannot be bound here; the message names it. The CLI exits with status 1. */
export class InterfaceAddressError extends Error {
  override readonly name = 'InterfaceAddressError';
}

function tryBind(iface: InterfaceConfig): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const socket = createSocket(iface.family === 'IPv6' ? 'udp6' : 'udp4');
    socket.once('error', (err: NodeJS.ErrnoException) => {
      socket.close();
      resolve(err);
    });
    socket.bind({ address: iface.address, port: 0, exclusive: true }, () => {
      socket.close();
      resolve(null);
    });
  });
}

export async function checkInterfacesAreLocal(interfaces: readonly InterfaceConfig[]): Promise<void> {
  for (const iface of interfaces) {
    const err = await tryBind(iface);
    if (err === null) continue;
    const what = `--interface address ${iface.address} (interface '${iface.name}')`;
    if (err.code === 'EADDRNOTAVAIL') throw new InterfaceAddressError(`${what} is not an address of this machine`);
    throw new InterfaceAddressError(`${what} cannot be bound: ${err.code ?? err.message}`);
  }
}
