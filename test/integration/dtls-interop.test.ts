/**
 * DTLS-SRTP against an independent peer: OpenSSL's own `openssl s_client` (the Debian binary) does the
 * handshake with a passive engine stream and exports the SRTP keys (-keymatexport EXTRACTOR-dtls_srtp);
 * libsrtp2 (test/support/libsrtp.ts) then protects and unprotects the media with them. So the engine's
 * fingerprint check, use_srtp negotiation and RFC 5764 §4.2 key layout are checked by someone else's code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, EngineEvent, StreamCounters } from '../../src/dataplane/types';
import { endpointOf as ep, PortRuns, streamRule as rule } from '../support/dataplane-fixtures';
import { buildLibsrtpHelper, type LibsrtpHelper } from '../support/libsrtp';
import { Party, rtpPacket, waitUntil } from '../support/rtp-packets';
import { makeOpensslPeerIdentity } from '../support/openssl-peer';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(47000, 47999);

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
  engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 0 });
  engine.onEvents((batch) => events.push(...batch));
  libsrtp = buildLibsrtpHelper();
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-dtls-'));
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

/** Runs s_client against `port` until it printed the exported keys; returns them and the profile. */
function sClient(port: number, profile: string): Promise<{ keys: Buffer; profile: string; child: ChildProcess }> {
  const child = spawn('openssl', ['s_client', '-dtls1_2', '-connect', `${LO}:${port}`, '-cert', certFile, '-key', keyFile,
    '-use_srtp', profile, '-keymatexport', 'EXTRACTOR-dtls_srtp', '-keymatexportlen', '60'], { stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`s_client gave no keys:\n${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const keys = /Keying material: ([0-9A-Fa-f]+)/.exec(out);
      const prof = /SRTP Extension negotiated, profile=(\S+)/.exec(out);
      if (keys && prof) {
        clearTimeout(timer);
        resolve({ keys: Buffer.from(keys[1]!, 'hex'), profile: prof[1]!, child });
      }
    });
    child.on('exit', (code) => reject(new Error(`s_client exited ${String(code)}:\n${out}`)));
  });
}

describe('native engine: DTLS-SRTP with openssl s_client and libsrtp2', () => {
  it('a passive stream handshakes with s_client; media protected with the exported keys flows both ways', async () => {
    const media = await Party.open(LO);
    const b = await Party.open(LO);
    parties.push(media, b);
    const port = await relayPorts.take(2, LO);
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port },
      rule({ expected: null, sink: 2, dtls: { role: 'passive', remoteFingerprint: { hash: 'sha-256', value: peerFingerprint }, generation: 1 }, crypto: { inbound: { dtlsOf: 1 }, outbound: null, recrypt: false } }));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 1 },
      rule({ expected: ep(b), sink: 1, crypto: { inbound: null, outbound: { dtlsOf: 1 }, recrypt: false } }));

    const { keys, profile, child } = await sClient(port, 'SRTP_AES128_CM_SHA1_80');
    expect(profile).toBe('SRTP_AES128_CM_SHA1_80');
    expect(await waitUntil(() => events.some((e) => e.type === 'dtls' && e.id === 1))).toBe(true);
    expect(events.find((e) => e.type === 'dtls')).toMatchObject({ ok: true, profile: 'SRTP_AES128_CM_SHA1_80' });
    expect(counters(1).dtls).toMatchObject({ state: 'connected', role: 'passive', peerFingerprint: new X509Certificate(fs.readFileSync(certFile)).fingerprint256 });

    // RFC 5764 §4.2: client key | server key | client salt | server salt. s_client is the client.
    const clientKeySalt = Buffer.concat([keys.subarray(0, 16), keys.subarray(32, 46)]);
    const serverKeySalt = Buffer.concat([keys.subarray(16, 32), keys.subarray(46, 60)]);
    const plain = [1, 2, 3].map((seq) => rtpPacket({ seq, ssrc: 0x5eed, payloadBytes: 40 }));
    const srtp = libsrtp.run('protect-rtp', 'AES_CM_128_HMAC_SHA1_80', clientKeySalt, plain) as Buffer[];
    for (const p of srtp) await media.send(p, port, LO);
    expect(await waitUntil(() => b.received.length === 3)).toBe(true);
    expect(b.received.map((r) => r.data)).toEqual(plain);

    const back = [7, 8].map((seq) => rtpPacket({ seq, ssrc: 0xbacc, payloadBytes: 40 }));
    for (const p of back) await b.send(p, port + 1, LO);
    expect(await waitUntil(() => media.received.length === 2)).toBe(true);
    const decrypted = libsrtp.run('unprotect-rtp', 'AES_CM_128_HMAC_SHA1_80', serverKeySalt, media.received.map((r) => r.data));
    expect(decrypted).toEqual(back);
    child.kill();
    engine.removeStream(1);
    engine.removeStream(2);
  });

  it('s_client with a certificate other than a=fingerprint is refused: failed, no keys', async () => {
    const port = await relayPorts.take(2, LO);
    engine.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: port },
      rule({ expected: null, sink: null, dtls: { role: 'passive', remoteFingerprint: { hash: 'sha-256', value: Buffer.alloc(32, 7) }, generation: 1 }, crypto: { inbound: { dtlsOf: 3 }, outbound: null, recrypt: false } }));
    await sClient(port, 'SRTP_AES128_CM_SHA1_80').catch(() => undefined);
    expect(await waitUntil(() => counters(3).dtls?.state === 'failed')).toBe(true);
    expect(counters(3).dtls!.error).toBe('certificate fingerprint mismatch');
    engine.removeStream(3);
  });
});
