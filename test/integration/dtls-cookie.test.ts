/**
 * DTLS without ICE (a DTLS-SRTP SIP phone): nothing but the handshake itself says where the party is, so a
 * passive stream first makes the sender of a ClientHello prove it receives at its source address (RFC 6347
 * §4.2.1 cookie exchange: HelloVerifyRequest, then the ClientHello again with the cookie). A ClientHello from
 * a source that never answers (spoofed) gets a HelloVerifyRequest and nothing else: it neither starts nor
 * spoils the party's handshake, and the media keeps going to the party. The peer is OpenSSL's own
 * `openssl s_client` (Debian binary), media keys from its -keymatexport, SRTP by libsrtp2.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, EngineEvent, StreamCounters } from '../../src/dataplane/types';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { buildLibsrtpHelper, type LibsrtpHelper } from '../support/libsrtp';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { makeOpensslPeerIdentity } from '../support/openssl-peer';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(46000, 46999);
/** DTLS record content type handshake (22); handshake types at byte 13 (after the 13-byte record header). */
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SERVER_HELLO = 2;
const HELLO_VERIFY_REQUEST = 3;

let engine: DataPlane;
let libsrtp: LibsrtpHelper;
let workDir: string;
let certFile: string;
let keyFile: string;
let peerFingerprint: Buffer;
const events: EngineEvent[] = [];
const children: ChildProcess[] = [];
const parties: Party[] = [];

beforeAll(() => {
  engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 0 });
  engine.onEvents((batch) => events.push(...batch));
  libsrtp = buildLibsrtpHelper();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-h2-dtls-cookie-'));
  const peer = makeOpensslPeerIdentity(workDir);
  certFile = peer.certFile;
  keyFile = peer.keyFile;
  peerFingerprint = Buffer.from(peer.fingerprint256.replace(/:/g, ''), 'hex');
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill();
  engine.close();
  libsrtp.dispose();
  await Promise.all(parties.map((p) => p.close()));
  fs.rmSync(workDir, { recursive: true, force: true });
});

function counters(id: number): StreamCounters {
  const c = engine.readCounters([id]).get(id);
  if (!c) throw new Error(`no counters for ${id}`);
  return c;
}

function sClientArgs(port: number): string[] {
  return ['s_client', '-dtls1_2', '-connect', `${LO}:${port}`, '-cert', certFile, '-key', keyFile, '-msg',
    '-use_srtp', 'SRTP_AES128_CM_SHA1_80', '-keymatexport', 'EXTRACTOR-dtls_srtp', '-keymatexportlen', '60'];
}

/** Runs s_client (with -msg: it prints every handshake message) until it printed the exported keys. */
function sClient(port: number): Promise<{ keys: Buffer; transcript: string; child: ChildProcess }> {
  const child = spawn('openssl', sClientArgs(port), { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s_client gave no keys:\n${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const keys = /Keying material: ([0-9A-Fa-f]+)/.exec(out);
      if (keys) {
        clearTimeout(timer);
        resolve({ keys: Buffer.from(keys[1]!, 'hex'), transcript: out, child });
      }
    });
    child.on('exit', (code) => reject(new Error(`s_client exited ${String(code)}:\n${out}`)));
  });
}

/** A real ClientHello (no cookie): what s_client sends first, caught on a socket that never answers. */
async function capturedClientHello(): Promise<Buffer> {
  const trap = await Party.open(LO);
  parties.push(trap);
  const child = spawn('openssl', sClientArgs(trap.port), { stdio: ['pipe', 'ignore', 'ignore'] });
  children.push(child);
  try {
    if (!(await waitUntil(() => trap.received.length > 0, 5000))) throw new Error('s_client sent no ClientHello');
  } finally {
    child.kill();
  }
  const hello = trap.received[0]!.data;
  expect([hello[0], hello[13]]).toEqual([HANDSHAKE, CLIENT_HELLO]);
  return hello;
}

/** The handshake message types s_client -msg printed as received ("<<< ... content_type=22 ..." then hex). */
function receivedHandshakeTypes(transcript: string): number[] {
  return [...transcript.matchAll(/^<<< [^\n]*content_type=22\) \[length [0-9a-f]+\]\n\s+([0-9a-f]{2}) /gm)].map((m) => parseInt(m[1]!, 16));
}

function handshakeTypes(received: Array<{ data: Buffer }>): number[] {
  return received.map((r) => (r.data[0] === HANDSHAKE ? (r.data[13] ?? -1) : -1));
}

/** A passive DTLS stream (id) for the party, forwarding to a plain stream (id + 1) for `b`. */
async function passivePair(id: number, b: Party): Promise<number> {
  const port = await relayPorts.take(2, LO);
  engine.addStream({ id, component: 'rtp', localAddress: LO, localPort: port },
    rule({ expected: null, sink: id + 1, dtls: { role: 'passive', remoteFingerprint: { hash: 'sha-256', value: peerFingerprint }, generation: 1 }, crypto: { inbound: { dtlsOf: id }, outbound: null, recrypt: false } }));
  engine.addStream({ id: id + 1, component: 'rtp', localAddress: LO, localPort: port + 1 },
    rule({ expected: ep(b), sink: id, crypto: { inbound: null, outbound: { dtlsOf: id }, recrypt: false } }));
  return port;
}

describe('native engine: DTLS cookie exchange on a passive stream without ICE', () => {
  it('a ClientHello without a cookie gets a HelloVerifyRequest; s_client returns the cookie and the handshake completes', async () => {
    const b = await Party.open(LO);
    parties.push(b);
    const port = await passivePair(1, b);
    const { transcript, child } = await sClient(port);
    // -msg prints each received handshake message in hex: the first one is a HelloVerifyRequest (type 3).
    expect(receivedHandshakeTypes(transcript)[0]).toBe(HELLO_VERIFY_REQUEST);
    expect(receivedHandshakeTypes(transcript)).toContain(SERVER_HELLO);
    expect(await waitUntil(() => events.some((e) => e.type === 'dtls' && e.id === 1))).toBe(true);
    expect(events.find((e) => e.type === 'dtls' && e.id === 1)).toMatchObject({ ok: true, profile: 'SRTP_AES128_CM_SHA1_80' });
    child.kill();
    engine.removeStream(1);
    engine.removeStream(2);
  });

  it('a spoofed-source ClientHello gets only a HelloVerifyRequest: no handshake with it, the party still connects and gets the media', async () => {
    const hello = await capturedClientHello();
    const stranger = await Party.open(LO);
    const media = await Party.open(LO);
    const b = await Party.open(LO);
    parties.push(stranger, media, b);
    const port = await passivePair(3, b);

    // The stranger's ClientHello (its sender never answers the HelloVerifyRequest, as a spoofed one cannot).
    await stranger.send(hello, port, LO);
    expect(await waitUntil(() => stranger.received.length > 0)).toBe(true);
    await sleep(100);
    expect(handshakeTypes(stranger.received)).toEqual([HELLO_VERIFY_REQUEST]);
    expect(counters(3).dtls?.state).toBe('new');

    // The party handshakes while the stranger keeps repeating its ClientHello.
    const handshake = sClient(port);
    const spoofer = setInterval(() => stranger.sendNoWait(hello, port, LO), 5);
    let keys: Buffer;
    let child: ChildProcess;
    try {
      ({ keys, child } = await handshake);
    } finally {
      clearInterval(spoofer);
    }
    expect(await waitUntil(() => counters(3).dtls?.state === 'connected')).toBe(true);
    expect(handshakeTypes(stranger.received).filter((t) => t !== HELLO_VERIFY_REQUEST)).toEqual([]);
    expect(handshakeTypes(stranger.received)).not.toContain(SERVER_HELLO);

    // Media with the party's keys flows both ways; what b sends goes to the party, never to the stranger.
    const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
    const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);
    const plain = [1, 2, 3].map((seq) => rtpPacket({ seq, ssrc: 0x5eed, payloadBytes: 40 }));
    for (const p of libsrtp.run('protect-rtp', 'AES_CM_128_HMAC_SHA1_80', clientKeySalt, plain) as Buffer[]) await media.send(p, port, LO);
    expect(await waitUntil(() => b.received.length === 3)).toBe(true);
    const strangerBefore = stranger.received.length;
    const back = [7, 8].map((seq) => rtpPacket({ seq, ssrc: 0xbacc, payloadBytes: 40 }));
    for (const p of back) await b.send(p, port + 1, LO);
    expect(await waitUntil(() => media.received.length === 2)).toBe(true);
    expect(libsrtp.run('unprotect-rtp', 'AES_CM_128_HMAC_SHA1_80', serverKeySalt, media.received.map((r) => r.data))).toEqual(back);
    expect(stranger.received.length).toBe(strangerBefore);
    child.kill();
    engine.removeStream(3);
    engine.removeStream(4);
  });
});
