/**
 * How the real binary refuses to start: an --interface address that is not on this machine (status 1, one
 * line naming it, instead of a relay whose every offer fails with EADDRNOTAVAIL), a malformed value of an
 * rtpengine-only option or an unknown option (status 2).
 */
import { describe, expect, it } from 'vitest';
import { runNgrelay } from '../support/ngrelay';

const ngPort = 44000 + Math.floor(Math.random() * 1000);
const base = ['--config-file=none', '-f', '-E', `--listen-ng=127.0.0.1:${ngPort}`, '--port-min=58000', '--port-max=58099'];

describe('ngrelay refuses to start', () => {
  it('with an --interface address that is not on this machine, naming it (status 1)', async () => {
    // 192.0.2.0/24 is TEST-NET-1: never assigned here except by this machine's own test network (.2), so .77.
    const r = await runNgrelay([...base, '--interface=pub/192.0.2.77']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("ngrelay: cannot start: --interface address 192.0.2.77 (interface 'pub') is not an address of this machine");
  });

  it('with a malformed value of an rtpengine-only option (status 2)', async () => {
    const r = await runNgrelay([...base, '--interface=127.0.0.1', '--tos=high']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("ngrelay: invalid value 'high' for --tos: expected an integer");
  });

  it('with an option rtpengine does not have either (status 2)', async () => {
    const r = await runNgrelay([...base, '--interface=127.0.0.1', '--redis-cluster=x']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('ngrelay: unknown option --redis-cluster');
  });
});
