/**
 * Starts a relay (rtpengine or ngrelay) on a random ng port and media port range, trying again with other
 * random ports when one is taken: other test runs on this machine use fixed and random ports too.
 */
import type { RelayOptions, RelayUnderTest } from './relay';

export async function startOnRandomPorts(
  start: (options: RelayOptions) => Promise<RelayUnderTest>,
  extraArgs: string[] = [],
  attempts = 5,
): Promise<RelayUnderTest> {
  let last: unknown;
  for (let i = 0; i < attempts; ++i) {
    const portMin = 42000 + 2 * Math.floor(Math.random() * 4000);
    try {
      return await start({ ngPort: 50000 + Math.floor(Math.random() * 9000), portMin, portMax: portMin + 40, extraArgs });
    } catch (err) {
      last = err;
      if (!/already in use|EADDRINUSE/.test(String(err))) throw err;
    }
  }
  throw last;
}
