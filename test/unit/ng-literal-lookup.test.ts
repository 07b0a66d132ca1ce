/**
 * The ng UDP socket's address lookup (src/ng/server.ts literalLookup): a reply's destination is an IP literal
 * and is answered inside the call, so dgram's send() hands the datagram to the kernel at once instead of on
 * the next tick (after every other command the same microtask drain runs). Anything else still goes to DNS.
 */
import { describe, expect, it } from 'vitest';
import { literalLookup } from '../../src/ng/server';

function lookupNow(hostname: string, family: number): { sync: boolean; result: Promise<[string, number]> } {
  let sync = false;
  let settled = false;
  const result = new Promise<[string, number]>((resolve, reject) => {
    literalLookup(hostname, family, (err, address, fam) => {
      if (!settled) sync = true;
      if (err) reject(err);
      else resolve([address, fam]);
    });
  });
  settled = true;
  return { sync, result };
}

describe('literalLookup', () => {
  it('answers IPv4 and IPv6 literals within the call, with their family', async () => {
    const v4 = lookupNow('127.0.0.1', 4);
    expect(v4.sync).toBe(true);
    expect(await v4.result).toEqual(['127.0.0.1', 4]);
    const v6 = lookupNow('::1', 6);
    expect(v6.sync).toBe(true);
    expect(await v6.result).toEqual(['::1', 6]);
  });

  it('leaves names to dns.lookup (answered later)', async () => {
    const name = lookupNow('localhost', 4);
    expect(name.sync).toBe(false);
    const [address, family] = await name.result;
    expect(family).toBe(4);
    expect(address).toMatch(/^127\./);
  });
});
