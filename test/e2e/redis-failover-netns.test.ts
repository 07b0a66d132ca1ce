/**
 * Active/standby failover as rtpengine's keepalived setups do it, in network namespaces of our own (names
 * carry this process's PID, so runs in other worktrees never meet): a LAN bridge, relay A holding the
 * service address (VIP) 10.201.0.100, relay B beside it with `net.ipv4.ip_nonlocal_bind=1`, and a "client"
 * namespace with Redis, the proxy's ng commands and the two media parties, which talk to the VIP only.
 *
 *   a 10.201.0.1 + VIP ─┐
 *   b 10.201.0.2 ───────┼─ br0 in lan
 *   c 10.201.0.3 ───────┘   (redis-server, ng commands, parties)
 *
 * A writes Redis database 1, B subscribes to it (`-k 1`) and binds A's calls' ports on the VIP at once, as
 * rtpengine does. After `kill -9` of A the VIP moves to B (`ip addr del`/`add`, and the client forgets
 * its ARP entry, as a gratuitous ARP would make it), media goes on to the same address and ports, and the
 * proxy's next answer, query and delete, sent to the same VIP and ng port, succeed on B. Everything created
 * is removed in afterAll.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertCanCreateNamespaces, nsNgExchange, run } from '../support/e2e-netns';
import { readLog, startInNs, stopAll, signal, type NsProcess } from '../support/e2e-procs';
import { decode, isDict, toPlain, type BDict, type BInputDict } from '../support/bencode';
import { NgRawClient } from '../support/ng-client';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { REDIS_SERVER } from '../support/redis-server';
import { sleep } from '../support/rtp-packets';
import { portOf } from '../support/ng-values';

const PREFIX = `ngr-h6-${process.pid}-`;
const NS = { lan: `${PREFIX}lan`, a: `${PREFIX}a`, b: `${PREFIX}b`, c: `${PREFIX}c` } as const;
const ADDR = { a: '10.201.0.1', b: '10.201.0.2', c: '10.201.0.3', vip: '10.201.0.100' } as const;
const NG_PORT = 25060;
const REDIS_PORT = 6400;
const PARTY_A = 40000;
const PARTY_B = 40002;

let dir: string;
let relayA: NsProcess | undefined;
let relayB: NsProcess | undefined;
let cookie = 0;

async function removeNamespaces(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const name = line.trim().split(/\s+/)[0] ?? '';
    if (name.startsWith(PREFIX)) await run('ip', ['netns', 'del', name]).catch(() => undefined);
  }
}

async function createNamespaces(): Promise<void> {
  for (const ns of Object.values(NS)) {
    await run('ip', ['netns', 'add', ns]);
    await run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await run('ip', ['-n', NS.lan, 'link', 'add', 'br0', 'type', 'bridge']);
  await run('ip', ['-n', NS.lan, 'link', 'set', 'br0', 'up']);
  for (const host of ['a', 'b', 'c'] as const) {
    await run('ip', ['-n', NS.lan, 'link', 'add', `v-${host}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS[host]]);
    await run('ip', ['-n', NS.lan, 'link', 'set', `v-${host}`, 'master', 'br0', 'up']);
    await run('ip', ['-n', NS[host], 'addr', 'add', `${ADDR[host]}/24`, 'dev', 'eth0']);
    await run('ip', ['-n', NS[host], 'link', 'set', 'eth0', 'up']);
  }
  await run('ip', ['-n', NS.a, 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'eth0']);
  // The standby binds the VIP's ports before it holds the VIP, as rtpengine's standby does.
  await run('ip', ['netns', 'exec', NS.b, 'sysctl', '-q', '-w', 'net.ipv4.ip_nonlocal_bind=1']);
}

function startRelay(name: string, ns: string, db: number, subscribe: number): NsProcess {
  return startInNs(
    name,
    ns,
    process.execPath,
    [
      NGRELAY_BIN,
      '--config-file=none',
      '--table=-1',
      `--interface=${ADDR.vip}`,
      `--listen-ng=${ADDR.vip}:${NG_PORT}`,
      '--port-min=30000',
      '--port-max=30039',
      '--delete-delay=0',
      `--redis=${ADDR.c}:${REDIS_PORT}/${db}`,
      `--subscribe-keyspace=${subscribe}`,
      '--foreground',
      '--log-stderr',
    ],
    path.join(dir, `${name}.log`),
    REPO_ROOT,
  );
}

/** One ng command from the client namespace to the VIP; the decoded reply. */
async function ng(body: BInputDict): Promise<BDict> {
  const id = `h6_${++cookie}`;
  const reply = await nsNgExchange(NS.c, ADDR.vip, NG_PORT, NgRawClient.frame(id, body), 2000);
  const decoded = decode(reply.subarray(reply.indexOf(0x20) + 1));
  if (!isDict(decoded)) throw new Error('ng reply is not a dict');
  return decoded;
}

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await sleep(100);
  }
  return false;
}

function sdp(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${ADDR.c}`, 's=-', `c=IN IP4 ${ADDR.c}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ''].join('\r\n');
}

/**
 * The two parties, in the client namespace: 50 packets a second each way to the VIP for `seconds`, a line
 * `{"t":ms,"a":n,"b":n}` every 100 ms with the packets each has received so far. Bounded by `seconds`.
 */
const PARTIES = `
const dgram = require('dgram');
const [host, vip, aPort, bPort, toA, toB, seconds] = process.argv.slice(1);
const a = dgram.createSocket('udp4'), b = dgram.createSocket('udp4');
let ra = 0, rb = 0, seq = 0;
a.on('message', () => ra++); b.on('message', () => rb++);
const t0 = Date.now();
a.bind(Number(aPort), host, () => b.bind(Number(bPort), host, () => {
  const rtp = (s, ssrc) => { const p = Buffer.alloc(172); p[0] = 0x80; p.writeUInt16BE(s & 0xffff, 2); p.writeUInt32BE(s * 160, 4); p.writeUInt32BE(ssrc, 8); return p; };
  const send = setInterval(() => { seq++; a.send(rtp(seq, 0xa1), Number(toA), vip); b.send(rtp(seq, 0xb2), Number(toB), vip); }, 20);
  const report = setInterval(() => process.stdout.write(JSON.stringify({ t: Date.now() - t0, a: ra, b: rb }) + '\\n'), 100);
  setTimeout(() => { clearInterval(send); clearInterval(report); a.close(); b.close(); }, Number(seconds) * 1000);
}));
`;

function partyReports(proc: NsProcess): Array<{ t: number; a: number; b: number }> {
  return readFileSync(proc.logFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { t: number; a: number; b: number });
}

beforeAll(async () => {
  assertCanCreateNamespaces();
  dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-h6-netns-'));
  await removeNamespaces();
  await createNamespaces();
  // Protected mode off: the relays connect from other namespaces; nothing outside ours can reach it.
  const redis = startInNs('redis', NS.c, REDIS_SERVER, ['--bind', ADDR.c, '--port', String(REDIS_PORT), '--dir', dir, '--save', '', '--appendonly', 'no', '--notify-keyspace-events', 'KA', '--protected-mode', 'no'], path.join(dir, 'redis.log'));
  expect(await until(() => readLog(redis).includes('Ready to accept connections'), 10_000), readLog(redis)).toBe(true);
  relayA = startRelay('relay-a', NS.a, 1, 2);
  await sleep(300);
  relayB = startRelay('relay-b', NS.b, 2, 1);
  // Both answer once Redis is up (they fail to start without it): A through the VIP, B is checked by its log.
  expect(await until(async () => (await ng({ command: 'ping' }).catch(() => ({}) as BDict))['result']?.toString() === 'pong', 15_000), readLog(relayA)).toBe(true);
  expect(await until(() => readLog(relayB as NsProcess).includes('ngrelay started'), 15_000), readLog(relayB)).toBe(true);
}, 60_000);

afterAll(async () => {
  await stopAll();
  await removeNamespaces();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('active/standby in network namespaces, VIP moved after kill -9', () => {
  it('B binds A\'s call on the VIP at once; after the move media goes on and the proxy\'s answer, query, delete succeed on B', async () => {
    if (!relayA || !relayB) throw new Error('relays not started');
    const toB = portOf(await ng({ command: 'offer', 'call-id': 'vip-call', 'from-tag': 'A', sdp: sdp(PARTY_A) }));
    const toA = portOf(await ng({ command: 'answer', 'call-id': 'vip-call', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(PARTY_B) }));
    // B holds it, bound at once (no "waiting for its ports": nonlocal bind on the VIP works).
    expect(await until(() => /"call-id":"vip-call".*foreign call held/.test(readLog(relayB as NsProcess)), 3000)).toBe(true);
    await sleep(300);
    expect(readLog(relayB)).not.toContain('foreign call waiting for its ports');

    const parties = startInNs('parties', NS.c, process.execPath, ['-e', PARTIES, ADDR.c, ADDR.vip, String(PARTY_A), String(PARTY_B), String(toA), String(toB), '6'], path.join(dir, 'parties.log'));
    expect(await until(() => (partyReports(parties).at(-1)?.a ?? 0) > 20 && (partyReports(parties).at(-1)?.b ?? 0) > 20, 3000)).toBe(true);

    // A dies; the VIP moves to B.
    signal(relayA, 'SIGKILL');
    await relayA.exited;
    const before = partyReports(parties).at(-1) ?? { t: 0, a: 0, b: 0 };
    await run('ip', ['-n', NS.a, 'addr', 'del', `${ADDR.vip}/32`, 'dev', 'eth0']);
    await run('ip', ['-n', NS.b, 'addr', 'add', `${ADDR.vip}/32`, 'dev', 'eth0']);
    await run('ip', ['-n', NS.c, 'neigh', 'flush', 'all']);
    const resumed = await until(() => {
      const last = partyReports(parties).at(-1);
      return !!last && last.a > before.a + 10 && last.b > before.b + 10;
    }, 3000);
    expect(resumed, readLog(relayB)).toBe(true);

    // The proxy's next commands, to the same VIP and ng port, now reach B.
    const reAnswer = await ng({ command: 'answer', 'call-id': 'vip-call', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(PARTY_B) });
    expect(reAnswer['result']?.toString()).toBe('ok');
    expect(portOf(reAnswer)).toBe(toA);
    expect((await ng({ command: 'query', 'call-id': 'vip-call' }))['result']?.toString()).toBe('ok');
    expect(readLog(relayB)).toContain('foreign call taken over');
    const mid = partyReports(parties).at(-1) ?? before;
    expect(await until(() => (partyReports(parties).at(-1)?.a ?? 0) > mid.a + 10, 2000)).toBe(true);
    expect((await ng({ command: 'delete', 'call-id': 'vip-call', 'from-tag': 'A' }))['result']?.toString()).toBe('ok');
    await parties.exited;
  }, 60_000);
});
