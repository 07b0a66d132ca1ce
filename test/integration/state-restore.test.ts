/**
 * `--state-dir` with the real `ngrelay` binary: `kill -9` (and SIGTERM), then a start with the same command
 * line, and the calls go on: same ports, tags and learned endpoints in `query`, media both ways within 1 s
 * of the restart, SDES-SRTP with libsrtp2 as the independent peer decrypting and decrypted across a ROC
 * wrap, a forked call (via-branch), a re-INVITE before the crash, a truncated state file, and a kill in the
 * middle of a burst of offers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { isDict, toPlain, type BDict, type BInputDict, type BValue } from '../support/bencode';
import { Party, rtcpPacket, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { buildLibsrtpHelper, type LibsrtpHelper } from '../support/libsrtp';
import { cutToLastRecord } from '../../src/recording/spool-recovery';
import { get } from '../support/ng-values';

const NG_PORT = 23000 + (process.pid % 2000);
// 45000..49999 is used by no other test; a random 500-port slice of it, as other worktrees run tests too.
const PORT_MIN = 45000 + (process.pid % 10) * 500;
const PORT_MAX = PORT_MIN + 499;
const SUITE = 'AES_CM_128_HMAC_SHA1_80';

let stateDir: string;
let relay: RelayUnderTest | undefined;
let ng: NgRawClient | undefined;
let libsrtpHelper: LibsrtpHelper | undefined;
const parties: Party[] = [];

async function party(): Promise<Party> {
  const p = await Party.open();
  parties.push(p);
  return p;
}

async function start(extraArgs: string[] = []): Promise<NgRawClient> {
  relay = await startNgrelay({
    ngPort: NG_PORT,
    portMin: PORT_MIN,
    portMax: PORT_MAX,
    deleteDelay: 0,
    extraArgs: [`--state-dir=${stateDir}`, ...extraArgs],
  });
  ng?.close();
  ng = await NgRawClient.open(NG_PORT);
  return ng;
}

async function crash(): Promise<void> {
  if (!relay) return;
  relay.process.killNow();
  await relay.process.exited;
  relay = undefined;
}

function client(): NgRawClient {
  if (!ng) throw new Error('no ng client');
  return ng;
}

function sdp(rtpPort: number, rtcpPort: number, proto = 'RTP/AVP', extra: string[] = []): string {
  return [
    'v=0',
    'o=- 1 1 IN IP4 127.0.0.1',
    's=-',
    'c=IN IP4 127.0.0.1',
    't=0 0',
    `m=audio ${rtpPort} ${proto} 0`,
    'a=rtpmap:0 PCMU/8000',
    `a=rtcp:${rtcpPort}`,
    'a=sendrecv',
    ...extra,
    '',
  ].join('\r\n');
}

interface SdpInfo {
  port: number;
  rtcpPort: number;
  keySalt: Buffer | null;
}

function sdpInfo(reply: BDict): SdpInfo {
  if (!reply['sdp']) throw new Error(`offer/answer failed: ${JSON.stringify(toPlain(reply))}`);
  const body = (reply['sdp'] as Buffer).toString('latin1');
  const m = /^m=audio (\d+)/m.exec(body);
  const r = /^a=rtcp:(\d+)/m.exec(body);
  const c = /^a=crypto:\d+ \S+ inline:([A-Za-z0-9+/=]+)/m.exec(body);
  if (!m || !r) throw new Error(`no m=/a=rtcp in ${body}`);
  return { port: Number(m[1]), rtcpPort: Number(r[1]), keySalt: c ? Buffer.from(c[1] as string, 'base64') : null };
}

async function request(body: BInputDict): Promise<BDict> {
  return (await client().request(body)).dict;
}

/** What must survive a restart: per tag, each stream's local port and endpoint. */
async function querySummary(callId: string): Promise<Record<string, Array<{ port: number; endpoint: string }>>> {
  const q = await request({ command: 'query', 'call-id': callId });
  const tags = get(q, 'tags');
  if (!isDict(tags)) throw new Error(`query failed: ${JSON.stringify(toPlain(q))}`);
  const out: Record<string, Array<{ port: number; endpoint: string }>> = {};
  for (const [tag, t] of Object.entries(tags)) {
    const streams = get(t, 'medias', 0, 'streams');
    out[tag] = (Array.isArray(streams) ? streams : []).map((s) => {
      const ep = get(s, 'endpoint');
      const addr = get(ep, 'address');
      return {
        port: Number(get(s, 'local port')),
        endpoint: Buffer.isBuffer(addr) ? `${addr.toString('latin1')}:${String(get(ep, 'port'))}` : '',
      };
    });
  }
  return out;
}

function rtp(seq: number, ssrc: number, marker = 0): Buffer {
  const p = rtpPacket({ seq: seq & 0xffff, ssrc, payloadType: 0, payloadBytes: 60 });
  p.writeUInt32BE((ssrc ^ seq ^ marker) >>> 0, 12);
  return p;
}

/** Sends one packet each way and waits until both arrive; returns how long that took (ms). */
async function bothWays(a: Party, toA: number, b: Party, toB: number, seq: number, timeoutMs = 1000): Promise<number> {
  const t0 = Date.now();
  const aBefore = a.received.length;
  const bBefore = b.received.length;
  const deadline = t0 + timeoutMs;
  let s = seq;
  while (Date.now() < deadline) {
    await a.send(rtp(s, 0xa1), toA, '127.0.0.1');
    await b.send(rtp(s, 0xb2), toB, '127.0.0.1');
    s++;
    if (await waitUntil(() => a.received.length > aBefore && b.received.length > bBefore, 20, 2)) return Date.now() - t0;
  }
  throw new Error(`media did not flow both ways within ${timeoutMs} ms (a got ${a.received.length - aBefore}, b got ${b.received.length - bBefore})`);
}

beforeAll(() => {
  stateDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-state-'));
  libsrtpHelper = buildLibsrtpHelper();
}, 600_000);

afterEach(async () => {
  ng?.close();
  ng = undefined;
  await relay?.stop();
  relay = undefined;
  for (const p of parties.splice(0)) await p.close();
  rmSync(stateDir, { recursive: true, force: true });
  stateDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-state-'));
});

afterAll(() => {
  rmSync(stateDir, { recursive: true, force: true });
  libsrtpHelper?.dispose();
});

describe('--state-dir restore', () => {
  it('plain, re-INVITEd and forked calls survive kill -9 and SIGTERM: same ports, tags, learned endpoints; media within 1 s', async () => {
    await start();
    // Plain call; A announces one port in its SDP but sends from another (a NAT): the learned endpoint is
    // where B's media must go after the restart, before A sends anything again.
    const aSdp = await party();
    const a = await party();
    const b = await party();
    const learn = { 'endpoint-learning': 'immediate' };
    const o = sdpInfo(await request({ command: 'offer', 'call-id': 'plain', 'from-tag': 'A', sdp: sdp(aSdp.port, aSdp.port + 1), ...learn }));
    const an = sdpInfo(await request({ command: 'answer', 'call-id': 'plain', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port, b.port + 1), ...learn }));
    // Re-INVITE from A (hold and back: same ports expected).
    const re = sdpInfo(await request({ command: 'offer', 'call-id': 'plain', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(aSdp.port, aSdp.port + 1), ...learn }));
    expect(re.port).toBe(o.port);
    await request({ command: 'answer', 'call-id': 'plain', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port, b.port + 1), ...learn });
    await bothWays(a, an.port, b, o.port, 1); // A sends from its real socket: learned

    // Forked call: two branches offered, the second answers.
    const c1 = await party();
    const c2 = await party();
    const f = await party();
    const br1 = sdpInfo(await request({ command: 'offer', 'call-id': 'fork', 'from-tag': 'F', 'via-branch': 'br1', sdp: sdp(f.port, f.port + 1) }));
    const br2 = sdpInfo(await request({ command: 'offer', 'call-id': 'fork', 'from-tag': 'F', 'via-branch': 'br2', sdp: sdp(f.port, f.port + 1) }));
    expect(br2.port).not.toBe(br1.port);
    const fa = sdpInfo(
      await request({ command: 'answer', 'call-id': 'fork', 'from-tag': 'F', 'to-tag': 'C2', 'via-branch': 'br2', sdp: sdp(c2.port, c2.port + 1) }),
    );
    await bothWays(f, fa.port, c2, br2.port, 1);
    void c1;

    const before = { plain: await querySummary('plain'), fork: await querySummary('fork') };
    expect(before.plain['A']?.[0]?.endpoint).toBe(`127.0.0.1:${a.port}`);
    await sleep(700); // the learned endpoints go with the progress tick (500 ms)

    await crash();
    await start();
    const t0 = Date.now();
    // B speaks first: the packet must reach A's real socket (the learned endpoint), not the SDP one.
    const bFirst = a.received.length;
    await b.send(rtp(100, 0xb2), o.port, '127.0.0.1');
    expect(await waitUntil(() => a.received.length > bFirst, 1000, 2)).toBe(true);
    expect(aSdp.received).toHaveLength(0);
    await bothWays(a, an.port, b, o.port, 101);
    await bothWays(f, fa.port, c2, br2.port, 101);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect({ plain: await querySummary('plain'), fork: await querySummary('fork') }).toEqual(before);

    // SIGTERM keeps the calls too.
    await relay?.stop();
    relay = undefined;
    await start();
    await bothWays(a, an.port, b, o.port, 200);
    expect(await querySummary('plain')).toEqual(before.plain);
    const stats = await request({ command: 'statistics' });
    expect(get(stats, 'statistics', 'statedir', 'restoredcalls')).toBe(2);
    expect(get(stats, 'statistics', 'statedir', 'failedcalls')).toBe(0);

    // A deleted call is gone for good.
    await request({ command: 'delete', 'call-id': 'fork', 'from-tag': 'F' });
    await crash();
    await start();
    expect(toPlain(await request({ command: 'query', 'call-id': 'fork' }))).toMatchObject({ result: 'error' });
    expect(Object.keys(await querySummary('plain'))).toEqual(Object.keys(before.plain));
  }, 60_000);

  it('SDES-SRTP keeps decrypting both ways across kill -9 with 50 pps flowing and a ROC wrap before the crash', async () => {
    if (!libsrtpHelper) throw new Error('libsrtp helper not built');
    const helper = libsrtpHelper;
    await start();
    const a = await party();
    const aRtcp = await party();
    const b = await party();
    const bRtcp = await party();
    const ka = randomBytes(30);
    const o = sdpInfo(
      await request({
        command: 'offer',
        'call-id': 'srtp',
        'from-tag': 'A',
        'transport-protocol': 'RTP/AVP',
        sdp: sdp(a.port, aRtcp.port, 'RTP/SAVP', [`a=crypto:1 ${SUITE} inline:${ka.toString('base64')}`]),
      }),
    );
    const an = sdpInfo(await request({ command: 'answer', 'call-id': 'srtp', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port, bRtcp.port) }));
    const kn = an.keySalt;
    if (!kn) throw new Error('no a=crypto in the answer to A');

    // 50 pps each way for 1.2 s before the crash and 1.2 s after; sequence numbers wrap (ROC 0 -> 1) early.
    const total = 120;
    const first = 65536 - 20;
    const plainAB = Array.from({ length: total }, (_, i) => rtp(first + i, 0x1111aaaa));
    const plainBA = Array.from({ length: total }, (_, i) => rtp(first + i, 0x2222bbbb));
    const srtpAB = helper.run('protect-rtp', SUITE, ka, plainAB).map((p) => {
      if (typeof p === 'string') throw new Error(p);
      return p;
    });
    const rtcpBA = Array.from({ length: 6 }, (_, i) => {
      const p = rtcpPacket(0x2222bbbb, 'sr');
      p.writeUInt32BE(0x10000 + i, 8);
      return p;
    });
    let sent = 0;
    const pace = async (count: number): Promise<void> => {
      for (let i = 0; i < count; i++, sent++) {
        await a.send(srtpAB[sent] as Buffer, an.port, '127.0.0.1');
        await b.send(plainBA[sent] as Buffer, o.port, '127.0.0.1');
        await sleep(20);
      }
    };
    await pace(30);
    for (const p of rtcpBA.slice(0, 3)) await bRtcp.send(p, o.rtcpPort, '127.0.0.1');
    await pace(30);
    await sleep(600);
    const beforeA = a.received.length;
    const beforeB = b.received.length;
    expect(beforeA).toBeGreaterThan(50);
    expect(beforeB).toBeGreaterThan(50);

    await crash();
    await start();
    const restartedAt = Date.now();
    await pace(60);
    for (const p of rtcpBA.slice(3)) await bRtcp.send(p, o.rtcpPort, '127.0.0.1');
    await waitUntil(() => a.received.length >= beforeA + 60 && b.received.length >= beforeB + 60 && aRtcp.received.length >= 6, 2000);
    expect(Date.now() - restartedAt).toBeLessThan(3000);

    // A -> B: every packet after the restart was decrypted by ngrelay to the exact original.
    const gotB = b.received.map((r) => r.data.toString('hex'));
    expect(gotB.slice(beforeB)).toEqual(plainAB.slice(60).map((p) => p.toString('hex')));
    // B -> A: libsrtp2 (one session over the whole stream, before and after) opens every packet.
    const opened = helper.run('unprotect-rtp', SUITE, kn, a.received.map((r) => r.data));
    expect(opened.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(
      plainBA.slice(0, a.received.length).map((p) => p.toString('hex')),
    );
    const openedRtcp = helper.run('unprotect-rtcp', SUITE, kn, aRtcp.received.map((r) => r.data));
    expect(openedRtcp.map((p) => (typeof p === 'string' ? p : p.toString('hex')))).toEqual(rtcpBA.map((p) => p.toString('hex')));
  }, 60_000);

  it('a recorded call goes on recording into the same pcap after kill -9 and SIGTERM: one file, packets from before and after', async () => {
    const recDir = mkdtempSync(path.join(tmpdir(), 'ngrelay-state-rec-'));
    try {
      const recArgs = [`--recording-dir=${recDir}`];
      await start(recArgs);
      const a = await party();
      const b = await party();
      const o = sdpInfo(await request({ command: 'offer', 'call-id': 'rec', 'from-tag': 'A', 'record-call': 'yes', sdp: sdp(a.port, a.port + 1) }));
      const an = sdpInfo(await request({ command: 'answer', 'call-id': 'rec', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port, b.port + 1) }));
      for (let i = 0; i < 10; i++) await a.send(rtp(i, 0xa1), an.port, '127.0.0.1');
      expect(await waitUntil(() => b.received.length >= 10, 2000)).toBe(true);
      await sleep(200); // the pcap writer thread empties its ring
      await crash();
      await start(recArgs);
      for (let i = 10; i < 20; i++) await a.send(rtp(i, 0xa1), an.port, '127.0.0.1');
      expect(await waitUntil(() => b.received.length >= 20, 2000)).toBe(true);
      // And across a SIGTERM: the recording stays in the spool for the next start.
      await relay?.stop();
      relay = undefined;
      await start(recArgs);
      for (let i = 20; i < 30; i++) await a.send(rtp(i, 0xa1), an.port, '127.0.0.1');
      expect(await waitUntil(() => b.received.length >= 30, 2000)).toBe(true);
      void o;
      await request({ command: 'delete', 'call-id': 'rec', 'from-tag': 'A' });
      const pcaps = readdirSync(path.join(recDir, 'pcaps'));
      expect(pcaps).toHaveLength(1);
      expect(readdirSync(path.join(recDir, 'spool'))).toEqual([]);
      expect(cutToLastRecord(path.join(recDir, 'pcaps', pcaps[0] as string))).toBe(30);
    } finally {
      rmSync(recDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a truncated state file is skipped with a clear log line; the other calls are restored', async () => {
    await start();
    const x = await party();
    const y = await party();
    for (const id of ['keep', 'broken']) {
      await request({ command: 'offer', 'call-id': id, 'from-tag': 'X', sdp: sdp(x.port, x.port + 1) });
      await request({ command: 'answer', 'call-id': id, 'from-tag': 'X', 'to-tag': 'Y', sdp: sdp(y.port, y.port + 1) });
    }
    const keepBefore = await querySummary('keep');
    await crash();
    const broken = path.join(stateDir, 'calls', createHash('sha256').update('broken').digest('hex').slice(0, 40) + '.call');
    truncateSync(broken, Math.floor(statSync(broken).size / 2));
    await start();
    expect(await querySummary('keep')).toEqual(keepBefore);
    expect(toPlain(await request({ command: 'query', 'call-id': 'broken' }))).toMatchObject({ result: 'error' });
    expect(relay?.process.stderrText).toMatch(/state file skipped.*truncated|truncated.*state file skipped/);
    expect(readdirSync(path.join(stateDir, 'calls')).filter((n) => n.endsWith('.rejected'))).toHaveLength(1);
    const stats = await request({ command: 'statistics' });
    expect(get(stats, 'statistics', 'statedir', 'skippedfiles')).toBe(1);
  }, 60_000);

  it('a call whose port is taken at restart is logged and left out; the others are restored; statistics counts both', async () => {
    await start();
    const x = await party();
    const y = await party();
    const ports: Record<string, number> = {};
    for (const id of ['free', 'taken']) {
      ports[id] = sdpInfo(await request({ command: 'offer', 'call-id': id, 'from-tag': 'X', sdp: sdp(x.port, x.port + 1) })).port;
      await request({ command: 'answer', 'call-id': id, 'from-tag': 'X', 'to-tag': 'Y', sdp: sdp(y.port, y.port + 1) });
    }
    await crash();
    const squatter = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => squatter.bind(ports['taken'], '127.0.0.1', () => resolve()));
    try {
      await start();
      expect(toPlain(await request({ command: 'query', 'call-id': 'free' }))).toMatchObject({ result: 'ok' });
      expect(toPlain(await request({ command: 'query', 'call-id': 'taken' }))).toMatchObject({ result: 'error' });
      expect(relay?.process.stderrText).toMatch(/"call-id":"taken".*EADDRINUSE.*call not restored/);
      const stats = await request({ command: 'statistics' });
      expect(get(stats, 'statistics', 'statedir', 'restoredcalls')).toBe(1);
      expect(get(stats, 'statistics', 'statedir', 'failedcalls')).toBe(1);
    } finally {
      squatter.close();
    }
  }, 60_000);

  it('a state dir that cannot be written never fails a command: the reply goes out, statistics counts the error', async () => {
    await start();
    const x = await party();
    rmSync(path.join(stateDir, 'calls'), { recursive: true, force: true });
    writeFileSync(path.join(stateDir, 'calls'), 'not a directory');
    const reply = await request({ command: 'offer', 'call-id': 'unwritable', 'from-tag': 'X', sdp: sdp(x.port, x.port + 1) });
    expect(toPlain(reply)).toMatchObject({ result: 'ok' });
    const stats = await request({ command: 'statistics' });
    expect(get(stats, 'statistics', 'statedir', 'writeerrors')).toBeGreaterThanOrEqual(1);
    expect(String(get(stats, 'statistics', 'statedir', 'lasterror'))).toMatch(/ENOTDIR/);
    expect(relay?.process.stderrText).toMatch(/cannot write call state/);
  }, 60_000);

  it('kill -9 during a burst of offers: every offer that was answered is restored', async () => {
    await start();
    const p = await party();
    const count = 100; // 4 ports each: within the 500-port range
    const answered: string[] = [];
    const pending = Array.from({ length: count }, (_, i) => {
      const callId = `burst-${i}`;
      return client()
        .request({ command: 'offer', 'call-id': callId, 'from-tag': 'T', sdp: sdp(p.port, p.port + 1) }, { deadlineMs: 3000, retransmitMs: 0 })
        .then((r) => {
          if (r.dict['result']?.toString() === 'ok') answered.push(callId);
        })
        .catch(() => undefined);
    });
    await waitUntil(() => answered.length >= 20, 5000, 1);
    await crash();
    const atKill = [...answered];
    await Promise.all(pending);
    await start();
    expect(atKill.length).toBeGreaterThanOrEqual(20);
    expect(atKill.length).toBeLessThan(count); // the kill came in the middle of the burst
    for (const callId of atKill) {
      expect(toPlain(await request({ command: 'query', 'call-id': callId })), callId).toMatchObject({ result: 'ok' });
    }
  }, 60_000);
});
