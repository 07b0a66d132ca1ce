/**
 * DTLS-SRTP across `kill -9` with `--state-dir`, the real `ngrelay` binary: the WebRTC-side party does its
 * handshake with OpenSSL's `openssl s_client` (the Debian binary, exporting the SRTP keys), then keeps sending
 * SRTP and SRTCP from the same address, protected and opened by libsrtp2, one session each way over the whole
 * run, before and after the restart. After the restart: media both ways within 1 s, every packet opened by
 * libsrtp2 (no auth or replay failure: the relay's contexts continued), no handshake of the restarted relay
 * (no 'DTLS-SRTP handshake done', no DTLS record towards the party), the same a=fingerprint on a re-INVITE.
 * Also: the relay as DTLS client (s_server as the party), `--redis` without a state dir, and a standby
 * (`--subscribe-keyspace`) carrying a DTLS call on after `kill -9` of the active relay.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as dgram from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { toPlain, type BDict, type BInputDict } from '../support/bencode';
import { Party, rtcpPacket, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { buildLibsrtpHelper, type LibsrtpHelper, type LibsrtpOutput } from '../support/libsrtp';
import { freeMediaRange, freeUdpPort } from '../support/free-ports';
import { TestRedis } from '../support/redis-server';
import { makeOpensslPeerIdentity } from '../support/openssl-peer';

const LO = '127.0.0.1';
const SUITE = 'AES_CM_128_HMAC_SHA1_80';
const PROFILE = 'SRTP_AES128_CM_SHA1_80';

let workDir: string;
let stateDir: string;
let certFile: string;
let keyFile: string;
let peerFingerprint: string;
let libsrtp: LibsrtpHelper;
let relay: RelayUnderTest | undefined;
let ng: NgRawClient | undefined;
let ngPort: number;
let media: { portMin: number; portMax: number };
const children: ChildProcess[] = [];
const parties: Party[] = [];
const sockets: dgram.Socket[] = [];

beforeAll(async () => {
  libsrtp = buildLibsrtpHelper();
  workDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-dtls-restore-'));
  stateDir = path.join(workDir, 'state');
  const peer = makeOpensslPeerIdentity(workDir);
  certFile = peer.certFile;
  keyFile = peer.keyFile;
  peerFingerprint = peer.fingerprint256;
  // Below the ephemeral range: between kill -9 and the restart no other process is handed this port.
  ngPort = 21000 + (process.pid % 2000);
  media = await freeMediaRange();
}, 60_000);

afterEach(async () => {
  await relay?.stop();
  relay = undefined;
  rmSync(stateDir, { recursive: true, force: true });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  ng?.close();
  await relay?.stop();
  await Promise.all(parties.map((p) => p.close()));
  for (const s of sockets) s.close();
  libsrtp?.dispose();
  rmSync(workDir, { recursive: true, force: true });
});

/** Where the calls are kept: the state dir, or (set by a test) only Redis. */
let storeArgs = (): string[] => [`--state-dir=${stateDir}`];

async function start(): Promise<NgRawClient> {
  relay = await startNgrelay({ ngPort, ...media, deleteDelay: 0, extraArgs: storeArgs() });
  ng?.close();
  ng = await NgRawClient.open(ngPort);
  return ng;
}

async function crash(): Promise<void> {
  if (!relay) return;
  relay.process.killNow();
  await relay.process.exited;
  relay = undefined;
}

async function request(body: BInputDict): Promise<BDict> {
  if (!ng) throw new Error('no ng client');
  return (await ng.request(body)).dict;
}

function sdpOf(reply: BDict): string {
  if (!reply['sdp']) throw new Error(`offer/answer failed: ${JSON.stringify(toPlain(reply))}`);
  return (reply['sdp'] as Buffer).toString('latin1');
}

function portIn(sdp: string): number {
  const m = /^m=audio (\d+)/m.exec(sdp);
  if (!m) throw new Error(`no m=audio in ${sdp}`);
  return Number(m[1]);
}

/** The WebRTC-side party: DTLS client (a=setup:active) or server (passive), rtcp-mux, no ICE. */
function webrtcSdp(port: number, setup: 'active' | 'passive' = 'active'): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} UDP/TLS/RTP/SAVP 0`,
    'a=rtpmap:0 PCMU/8000', 'a=rtcp-mux', 'a=sendrecv', `a=fingerprint:sha-256 ${peerFingerprint}`, `a=setup:${setup}`, ''].join('\r\n');
}

function plainSdp(port: number): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`,
    'a=rtpmap:0 PCMU/8000', `a=rtcp:${port + 1}`, 'a=sendrecv', ''].join('\r\n');
}

/**
 * The party's handshake on its own address: s_client towards the relay (the party is the DTLS client), or
 * s_server waiting for the relay's ClientHello (`relayPort` null). Returns the exported keys (RFC 5764 §4.2).
 */
function handshake(localPort: number, relayPort: number | null): Promise<{ keys: Buffer; child: ChildProcess }> {
  const role = relayPort === null ? ['s_server', '-accept', `${LO}:${localPort}`, '-naccept', '1'] : ['s_client', '-bind', `${LO}:${localPort}`, '-connect', `${LO}:${relayPort}`];
  const child = spawn('openssl', [role[0] as string, '-dtls1_2', ...role.slice(1),
    '-cert', certFile, '-key', keyFile, '-use_srtp', PROFILE, '-keymatexport', 'EXTRACTOR-dtls_srtp', '-keymatexportlen', '60'], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`openssl gave no keys:\n${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const keys = /Keying material: ([0-9A-Fa-f]+)/.exec(out);
      if (keys && out.includes(`SRTP Extension negotiated, profile=${PROFILE}`)) {
        clearTimeout(timer);
        resolve({ keys: Buffer.from(keys[1]!, 'hex'), child });
      }
    });
    child.on('exit', (code) => reject(new Error(`openssl exited ${String(code)}:\n${out}`)));
  });
}

function packets(out: LibsrtpOutput[]): Buffer[] {
  return out.map((p) => {
    if (typeof p === 'string') throw new Error(`libsrtp2: ${p}`);
    return p;
  });
}

/** When `cond` first holds (polled every 5 ms; gives up after 5 s with Infinity). */
function firstTime(cond: () => boolean): Promise<number> {
  const until = Date.now() + 5000;
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (cond() || Date.now() > until) {
        clearInterval(t);
        resolve(cond() ? Date.now() : Infinity);
      }
    }, 5);
  });
}

const hex = (list: Array<Buffer | string>): string[] => list.map((p) => (typeof p === 'string' ? p : p.toString('hex')));
const isRtcp = (p: Buffer): boolean => p.length > 1 && (p[1] as number) >= 200 && (p[1] as number) <= 206;
const isDtls = (p: Buffer): boolean => p.length > 0 && (p[0] as number) >= 20 && (p[0] as number) <= 63;

describe('DTLS-SRTP restore (--state-dir, kill -9)', () => {
  it('keeps the handshake\'s keys, certificate and SRTP state: media both ways within 1 s, no new handshake', async () => {
    await start();
    const peerPort = await freeUdpPort();
    const b = await Party.open();
    const bRtcp = await Party.open();
    parties.push(b, bRtcp);
    const toB = sdpOf(await request({ command: 'offer', 'call-id': 'dtls', 'from-tag': 'A', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['accept'], sdp: webrtcSdp(peerPort) }));
    const bSends = portIn(toB);
    const bRtcpSends = Number(/^a=rtcp:(\d+)/m.exec(toB)?.[1] ?? bSends + 1);
    const toA = sdpOf(await request({ command: 'answer', 'call-id': 'dtls', 'from-tag': 'A', 'to-tag': 'B', sdp: plainSdp(b.port) }));
    expect(toA).toMatch(/a=setup:passive/);
    expect(toA).toMatch(/a=rtcp-mux/);
    const relayFingerprint = /^a=fingerprint:sha-256 (\S+)/m.exec(toA)?.[1];
    expect(relayFingerprint).toBeDefined();
    const aSends = portIn(toA);

    const { keys, child } = await handshake(peerPort, aSends);
    expect(await waitUntil(() => (relay?.process.stderrText ?? '').includes('DTLS-SRTP handshake done'), 3000)).toBe(true);
    child.kill('SIGKILL'); // no close_notify: the party just goes on with its keys, as a browser does
    await new Promise((r) => child.once('exit', r));
    const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
    const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);

    // The party's media socket is the address of its handshake.
    const peer = dgram.createSocket('udp4');
    sockets.push(peer);
    await new Promise<void>((resolve, reject) => {
      peer.once('error', reject);
      peer.bind(peerPort, LO, () => resolve());
    });
    const toPeer: Array<{ data: Buffer; atMs: number }> = [];
    peer.on('message', (data) => toPeer.push({ data, atMs: Date.now() }));

    // 50 pps each way, 1.1 s before the crash and 1.1 s after; SRTCP from B's side before and after.
    const total = 110;
    const plainAB = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 1000 + i, ssrc: 0x1111aaaa, payloadType: 0, payloadBytes: 60 }));
    const plainBA = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 5000 + i, ssrc: 0x2222bbbb, payloadType: 0, payloadBytes: 60 }));
    const rtcpBA = Array.from({ length: 6 }, (_, i) => {
      const p = rtcpPacket(0x2222bbbb, 'sr');
      p.writeUInt32BE(0x10000 + i, 8);
      return p;
    });
    const srtpAB = packets(libsrtp.run('protect-rtp', SUITE, clientKeySalt, plainAB));
    let sent = 0;
    const pace = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, sent++) {
        await new Promise<void>((r) => peer.send(srtpAB[sent] as Buffer, aSends, LO, () => r()));
        await b.send(plainBA[sent] as Buffer, bSends, LO);
        await sleep(20);
      }
    };
    await pace(55);
    for (const p of rtcpBA.slice(0, 3)) await bRtcp.send(p, bRtcpSends, LO);
    await sleep(700); // the progress tick (500 ms) has the SRTP state
    const beforeB = b.received.length;
    const beforePeer = toPeer.length;
    expect(beforeB).toBeGreaterThan(45);
    expect(beforePeer).toBeGreaterThan(45);

    await crash();
    await start();
    const restartedAt = Date.now();
    const bAt = firstTime(() => b.received.length > beforeB);
    const peerAt = firstTime(() => toPeer.length > beforePeer);
    await pace(total - 55);
    for (const p of rtcpBA.slice(3)) await bRtcp.send(p, bRtcpSends, LO);
    const afterPeer = (): Buffer[] => toPeer.slice(beforePeer).map((r) => r.data);
    expect(await waitUntil(() => b.received.length >= beforeB + 55 && afterPeer().filter(isRtcp).length >= 3 && afterPeer().length >= 58, 3000)).toBe(true);

    // Both ways within 1 s of the restart.
    expect((await bAt) - restartedAt).toBeLessThan(1000);
    expect((await peerAt) - restartedAt).toBeLessThan(1000);
    // A -> B: the restarted relay decrypts with the handshake's keys, every packet to the exact original.
    expect(hex(b.received.slice(beforeB).map((r) => r.data))).toEqual(hex(plainAB.slice(55)));
    // B -> A: one libsrtp2 session over everything the party got, before and after: no auth or replay failure.
    const all = toPeer.map((r) => r.data);
    expect(all.filter(isDtls)).toEqual([]);
    expect(hex(libsrtp.run('unprotect-rtp', SUITE, serverKeySalt, all.filter((p) => !isRtcp(p))))).toEqual(hex(plainBA.slice(0, all.filter((p) => !isRtcp(p)).length)));
    expect(hex(libsrtp.run('unprotect-rtcp', SUITE, serverKeySalt, all.filter(isRtcp)))).toEqual(hex(rtcpBA));

    // No handshake after the restart, and the stream reports its DTLS as connected.
    const log = relay?.process.stderrText ?? '';
    expect(log).not.toContain('DTLS-SRTP handshake');
    expect(log).toMatch(/"call-id":"dtls".*call restored/);
    expect(existsSync(path.join(stateDir, 'dtls-identity.state'))).toBe(true);

    // A re-INVITE: the same certificate (a=fingerprint), still no handshake, media goes on.
    await request({ command: 'offer', 'call-id': 'dtls', 'from-tag': 'A', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['accept'], sdp: webrtcSdp(peerPort) });
    const again = sdpOf(await request({ command: 'answer', 'call-id': 'dtls', 'from-tag': 'A', 'to-tag': 'B', sdp: plainSdp(b.port) }));
    expect(/^a=fingerprint:sha-256 (\S+)/m.exec(again)?.[1]).toBe(relayFingerprint);
    const more = Array.from({ length: 5 }, (_, i) => rtpPacket({ seq: 1000 + total + i, ssrc: 0x1111aaaa, payloadType: 0, payloadBytes: 60 }));
    const moreSrtp = packets(libsrtp.run('protect-rtp', SUITE, clientKeySalt, [...plainAB, ...more])).slice(total);
    const bHad = b.received.length;
    for (const p of moreSrtp) await new Promise<void>((r) => peer.send(p, aSends, LO, () => r()));
    expect(await waitUntil(() => b.received.length >= bHad + 5, 2000)).toBe(true);
    expect(hex(b.received.slice(bHad).map((r) => r.data))).toEqual(hex(more));
    expect(relay?.process.stderrText ?? '').not.toContain('DTLS-SRTP handshake');
  }, 90_000);

  it('the relay as DTLS client: after the restart it sends no ClientHello, and media goes on both ways', async () => {
    await start();
    const peerPort = await freeUdpPort();
    const b = await Party.open();
    parties.push(b);
    // The party's DTLS server listens before the answer: the relay's ClientHello goes out once it is known.
    const server = handshake(peerPort, null);
    await sleep(300);
    const toB = sdpOf(await request({ command: 'offer', 'call-id': 'dtls-active', 'from-tag': 'A', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['accept'], sdp: webrtcSdp(peerPort, 'passive') }));
    const toA = sdpOf(await request({ command: 'answer', 'call-id': 'dtls-active', 'from-tag': 'A', 'to-tag': 'B', sdp: plainSdp(b.port) }));
    expect(toA).toMatch(/a=setup:active/);
    const aSends = portIn(toA);
    const bSends = portIn(toB);
    const { keys, child } = await server;
    expect(await waitUntil(() => (relay?.process.stderrText ?? '').includes('DTLS-SRTP handshake done'), 3000)).toBe(true);
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    // The relay is the client now: it writes with the client keys.
    const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
    const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);
    const peer = dgram.createSocket('udp4');
    sockets.push(peer);
    await new Promise<void>((resolve, reject) => {
      peer.once('error', reject);
      peer.bind(peerPort, LO, () => resolve());
    });
    const toPeer: Buffer[] = [];
    peer.on('message', (data) => toPeer.push(data));
    const total = 60;
    const plainAB = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 300 + i, ssrc: 0x3333cccc, payloadType: 0, payloadBytes: 60 }));
    const plainBA = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 700 + i, ssrc: 0x4444dddd, payloadType: 0, payloadBytes: 60 }));
    const srtpAB = packets(libsrtp.run('protect-rtp', SUITE, serverKeySalt, plainAB));
    let sent = 0;
    const pace = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, sent++) {
        await new Promise<void>((r) => peer.send(srtpAB[sent] as Buffer, aSends, LO, () => r()));
        await b.send(plainBA[sent] as Buffer, bSends, LO);
        await sleep(20);
      }
    };
    await pace(30);
    await sleep(700);
    const beforeB = b.received.length;
    const beforePeer = toPeer.length;
    expect(beforeB).toBeGreaterThan(25);
    await crash();
    await start();
    await pace(total - 30);
    // An active restored stream would send its ClientHello within the 20 ms DTLS timer: give it far longer.
    await sleep(500);
    expect(await waitUntil(() => b.received.length >= beforeB + 30 && toPeer.length >= beforePeer + 30, 2000)).toBe(true);
    expect(toPeer.filter(isDtls)).toEqual([]);
    expect(relay?.process.stderrText ?? '').not.toContain('DTLS-SRTP handshake');
    expect(hex(b.received.slice(beforeB).map((r) => r.data))).toEqual(hex(plainAB.slice(30)));
    expect(hex(libsrtp.run('unprotect-rtp', SUITE, clientKeySalt, toPeer))).toEqual(hex(plainBA.slice(0, toPeer.length)));
  }, 90_000);

  it('with --redis only: the keys come back from the call\'s Redis key, media goes on both ways, no new handshake', async () => {
    const redis = await TestRedis.start();
    storeArgs = () => [`--redis=${redis.url(5)}`];
    try {
      await start();
      const peerPort = await freeUdpPort();
      const b = await Party.open();
      parties.push(b);
      const toB = sdpOf(await request({ command: 'offer', 'call-id': 'dtls-redis', 'from-tag': 'A', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['accept'], sdp: webrtcSdp(peerPort) }));
      const toA = sdpOf(await request({ command: 'answer', 'call-id': 'dtls-redis', 'from-tag': 'A', 'to-tag': 'B', sdp: plainSdp(b.port) }));
      const aSends = portIn(toA);
      const bSends = portIn(toB);
      const { keys, child } = await handshake(peerPort, aSends);
      expect(await waitUntil(() => (relay?.process.stderrText ?? '').includes('DTLS-SRTP handshake done'), 3000)).toBe(true);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
      const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);
      const peer = dgram.createSocket('udp4');
      sockets.push(peer);
      await new Promise<void>((resolve, reject) => {
        peer.once('error', reject);
        peer.bind(peerPort, LO, () => resolve());
      });
      const toPeer: Buffer[] = [];
      peer.on('message', (data) => toPeer.push(data));
      const total = 40;
      const plainAB = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 40 + i, ssrc: 0x5555eeee, payloadType: 0, payloadBytes: 60 }));
      const plainBA = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 90 + i, ssrc: 0x6666ffff, payloadType: 0, payloadBytes: 60 }));
      const srtpAB = packets(libsrtp.run('protect-rtp', SUITE, clientKeySalt, plainAB));
      let sent = 0;
      const pace = async (count: number): Promise<void> => {
        for (let i = 0; i < count; i++, sent++) {
          await new Promise<void>((r) => peer.send(srtpAB[sent] as Buffer, aSends, LO, () => r()));
          await b.send(plainBA[sent] as Buffer, bSends, LO);
          await sleep(20);
        }
      };
      await pace(20);
      await sleep(700);
      const beforeB = b.received.length;
      await crash();
      await start();
      await pace(total - 20);
      expect(await waitUntil(() => b.received.length >= beforeB + 20 && toPeer.length >= 38, 2000)).toBe(true);
      const log = relay?.process.stderrText ?? '';
      expect(log).toMatch(/"call-id":"dtls-redis".*"from":"redis".*call restored/);
      expect(log).not.toContain('DTLS-SRTP handshake');
      expect(toPeer.filter(isDtls)).toEqual([]);
      expect(hex(b.received.slice(beforeB).map((r) => r.data))).toEqual(hex(plainAB.slice(20)));
      expect(hex(libsrtp.run('unprotect-rtp', SUITE, serverKeySalt, toPeer))).toEqual(hex(plainBA.slice(0, toPeer.length)));
    } finally {
      await relay?.stop();
      relay = undefined;
      storeArgs = () => [`--state-dir=${stateDir}`];
      await redis.stop();
    }
  }, 90_000);

  it('active/standby: B holds A\'s DTLS call as foreign; after kill -9 of A it relays on with the handshake\'s keys, no new handshake', async () => {
    const redis = await TestRedis.start();
    const relayB = await startNgrelay({ ngPort: ngPort + 1, ...media, deleteDelay: 0, extraArgs: [`--redis=${redis.url(7)}`, '--subscribe-keyspace=6'] });
    storeArgs = () => [`--redis=${redis.url(6)}`, '--subscribe-keyspace=7'];
    try {
      await start();
      const peerPort = await freeUdpPort();
      const b = await Party.open();
      parties.push(b);
      const toB = sdpOf(await request({ command: 'offer', 'call-id': 'dtls-standby', 'from-tag': 'A', 'transport-protocol': 'RTP/AVP', 'rtcp-mux': ['accept'], sdp: webrtcSdp(peerPort) }));
      const toA = sdpOf(await request({ command: 'answer', 'call-id': 'dtls-standby', 'from-tag': 'A', 'to-tag': 'B', sdp: plainSdp(b.port) }));
      const aSends = portIn(toA);
      const bSends = portIn(toB);
      const { keys, child } = await handshake(peerPort, aSends);
      expect(await waitUntil(() => (relay?.process.stderrText ?? '').includes('DTLS-SRTP handshake done'), 3000)).toBe(true);
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
      const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);
      const peer = dgram.createSocket('udp4');
      sockets.push(peer);
      await new Promise<void>((resolve, reject) => {
        peer.once('error', reject);
        peer.bind(peerPort, LO, () => resolve());
      });
      const toPeer: Buffer[] = [];
      peer.on('message', (data) => toPeer.push(data));
      const total = 50;
      const plainAB = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 10 + i, ssrc: 0x7777aaaa, payloadType: 0, payloadBytes: 60 }));
      const plainBA = Array.from({ length: total }, (_, i) => rtpPacket({ seq: 20 + i, ssrc: 0x8888bbbb, payloadType: 0, payloadBytes: 60 }));
      const srtpAB = packets(libsrtp.run('protect-rtp', SUITE, clientKeySalt, plainAB));
      let sent = 0;
      const pace = async (count: number): Promise<void> => {
        for (let i = 0; i < count; i++, sent++) {
          await new Promise<void>((r) => peer.send(srtpAB[sent] as Buffer, aSends, LO, () => r()));
          await b.send(plainBA[sent] as Buffer, bSends, LO);
          await sleep(20);
        }
      };
      await pace(20);
      await sleep(800); // A's progress (with the handshake's keys) is in its key, B holds the call
      const beforeB = b.received.length;
      await crash();
      await sleep(400); // B binds the freed ports within its retry interval
      await pace(total - 20);
      expect(await waitUntil(() => b.received.length >= beforeB + 30 && toPeer.length >= 48, 3000)).toBe(true);
      expect(relayB.process.stderrText).toMatch(/"call-id":"dtls-standby".*foreign call bound/);
      expect(relayB.process.stderrText).not.toContain('DTLS-SRTP handshake');
      expect(toPeer.filter(isDtls)).toEqual([]);
      expect(hex(b.received.slice(beforeB).map((r) => r.data))).toEqual(hex(plainAB.slice(20)));
      expect(hex(libsrtp.run('unprotect-rtp', SUITE, serverKeySalt, toPeer))).toEqual(hex(plainBA.slice(0, toPeer.length)));
    } finally {
      await relay?.stop();
      relay = undefined;
      await relayB.stop();
      storeArgs = () => [`--state-dir=${stateDir}`];
      await redis.stop();
    }
  }, 90_000);
});
