/**
 * DTLS benchmark (issue 12 "How it is tested"), ngrelay beside rtpengine 10.5, each started with one I/O thread
 * (`--num-threads=1`), one after the other:
 *
 *  1. Handshakes: N browser-like legs set up at once. Each leg is a WebRTC gateway call as Kamailio drives it
 *     (the browser offers UDP/TLS/RTP/SAVPF with ICE, rtcp-mux and a=setup:actpass; the relay answers it with
 *     ICE=force, DTLS=passive; the SIP side is plain RTP). The "browsers" are a second native engine in this
 *     process: per leg a full, controlling ICE agent that nominates the relay's candidate and then runs the
 *     DTLS client handshake against the relay's a=fingerprint. Reported: time from the moment all N legs
 *     start until all N are connected (ICE nominated, DTLS done), handshakes per second, failures.
 *  2. Forwarding during the burst: K plain RTP calls on the same relay (the same single I/O thread) carry
 *     50 packets/s each; their one-way latency through the relay (p50, p99, max) before the burst and while
 *     the N handshakes run.
 *  3. Cost after the handshake: the relay's CPU per packet for DTLS-SRTP → RTP (the legs of 1, the browser
 *     engine encrypting with its DTLS keys) beside SDES-SRTP → RTP (legs whose browser side is an SDES phone,
 *     RTP/SAVP, AES_CM_128_HMAC_SHA1_80 both). The same packets, rate and suite: the two rows should match.
 *
 * Bounded: every load is a fixed number of packets at a fixed rate that stops by itself; loopback only.
 *
 *   npm run bench:dtls                         # 100 legs, 20 plain calls, 5 s of SRTP per row
 *   npm run bench:dtls -- --quick              # smoke run: 10 legs, 4 plain calls, 1 s
 *   npm run bench:dtls -- --legs=200 --relays=ngrelay
 */
import { randomBytes } from 'node:crypto';
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { DataPlane, EngineEvent, StreamIce } from '../src/dataplane/types';
import { NgRawClient, textOf } from '../test/support/ng-client';
import { startNgProcess, type ManagedProcess } from '../test/support/process';
import { LOOPBACK, relayArgs, type RelayOptions } from '../test/support/relay';
import { RTPENGINE_BIN, ensureRtpengineInstalled } from '../test/support/rtpengine';

type RelayName = 'ngrelay' | 'rtpengine';

interface Args {
  legs: number;
  plainCalls: number;
  srtpSeconds: number;
  srtpLegs: number;
  /** Packets per second per SRTP leg in part 3. */
  srtpRate: number;
  relays: RelayName[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { legs: 100, plainCalls: 20, srtpSeconds: 5, srtpLegs: 20, srtpRate: 500, relays: ['ngrelay', 'rtpengine'] };
  for (const a of argv) {
    const [key, value] = a.split('=', 2) as [string, string | undefined];
    const n = Number(value);
    if (key === '--quick') Object.assign(args, { legs: 10, plainCalls: 4, srtpSeconds: 1, srtpLegs: 4 });
    else if (key === '--legs' && n >= 1 && n <= 1000) args.legs = n;
    else if (key === '--plain-calls' && n >= 0 && n <= 200) args.plainCalls = n;
    else if (key === '--srtp-seconds' && n >= 1 && n <= 10) args.srtpSeconds = n;
    else if (key === '--relays' && value) args.relays = value.split(',').filter((r): r is RelayName => r === 'ngrelay' || r === 'rtpengine');
    else throw new Error(`unknown or out-of-range option ${a} (--quick, --legs=1..1000, --plain-calls=0..200, --srtp-seconds=1..10, --relays=ngrelay,rtpengine)`);
  }
  return args;
}

/** bench/out/bench/*.js when compiled: the repo root is found by package.json. */
function repoRoot(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    try {
      if ((JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string }).name === 'ngrelay') return dir;
    } catch {
      // not here: go up
    }
    dir = path.dirname(dir);
  }
  throw new Error(`repository root not found above ${__dirname}`);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The native engine from dist/ (its addon path is relative to dist/dataplane/). */
function browserEngine(root: string): DataPlane {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const native = require(path.join(root, 'dist', 'dataplane', 'native')) as { createNativeDataPlane(o: { threads: number; receiveBufferBytes: number }): DataPlane };
  return native.createNativeDataPlane({ threads: 1, receiveBufferBytes: 0 });
}

interface Relay {
  name: RelayName;
  proc: ManagedProcess;
  client: NgRawClient;
}

async function startRelay(name: RelayName, options: RelayOptions, root: string): Promise<Relay> {
  const args = [...relayArgs(options), '--num-threads=1', '--log-level=4'];
  const spec = name === 'ngrelay' ? { name, command: process.execPath, args: [path.join(root, 'bin', 'ngrelay'), ...args], cwd: root } : { name, command: RTPENGINE_BIN, args };
  if (name === 'rtpengine') await ensureRtpengineInstalled();
  const proc = await startNgProcess(spec, { host: LOOPBACK, port: options.ngPort, deadlineMs: 15_000 });
  return { name, proc, client: await NgRawClient.open(options.ngPort, LOOPBACK, 4 << 20) };
}

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

// ------------------------------------------------------------------------------------------- signalling

const TO_SIP = { ICE: 'remove', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['demux'], DTLS: 'off', SDES: ['off'], 'DTLS-reverse': 'passive' };
const TO_BROWSER = { ICE: 'force', 'transport-protocol': 'UDP/TLS/RTP/SAVPF', 'rtcp-mux': ['offer', 'require'], DTLS: 'passive', SDES: ['off'] };

function sdp(lines: string[]): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', ...lines, ''].join('\r\n');
}

function phoneSdp(port: number, proto = 'RTP/AVP', extra: string[] = []): string {
  return sdp([`m=audio ${port} ${proto} 0`, 'c=IN IP4 127.0.0.1', 'a=rtpmap:0 PCMU/8000', 'a=sendrecv', ...extra]);
}

interface BrowserLeg {
  id: number;
  port: number;
  ufrag: string;
  pwd: string;
}

function browserSdp(leg: BrowserLeg, fingerprintHex: string): string {
  return sdp([
    `m=audio ${leg.port} UDP/TLS/RTP/SAVPF 0`,
    'c=IN IP4 127.0.0.1',
    'a=rtpmap:0 PCMU/8000',
    'a=sendrecv',
    'a=rtcp-mux',
    `a=ice-ufrag:${leg.ufrag}`,
    `a=ice-pwd:${leg.pwd}`,
    `a=candidate:1 1 udp 2130706431 127.0.0.1 ${leg.port} typ host`,
    `a=fingerprint:sha-256 ${fingerprintHex.toUpperCase().match(/../g)!.join(':')}`,
    'a=setup:actpass',
  ]);
}

function attr(text: string, re: RegExp, what: string): RegExpExecArray {
  const m = re.exec(text);
  if (!m) throw new Error(`the relay's SDP has no ${what}:\n${text}`);
  return m;
}

/** What the browser needs from the relay's answer: its ICE credentials, candidate and fingerprint. */
function relaySide(answer: string): { ufrag: string; pwd: string; port: number; fingerprint: Buffer } {
  return {
    ufrag: attr(answer, /^a=ice-ufrag:(\S+)/m, 'a=ice-ufrag')[1]!,
    pwd: attr(answer, /^a=ice-pwd:(\S+)/m, 'a=ice-pwd')[1]!,
    port: Number(attr(answer, /^a=candidate:\S+ 1 \S+ \d+ 127\.0\.0\.1 (\d+) typ/m, 'IPv4 candidate')[1]),
    fingerprint: Buffer.from(attr(answer, /^a=fingerprint:sha-256 (\S+)/m, 'a=fingerprint')[1]!.replace(/:/g, ''), 'hex'),
  };
}

async function request(client: NgRawClient, body: Record<string, unknown>): Promise<string> {
  const reply = await client.request(body as Parameters<NgRawClient['request']>[0], { retransmitMs: 1000, deadlineMs: 5000 });
  const text = textOf(reply.dict, 'sdp');
  if (text === undefined) throw new Error(`${String(body.command)} failed: ${JSON.stringify(reply.plain)}`);
  return text;
}

// --------------------------------------------------------------------------------------- latency probe

/** K plain calls A → relay → B; every packet carries its send time; latencies are collected per window. */
class LatencyProbe {
  private readonly a: dgram.Socket[] = [];
  private readonly b: dgram.Socket[] = [];
  private readonly targets: number[] = [];
  private timer: NodeJS.Timeout | null = null;
  private seq = 0;
  window: number[] = [];

  async setUp(client: NgRawClient, calls: number, tag: string): Promise<void> {
    for (let i = 0; i < calls; i++) {
      const a = await bound();
      const b = await bound();
      b.on('message', (msg) => {
        if (msg.length >= 20) this.window.push(Number(process.hrtime.bigint() - msg.readBigUInt64BE(12)) / 1e6);
      });
      const callId = `dtls-bench-plain-${tag}-${i}`;
      const offer = await request(client, { command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: phoneSdp(port(a)) });
      const answer = await request(client, { command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: phoneSdp(port(b)) });
      void offer;
      this.a.push(a);
      this.b.push(b);
      this.targets.push(Number(attr(answer, /^m=audio (\d+) /m, 'm=')[1]));
    }
  }

  /** 50 packets/s per call until stop(). */
  start(): void {
    this.timer = setInterval(() => {
      const seq = this.seq++ & 0xffff;
      this.a.forEach((s, i) => {
        const p = Buffer.alloc(12 + 8 + 160);
        p[0] = 0x80;
        p.writeUInt16BE(seq, 2);
        p.writeUInt32BE(seq * 160, 4);
        p.writeUInt32BE(0x1000 + i, 8);
        p.writeBigUInt64BE(process.hrtime.bigint(), 12);
        s.send(p, this.targets[i]!, LOOPBACK);
      });
    }, 20);
  }

  take(): number[] {
    const w = this.window;
    this.window = [];
    return w;
  }

  /** Stops the load and closes the sockets; once (later calls do nothing). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const s of [...this.a, ...this.b]) s.close();
    this.a.length = 0;
    this.b.length = 0;
  }
}

function bound(): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, LOOPBACK, () => resolve(s));
  });
}

function port(s: dgram.Socket): number {
  return s.address().port;
}

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function latencyText(v: number[]): string {
  return v.length === 0 ? 'no packets' : `p50 ${percentile(v, 50).toFixed(3)} ms, p99 ${percentile(v, 99).toFixed(3)} ms, max ${Math.max(...v).toFixed(3)} ms (${v.length} packets)`;
}

// ------------------------------------------------------------------------------------------- one relay

interface RelayResult {
  relay: RelayName;
  legs: number;
  connected: number;
  burstMs: number;
  before: number[];
  during: number[];
  dtls: SrtpCost;
  sdes: SrtpCost;
}

/** Relay CPU per packet the phone got (NaN: none got through), and how many were sent and got through. */
interface SrtpCost {
  usPerPacket: number;
  sent: number;
  received: number;
}

let nextStreamId = 1;
let nextBrowserPort = 40000 + Math.floor(Math.random() * 50) * 100;

async function runRelay(name: RelayName, args: Args, root: string): Promise<RelayResult> {
  const base = 52000 + (name === 'ngrelay' ? 0 : 3000);
  const options: RelayOptions = { ngPort: 22500 + (name === 'ngrelay' ? 1 : 2), portMin: base, portMax: base + 2999, deleteDelay: 0 };
  const relay = await startRelay(name, options, root);
  const browsers = browserEngine(root);
  const events: EngineEvent[] = [];
  browsers.onEvents((batch) => events.push(...batch));
  const probe = new LatencyProbe();
  const phone = await bound();
  let phonePackets = 0;
  phone.on('message', () => phonePackets++);
  const ownFingerprint = browsers.dtlsFingerprint!('sha-256').value.toString('hex');
  try {
    await probe.setUp(relay.client, args.plainCalls, name);

    // Signalling for every leg first; then all legs start at once.
    const legs: Array<{ leg: BrowserLeg; ice: StreamIce; fingerprint: Buffer }> = [];
    for (let i = 0; i < args.legs; i++) {
      const leg: BrowserLeg = { id: nextStreamId++, port: nextBrowserPort++, ufrag: randomBytes(4).toString('hex'), pwd: randomBytes(12).toString('hex') };
      const callId = `dtls-bench-${name}-${leg.id}`;
      await request(relay.client, { command: 'offer', 'call-id': callId, 'from-tag': 'browser', sdp: browserSdp(leg, ownFingerprint), ...TO_SIP });
      const answer = await request(relay.client, { command: 'answer', 'call-id': callId, 'from-tag': 'browser', 'to-tag': 'phone', sdp: phoneSdp(port(phone)), ...TO_BROWSER });
      const r = relaySide(answer);
      const ice: StreamIce = {
        localUfrag: leg.ufrag,
        localPwd: leg.pwd,
        remoteUfrag: r.ufrag,
        remotePwd: r.pwd,
        controlling: true,
        lite: false,
        tieBreaker: randomBytes(8).toString('hex'),
        remoteCandidates: [{ foundation: '1', component: 1, priority: 2130706431, type: 'host', endpoint: { family: 'IPv4', address: LOOPBACK, port: r.port } }],
      };
      legs.push({ leg, ice, fingerprint: r.fingerprint });
    }

    probe.start();
    await sleep(1000);
    const before = probe.take();
    const t0 = process.hrtime.bigint();
    for (const { leg, ice, fingerprint } of legs) {
      browsers.addStream(
        { id: leg.id, component: 'rtp', localAddress: LOOPBACK, localPort: leg.port },
        {
          expected: null,
          learning: 'heuristic',
          strictSource: false,
          mediaHandover: false,
          asymmetric: false,
          sink: null,
          signalGeneration: 1,
          ice,
          dtls: { role: 'active', remoteFingerprint: { hash: 'sha-256', value: fingerprint }, generation: 1 },
          crypto: { inbound: { dtlsOf: leg.id }, outbound: null, recrypt: false },
        },
      );
    }
    const ids = new Set(legs.map((l) => l.leg.id));
    const done = (): number => events.filter((e) => e.type === 'dtls' && ids.has(e.id)).length;
    const deadline = Date.now() + 30_000;
    while (done() < legs.length && Date.now() < deadline) await sleep(2);
    const burstMs = Number(process.hrtime.bigint() - t0) / 1e6;
    const during = probe.take();
    const connected = events.filter((e) => e.type === 'dtls' && ids.has(e.id) && e.ok).length;
    probe.close();

    // 3. relay CPU per packet, DTLS-SRTP -> RTP and SDES-SRTP -> RTP (the browser engine encrypts both).
    const dtlsLegs = legs.filter((l) => events.some((e) => e.type === 'dtls' && e.id === l.leg.id && e.ok)).slice(0, args.srtpLegs);
    const dtls = await srtpCost(browsers, relay, args, dtlsLegs.map((l) => ({ id: l.leg.id, crypto: { dtlsOf: l.leg.id } })), () => phonePackets);
    const sdesLegs = await sdesSetup(browsers, relay, args, phone, name);
    const sdes = await srtpCost(browsers, relay, args, sdesLegs, () => phonePackets);
    return { relay: name, legs: legs.length, connected, burstMs, before, during, dtls, sdes };
  } finally {
    probe.close();
    phone.close();
    browsers.close();
    relay.client.close();
    await relay.proc.stop();
  }
}

const SDES_KEY = randomBytes(30);

/** SRTP legs whose browser side is an SDES phone (RTP/SAVP, AES_CM_128_HMAC_SHA1_80) towards the plain phone. */
async function sdesSetup(browsers: DataPlane, relay: Relay, args: Args, phone: dgram.Socket, name: string): Promise<Array<{ id: number; crypto: { suite: 'AES_CM_128_HMAC_SHA1_80'; key: Buffer; salt: Buffer; unencryptedSrtp: boolean; unencryptedSrtcp: boolean; unauthenticatedSrtp: boolean } }>> {
  const out = [];
  for (let i = 0; i < args.srtpLegs; i++) {
    const id = nextStreamId++;
    const legPort = nextBrowserPort++;
    const callId = `dtls-bench-sdes-${name}-${id}`;
    const crypto = `a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:${SDES_KEY.toString('base64')}`;
    const offer = await request(relay.client, { command: 'offer', 'call-id': callId, 'from-tag': 'sdes', sdp: phoneSdp(legPort, 'RTP/SAVP', [crypto]), 'transport-protocol': 'RTP/AVP' });
    void offer;
    const answer = await request(relay.client, { command: 'answer', 'call-id': callId, 'from-tag': 'sdes', 'to-tag': 'phone', sdp: phoneSdp(port(phone)) });
    const relayPort = Number(attr(answer, /^m=audio (\d+) /m, 'm=')[1]);
    browsers.addStream(
      { id, component: 'rtp', localAddress: LOOPBACK, localPort: legPort },
      { expected: { family: 'IPv4', address: LOOPBACK, port: relayPort }, learning: 'off', strictSource: false, mediaHandover: false, asymmetric: true, sink: null, signalGeneration: 1 },
    );
    out.push({ id, crypto: { suite: 'AES_CM_128_HMAC_SHA1_80' as const, key: SDES_KEY.subarray(0, 16), salt: SDES_KEY.subarray(16, 30), unencryptedSrtp: false, unencryptedSrtcp: false, unauthenticatedSrtp: false } });
  }
  return out;
}

/**
 * Plain RTP from this process into a browser-engine stream per leg, which encrypts it towards the relay (with the
 * leg's DTLS keys or its SDES key); the relay decrypts and forwards plain RTP to the phone. Fixed packets
 * per leg at args.srtpRate; the relay's CPU seconds over the run divided by the packets the phone got.
 */
async function srtpCost(
  browsers: DataPlane,
  relay: Relay,
  args: Args,
  legs: Array<{ id: number; crypto: { dtlsOf: number } | { suite: 'AES_CM_128_HMAC_SHA1_80'; key: Buffer; salt: Buffer; unencryptedSrtp: boolean; unencryptedSrtcp: boolean; unauthenticatedSrtp: boolean } }>,
  phonePackets: () => number,
): Promise<SrtpCost> {
  if (legs.length === 0) return { usPerPacket: NaN, sent: 0, received: 0 };
  const feeders: Array<{ socket: dgram.Socket; port: number }> = [];
  for (const leg of legs) {
    const id = nextStreamId++;
    const feedPort = nextBrowserPort++;
    // Stream `id` takes the plain feed and forwards it through the leg's stream (its socket, its keys).
    browsers.addStream(
      { id, component: 'rtp', localAddress: LOOPBACK, localPort: feedPort },
      { expected: null, learning: 'off', strictSource: false, mediaHandover: false, asymmetric: true, sink: leg.id, signalGeneration: 1, crypto: { inbound: null, outbound: leg.crypto, recrypt: false } },
    );
    feeders.push({ socket: await bound(), port: feedPort });
  }
  const perTick = Math.max(1, Math.round(args.srtpRate / 100));
  const ticks = args.srtpSeconds * 100;
  const startPhone = phonePackets();
  const cpu0 = cpuSeconds(relay.proc.pid);
  let seq = 0;
  for (let t = 0; t < ticks; t++) {
    for (let k = 0; k < perTick; k++) {
      seq++;
      feeders.forEach((f, i) => {
        const p = Buffer.alloc(12 + 160);
        p[0] = 0x80;
        p.writeUInt16BE(seq & 0xffff, 2);
        p.writeUInt32BE(seq * 160, 4);
        p.writeUInt32BE(0x2000 + i, 8);
        f.socket.send(p, f.port, LOOPBACK);
      });
    }
    await sleep(10);
  }
  await sleep(300);
  const cpu = cpuSeconds(relay.proc.pid) - cpu0;
  const got = phonePackets() - startPhone;
  for (const f of feeders) f.socket.close();
  return { usPerPacket: got > 0 ? (cpu * 1e6) / got : NaN, sent: seq * feeders.length, received: got };
}

// ------------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const root = repoRoot();
  const results: RelayResult[] = [];
  for (const name of args.relays) {
    process.stderr.write(`${name}: ${args.legs} DTLS legs, ${args.plainCalls} plain calls...\n`);
    results.push(await runRelay(name, args, root));
  }
  console.log(`DTLS handshakes on one I/O thread (${args.legs} browser-like legs at once: ICE nominated, then DTLS-SRTP)`);
  console.log('| relay | connected | time to all connected | handshakes/s | plain RTP latency before | during the burst |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    console.log(`| ${r.relay} | ${r.connected}/${r.legs} | ${r.burstMs.toFixed(0)} ms | ${(r.connected / (r.burstMs / 1000)).toFixed(0)} | ${latencyText(r.before)} | ${latencyText(r.during)} |`);
  }
  console.log(`\nRelay CPU per forwarded packet after the handshake (${args.srtpLegs} legs × ${args.srtpRate} pps × ${args.srtpSeconds} s, AES_CM_128_HMAC_SHA1_80)`);
  console.log('| relay | DTLS-SRTP → RTP | SDES-SRTP → RTP |');
  console.log('|---|---|---|');
  const cost = (c: SrtpCost): string => `${c.usPerPacket.toFixed(2)} µs (${c.received}/${c.sent} packets)`;
  for (const r of results) console.log(`| ${r.relay} | ${cost(r.dtls)} | ${cost(r.sdes)} |`);
  console.log('CPU from /proc/PID/stat (10 ms ticks): use the full run (or --srtp-seconds=10) for figures; --quick only checks the path.');
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
