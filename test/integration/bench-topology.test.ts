/**
 * ngrelay-bench's `--topology=veth` (bench/tool/topology.ts): the option, the relays' command lines on the
 * veth address, and the namespace + veth pair it creates (phones there, relay address on the host's end,
 * reachable across it) and removes again. Names carry the tag "h4t"; root needed (ip netns), as for the bench.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { FORWARDERS, relayCommand, type ForwarderDef } from '../../bench/tool/forwarders';
import { BenchUsageError, parseOptions } from '../../bench/tool/options';
import { createVethTopology, inNetns, type Topology } from '../../bench/tool/topology';

const TAG = 'h4t';
let topology: Topology | null = null;

afterAll(() => topology?.remove());

const netnsList = (): string => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });

describe('ngrelay-bench --topology=veth', () => {
  it('is an option of its own, not combined with --ng or --local', () => {
    const topologyOf = (argv: string[]): string => {
      const o = parseOptions(argv);
      return o === 'help' ? 'help' : o.topology;
    };
    expect(topologyOf([])).toBe('loopback');
    expect(topologyOf(['--topology=veth'])).toBe('veth');
    expect(() => parseOptions(['--topology=wifi'])).toThrow(BenchUsageError);
    expect(() => parseOptions(['--topology=veth', '--local=127.0.0.5'])).toThrow(BenchUsageError);
    expect(() => parseOptions(['--topology=veth', '--ng=10.0.0.5:2223', '--local=10.0.0.6'])).toThrow(BenchUsageError);
  });

  it('starts every relay on the topology address', () => {
    for (const name of ['ngrelay', 'ngrelay-kernel', 'rtpengine', 'minfwd']) {
      const { args } = relayCommand(FORWARDERS[name] as ForwarderDef, 1, null, '10.251.0.1');
      expect(args.join(' ')).toMatch(/--interface=10\.251\.0\.1|--bind 10\.251\.0\.1/);
    }
  });

  it('creates the phones namespace across a veth pair from the relay address, and removes it', async () => {
    topology = createVethTopology(TAG);
    expect(topology.netns).toBe(`ngrb-${TAG}`);
    expect(netnsList()).toContain(`ngrb-${TAG}`);
    // The relay's address is on the host, the phones' in the namespace, and they reach each other over the veth.
    expect(execFileSync('ip', ['-o', 'addr', 'show', 'dev', `ngrb${TAG}h`], { encoding: 'utf8' })).toContain(`${topology.relayIp}/24`);
    const relaySide = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => relaySide.bind(0, topology!.relayIp, resolve));
    const got = new Promise<string>((resolve) => relaySide.once('message', (m, from) => resolve(`${m.toString()} from ${from.address}`)));
    const script = `const s=require('dgram').createSocket('udp4');s.bind(0,'${topology.local[0]}',()=>s.send('hello',${relaySide.address().port},'${topology.relayIp}',()=>s.close()))`;
    const phone = inNetns(topology.netns, process.execPath, ['-e', script]);
    execFileSync(phone.cmd, phone.args, { timeout: 10_000 });
    expect(await got).toBe(`hello from ${topology.local[0]}`);
    relaySide.close();
    // A second run at the same time would fight over the address: refused.
    expect(() => createVethTopology('h4u')).toThrow(/already on this host/);
    topology.remove();
    expect(netnsList()).not.toContain(`ngrb-${TAG}`);
    expect(execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })).not.toContain(`ngrb${TAG}h`);
  });
});
