/**
 * Where the benchmark's packets travel. `loopback` (the default): phones and relay on this host's 127.0.0.0/8.
 * `veth`: the phones (generator + sink) in a network namespace of their own, joined to this host by a veth
 * pair, and the relays on the host's end of it: every packet crosses the veth twice (to the relay and back),
 * as it crosses a NIC on a real host, and the kernel fast path runs on a device other than lo.
 *
 *   namespace ngrb-<tag>: 10.251.0.11 (phone A), 10.251.0.12 (phone B) on <ns-side veth>
 *        ── veth ──  host: 10.251.0.1 (the relays' --interface) on <host-side veth>
 *
 * The namespace, and with it both ends of the veth, are removed when the run ends (also on Ctrl-C and errors:
 * the exit handlers of processes.ts); nothing else on the host is touched.
 */
import { execFileSync } from 'node:child_process';
import { RELAY_IP } from './forwarders';
import { addExitCleanup } from './processes';

export type TopologyKind = 'loopback' | 'veth';

export class TopologyError extends Error {
  override readonly name = 'TopologyError';
}

export interface Topology {
  kind: TopologyKind;
  /** The relays' media address (--interface, minfwd --bind). */
  relayIp: string;
  /** The phones' addresses, A side and B side. */
  local: [string, string];
  /** The namespace the generator runs in; null = this host's. */
  netns: string | null;
  /** One line for the report's setup. */
  description: string;
  remove(): void;
}

export function loopbackTopology(local: [string, string]): Topology {
  return { kind: 'loopback', relayIp: RELAY_IP, local, netns: null, description: `loopback: phones on ${local.join(' / ')}, relays on ${RELAY_IP}`, remove: () => undefined };
}

const SUBNET = '10.251.0';

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new TopologyError(`\`ip ${args.join(' ')}\` failed: ${stderr || (err as Error).message}`);
  }
}

/** Whether an address is already in use on this host (another run's veth, or a network that has it). */
function hostHasAddress(address: string): boolean {
  try {
    return execFileSync('ip', ['-o', 'addr', 'show'], { encoding: 'utf8', timeout: 10_000 }).includes(` ${address}/`);
  } catch {
    return false;
  }
}

/**
 * Creates the veth topology. `tag` makes the names unique (default: this process's PID); interface names
 * stay within the kernel's 15 characters.
 */
export function createVethTopology(tag = String(process.pid)): Topology {
  if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new TopologyError(`topology tag must be 1-8 lowercase letters or digits, got "${tag}"`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) throw new TopologyError('--topology=veth needs root (ip netns add)');
  const relayIp = `${SUBNET}.1`;
  if (hostHasAddress(relayIp)) throw new TopologyError(`${relayIp} is already on this host (another --topology=veth run?)`);
  const netns = `ngrb-${tag}`;
  const hostSide = `ngrb${tag}h`;
  const nsSide = `ngrb${tag}g`;
  const local: [string, string] = [`${SUBNET}.11`, `${SUBNET}.12`];
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    // The ns-side end lives in the namespace: deleting it deletes the pair.
    try {
      execFileSync('ip', ['netns', 'del', netns], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* already gone */
    }
    try {
      execFileSync('ip', ['link', 'del', hostSide], { stdio: 'ignore', timeout: 10_000 });
    } catch {
      /* went with the namespace */
    }
  };
  ip(['netns', 'add', netns]);
  addExitCleanup(remove);
  try {
    ip(['link', 'add', hostSide, 'type', 'veth', 'peer', 'name', nsSide, 'netns', netns]);
    ip(['addr', 'add', `${relayIp}/24`, 'dev', hostSide]);
    ip(['link', 'set', hostSide, 'up']);
    ip(['-n', netns, 'link', 'set', 'lo', 'up']);
    for (const a of local) ip(['-n', netns, 'addr', 'add', `${a}/24`, 'dev', nsSide]);
    ip(['-n', netns, 'link', 'set', nsSide, 'up']);
  } catch (err) {
    remove();
    throw err;
  }
  return {
    kind: 'veth',
    relayIp,
    local,
    netns,
    description: `veth: phones (generator + sink) on ${local.join(' / ')} in network namespace ${netns}, relays on ${relayIp} (${hostSide}) across a veth pair; the generator ceiling and its softirq baseline are measured inside the namespace (phone A -> phone B, not across the veth)`,
    remove,
  };
}

/** A command run in the generator's namespace (ip netns exec execs it: the PID stays the command's). */
export function inNetns(netns: string | null, cmd: string, args: string[]): { cmd: string; args: string[] } {
  return netns === null ? { cmd, args } : { cmd: 'ip', args: ['netns', 'exec', netns, cmd, ...args] };
}
