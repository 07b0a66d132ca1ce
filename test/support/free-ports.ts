/**
 * Ports for tests that run beside other helpers' tests: TCP/UDP ports the kernel hands out as free right
 * now, and a random even-aligned media port range that is free on 127.0.0.1 (checked with a bind).
 */
import dgram from 'node:dgram';
import net from 'node:net';

export function freeTcpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

export function freeUdpPort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const port = socket.address().port;
      socket.close(() => resolve(port));
    });
  });
}

async function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, host, () => socket.close(() => resolve(true)));
  });
}

/**
 * `size` consecutive UDP ports (even first) in 10000..19999 that are free now; tries up to 50 ranges. Below the
 * fixed ranges other suites use (20000 and up) and the kernel's ephemeral ports (32768 and up).
 */
export async function freeMediaRange(size = 40, host = '127.0.0.1'): Promise<{ portMin: number; portMax: number }> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const portMin = 10000 + 2 * Math.floor(Math.random() * ((10000 - size) / 2));
    const checks = await Promise.all(Array.from({ length: size }, (_, i) => udpFree(portMin + i, host)));
    if (checks.every(Boolean)) return { portMin, portMax: portMin + size - 1 };
  }
  throw new Error('no free media port range found in 10000..19999');
}
