/** Binding a TCP (or HTTP) server as a promise: resolves with the bound address, rejects on a bind error. */
import type net from 'node:net';

export function listenTcp(server: net.Server, address: string, port: number): Promise<{ address: string; port: number }> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(port, address, () => {
      server.off('error', onError);
      const a = server.address() as net.AddressInfo;
      resolve({ address: a.address, port: a.port });
    });
  });
}
