/**
 * Network namespaces for the Kamailio end-to-end test: a "public" LAN with the proxy and the relays, and two
 * phones with private addresses, each behind its own NAT namespace that masquerades UDP to random ports.
 *
 *   ua-a 192.168.201.2 ── 192.168.201.1 nat-a 10.200.0.11 ─┐
 *                                                          ├─ br0 in pub: 10.200.0.1, 10.200.0.2
 *   ua-b 192.168.202.2 ── 192.168.202.1 nat-b 10.200.0.12 ─┘
 *
 * Every interface is created directly inside a namespace of ours (`ip -n NS link add ... netns OTHER`), so
 * nothing is ever added to, or routed through, the host's own network namespace. All names start with
 * NS_PREFIX; removing the namespaces removes every veth, bridge, address and iptables rule with them.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const NS_PREFIX = 'ngr-e2e-';

export const NS = {
  pub: `${NS_PREFIX}pub`,
  natA: `${NS_PREFIX}nat-a`,
  natB: `${NS_PREFIX}nat-b`,
  uaA: `${NS_PREFIX}ua-a`,
  uaB: `${NS_PREFIX}ua-b`,
} as const;

/** Addresses inside our namespaces only; none of them is ever configured on the host. */
export const ADDR = {
  /** Kamailio and the first relay. */
  pub1: '10.200.0.1',
  /** The second relay. */
  pub2: '10.200.0.2',
  natAPublic: '10.200.0.11',
  natBPublic: '10.200.0.12',
  uaA: '192.168.201.2',
  uaB: '192.168.202.2',
} as const;

/** The NATs map UDP sources into this port range (so a learned port is recognisably the NAT's). */
export const NAT_PORT_MIN = 40000;
export const NAT_PORT_MAX = 49999;

export interface CommandResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (bounded by timeoutMs); a non-zero exit throws with its output. */
export async function run(command: string, args: string[], timeoutMs = 15_000): Promise<CommandResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 });
    return { stdout, stderr };
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string; code?: number | string };
    throw new Error(
      `\`${[command, ...args].join(' ')}\` failed (${String(e.code)}): ${e.message}\n${e.stderr ?? ''}${e.stdout ?? ''}`,
    );
  }
}

/** Runs a command inside a namespace. */
export function nsRun(ns: string, args: string[], timeoutMs = 15_000): Promise<CommandResult> {
  return run('ip', ['netns', 'exec', ns, ...args], timeoutMs);
}

/** Fails with a message that says why when this process cannot create network namespaces. */
export function assertCanCreateNamespaces(): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : -1;
  if (uid !== 0) {
    throw new Error(
      `the Kamailio end-to-end test needs root to create network namespaces (ip netns add), but runs as uid ${uid}; ` +
        'run the test suite as root (CI does)',
    );
  }
}

/** Namespaces whose names start with our prefix, e.g. left over from a run that crashed. */
export async function ourNamespaces(): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name.startsWith(NS_PREFIX));
}

/** Deletes our namespaces (and with them all their interfaces and rules). Never touches any other. */
export async function removeTopology(): Promise<void> {
  for (const name of await ourNamespaces()) {
    await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}

/** Builds the topology above; on failure, whatever was created is removed again before the error goes up. */
export async function createTopology(): Promise<void> {
  await removeTopology();
  try {
    for (const ns of Object.values(NS)) {
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    }
    // The public LAN: a bridge in pub with the proxy/relay addresses.
    await run('ip', ['-n', NS.pub, 'link', 'add', 'br0', 'type', 'bridge']);
    await run('ip', ['-n', NS.pub, 'link', 'set', 'br0', 'up']);
    await run('ip', ['-n', NS.pub, 'addr', 'add', `${ADDR.pub1}/24`, 'dev', 'br0']);
    await run('ip', ['-n', NS.pub, 'addr', 'add', `${ADDR.pub2}/24`, 'dev', 'br0']);

    const sides = [
      { nat: NS.natA, ua: NS.uaA, port: 'to-a', natPublic: ADDR.natAPublic, lanNet: '192.168.201', ua4: ADDR.uaA },
      { nat: NS.natB, ua: NS.uaB, port: 'to-b', natPublic: ADDR.natBPublic, lanNet: '192.168.202', ua4: ADDR.uaB },
    ];
    for (const side of sides) {
      // pub <-> NAT ("wan"), NAT <-> phone ("lan"/"eth0"); each pair created inside our namespaces.
      await run('ip', ['-n', NS.pub, 'link', 'add', side.port, 'type', 'veth', 'peer', 'name', 'wan', 'netns', side.nat]);
      await run('ip', ['-n', NS.pub, 'link', 'set', side.port, 'master', 'br0', 'up']);
      await run('ip', ['-n', side.nat, 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', side.ua]);
      await run('ip', ['-n', side.nat, 'addr', 'add', `${side.natPublic}/24`, 'dev', 'wan']);
      await run('ip', ['-n', side.nat, 'addr', 'add', `${side.lanNet}.1/24`, 'dev', 'lan']);
      await run('ip', ['-n', side.ua, 'addr', 'add', `${side.ua4}/24`, 'dev', 'eth0']);
      await run('ip', ['-n', side.nat, 'link', 'set', 'wan', 'up']);
      await run('ip', ['-n', side.nat, 'link', 'set', 'lan', 'up']);
      await run('ip', ['-n', side.ua, 'link', 'set', 'eth0', 'up']);
      await run('ip', ['-n', side.ua, 'route', 'add', 'default', 'via', `${side.lanNet}.1`]);
      await nsRun(side.nat, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      // Keep idle UDP bindings for 2 minutes (the default 30 s could expire between test phases).
      await nsRun(side.nat, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=120']).catch(() => undefined);
      // Port translation: every UDP flow leaving the NAT gets a random public port in our range.
      await nsRun(side.nat, [
        'iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'wan', '-p', 'udp',
        '-j', 'MASQUERADE', '--to-ports', `${NAT_PORT_MIN}-${NAT_PORT_MAX}`, '--random',
      ]);
      // Count the media the NAT forwards (everything UDP that is not SIP): rule 1 phone -> relay, rule 2 back.
      await nsRun(side.nat, ['iptables', '-A', 'FORWARD', '-i', 'lan', '-o', 'wan', '-p', 'udp', '!', '--sport', '5060', '!', '--dport', '5060']);
      await nsRun(side.nat, ['iptables', '-A', 'FORWARD', '-i', 'wan', '-o', 'lan', '-p', 'udp', '!', '--sport', '5060', '!', '--dport', '5060']);
      // Count the phone's media (everything UDP that is not SIP), both ways, at the phone itself.
      await nsRun(side.ua, ['iptables', '-A', 'INPUT', '-p', 'udp', '!', '--sport', '5060', '!', '--dport', '5060']);
      await nsRun(side.ua, ['iptables', '-A', 'OUTPUT', '-p', 'udp', '!', '--sport', '5060', '!', '--dport', '5060']);
    }
  } catch (err) {
    await removeTopology();
    throw err;
  }
}

export interface MediaCounters {
  /** RTP datagrams that arrived at the phone. */
  received: number;
  /** RTP datagrams the phone sent. */
  sent: number;
}

/** The phone's media counters (iptables rule packet counts in its own namespace). */
export async function mediaCounters(uaNs: string): Promise<MediaCounters> {
  const count = async (chain: string): Promise<number> => {
    const { stdout } = await nsRun(uaNs, ['iptables', '-nvxL', chain]);
    // Line 0: "Chain ...", line 1: header, line 2: our only rule, "pkts bytes target ...".
    const rule = stdout.split('\n')[2]?.trim() ?? '';
    const packets = Number(rule.split(/\s+/)[0]);
    if (!Number.isInteger(packets)) throw new Error(`cannot read the ${chain} counter in ${uaNs}:\n${stdout}`);
    return packets;
  };
  return { received: await count('INPUT'), sent: await count('OUTPUT') };
}

/** Resets the counters of a phone's or a NAT's namespace (mediaCounters, natCounters). */
export async function resetMediaCounters(ns: string): Promise<void> {
  await nsRun(ns, ['iptables', '-Z']);
}

export interface NatCounters {
  /** Media datagrams the NAT forwarded from its phone towards the relays. */
  fromPhone: number;
  /** ... and from the relays to its phone. */
  toPhone: number;
}

/** The NAT's FORWARD counters (its two rules, in the order createTopology adds them). */
export async function natCounters(natNs: string): Promise<NatCounters> {
  const { stdout } = await nsRun(natNs, ['iptables', '-nvxL', 'FORWARD']);
  const packets = stdout
    .split('\n')
    .slice(2)
    .filter((l) => l.trim() !== '')
    .map((l) => Number(l.trim().split(/\s+/)[0]));
  if (packets.length !== 2 || !packets.every(Number.isInteger)) throw new Error(`cannot read the FORWARD counters in ${natNs}:\n${stdout}`);
  return { fromPhone: packets[0]!, toPhone: packets[1]! };
}

/**
 * One ng request from inside a namespace (the relays listen only there): a tiny node script sends the
 * datagram, resends it every 300 ms like Kamailio does, and prints the reply with the same cookie as hex.
 */
const NG_ONE_SHOT = `
const dgram = require('dgram');
const [host, port, hex, timeout] = process.argv.slice(1);
const msg = Buffer.from(hex, 'hex');
const prefix = msg.subarray(0, msg.indexOf(32) + 1);
const sock = dgram.createSocket('udp4');
const send = () => sock.send(msg, Number(port), host);
setTimeout(() => { process.stderr.write('no ng reply'); process.exit(2); }, Number(timeout));
setInterval(send, 300);
sock.on('message', (reply) => {
  if (reply.subarray(0, prefix.length).equals(prefix)) { process.stdout.write(reply.toString('hex')); process.exit(0); }
});
send();
`;

export async function nsNgExchange(ns: string, host: string, port: number, datagram: Buffer, timeoutMs = 3000): Promise<Buffer> {
  const { stdout } = await nsRun(
    ns,
    [process.execPath, '-e', NG_ONE_SHOT, host, String(port), datagram.toString('hex'), String(timeoutMs)],
    timeoutMs + 5000,
  );
  return Buffer.from(stdout.trim(), 'hex');
}

/**
 * Which of `ports` cannot be bound on `address` inside the namespace right now (a relay still holds them).
 * The script binds each port, notes EADDRINUSE, and closes everything again at once.
 */
const PORTS_IN_USE = `
const dgram = require('dgram');
const [address, list] = process.argv.slice(1);
const ports = list.split(',').map(Number);
const busy = [];
let left = ports.length;
for (const port of ports) {
  const s = dgram.createSocket('udp4');
  s.once('error', () => { busy.push(port); done(s, false); });
  s.bind(port, address, () => done(s, true));
}
function done(s, bound) {
  if (bound) s.close();
  if (--left === 0) { process.stdout.write(JSON.stringify(busy)); process.exit(0); }
}
`;

export async function portsInUse(ns: string, address: string, ports: number[]): Promise<number[]> {
  if (ports.length === 0) return [];
  const { stdout } = await nsRun(ns, [process.execPath, '-e', PORTS_IN_USE, address, ports.join(',')]);
  return JSON.parse(stdout) as number[];
}
