/**
 * Call recording with the real binary: calls recorded to pcap by the native engine, judged by tshark.
 * Exact packet counts, SSRCs, sequence numbers and UDP/IP endpoints; pause/stop/start intervals; a file that
 * survives kill -9; the errors for a missing or unusable recording directory.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runNgrelay, startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { toPlain, type BDict } from '../support/bencode';
import { Party, rtcpPacket, rtpPacket, waitUntil } from '../support/rtp-packets';
import { ensureTshark, readPcap, rtpStreams, type PcapRow } from '../support/tshark';

const LO = '127.0.0.1';
const CALLER_SSRC = 0x11223344;
const CALLEE_SSRC = 0x55667788;

/** Each party receives its RTCP on its one socket too (a=rtcp names the RTP port), so none is lost in tests. */
function sdp(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${LO}`, 's=-', `c=IN IP4 ${LO}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', `a=rtcp:${port}`, ''].join('\r\n');
}

function mPort(reply: BDict): number {
  const body = (reply['sdp'] as Buffer).toString('latin1');
  const m = /m=audio (\d+) /.exec(body);
  if (!m) throw new Error(`no m= line in ${body}`);
  return Number(m[1]);
}

function expectOk(reply: BDict): void {
  expect(toPlain(reply)).toMatchObject({ result: 'ok' });
}

/** A two-party call through the relay: caller sends to relay port `callerSide`, callee to `calleeSide`. */
interface Call {
  callId: string;
  caller: Party;
  callee: Party;
  callerSide: number;
  calleeSide: number;
  close(): Promise<void>;
}

async function setUpCall(ng: NgRawClient, callId: string, extra: Record<string, unknown> = {}): Promise<Call> {
  const caller = await Party.open(LO);
  const callee = await Party.open(LO);
  const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'tagA', sdp: sdp(caller.port), ...extra });
  expectOk(offer.dict);
  const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'tagA', 'to-tag': 'tagB', sdp: sdp(callee.port) });
  expectOk(answer.dict);
  return {
    callId,
    caller,
    callee,
    callerSide: mPort(answer.dict),
    calleeSide: mPort(offer.dict),
    close: async () => {
      await caller.close();
      await callee.close();
    },
  };
}

/** Sends RTP seq `from`..`to`-1 both ways (and `rtcp` RTCP each way), and waits until all of it arrived. */
async function exchange(call: Call, from: number, to: number, rtcp = 0): Promise<void> {
  const before = [call.caller.count, call.callee.count];
  for (let seq = from; seq < to; seq++) {
    await call.caller.send(rtpPacket({ seq, ssrc: CALLER_SSRC }), call.callerSide, LO);
    await call.callee.send(rtpPacket({ seq, ssrc: CALLEE_SSRC }), call.calleeSide, LO);
  }
  for (let i = 0; i < rtcp; i++) {
    await call.caller.send(rtcpPacket(CALLER_SSRC, 'sr'), call.callerSide + 1, LO);
    await call.callee.send(rtcpPacket(CALLEE_SSRC, 'rr'), call.calleeSide + 1, LO);
  }
  const n = to - from + rtcp;
  const arrived = await waitUntil(() => call.caller.count === (before[0] as number) + n && call.callee.count === (before[1] as number) + n, 5000);
  expect(arrived, `forwarded ${call.caller.count - (before[0] as number)}/${n} and ${call.callee.count - (before[1] as number)}/${n}`).toBe(true);
}

function rtpSeqs(rows: PcapRow[], ssrc: number): number[] {
  return rows.filter((r) => r.ssrc === ssrc).map((r) => r.seq as number);
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

async function query(ng: NgRawClient, callId: string): Promise<Record<string, unknown>> {
  const r = await ng.request({ command: 'query', 'call-id': callId });
  expectOk(r.dict);
  return toPlain(r.dict) as Record<string, unknown>;
}

function filesIn(dir: string, suffix: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(suffix)).map((f) => path.join(dir, f)) : [];
}

beforeAll(() => {
  ensureTshark();
}, 300_000);

describe('recording to pcap', () => {
  let relay: RelayUnderTest;
  let ng: NgRawClient;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-'));
    relay = await startNgrelay({ ngPort: 22421, portMin: 43000, portMax: 43099, deleteDelay: 0, extraArgs: [`--recording-dir=${dir}`] });
    ng = await NgRawClient.open(22421);
  });

  afterAll(async () => {
    ng?.close();
    await relay?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('records both parties’ RTP and RTCP with the real endpoints, exact counts and no loss', async () => {
    const call = await setUpCall(ng, 'rec-1@example', { 'record-call': 'yes', metadata: 'customer=42' });
    const N = 50;
    await exchange(call, 0, N, 3);

    const total = 2 * N + 6;
    let rec: Record<string, unknown> = {};
    const written = await waitUntil(() => false, 0).then(async () => {
      for (let i = 0; i < 200; i++) {
        rec = (await query(ng, call.callId))['recording'] as Record<string, unknown>;
        if (rec && rec['packets written'] === total) return true;
        await new Promise((r) => setTimeout(r, 10));
      }
      return false;
    });
    expect(written, JSON.stringify(rec)).toBe(true);
    expect(rec).toMatchObject({ recorded: 'yes', state: 'recording', 'packets dropped': 0 });
    const spoolPcap = rec['spool file'] as string;
    expect(existsSync(spoolPcap)).toBe(true);

    expectOk((await ng.request({ command: 'delete', 'call-id': call.callId, 'from-tag': 'tagA' })).dict);
    const pcap = rec['pcap'] as string;
    expect(path.dirname(pcap)).toBe(path.join(dir, 'pcaps'));
    expect(existsSync(pcap)).toBe(true);
    expect(existsSync(spoolPcap)).toBe(false);

    const header = readFileSync(pcap).subarray(0, 24);
    expect(header.readUInt32LE(0)).toBe(0xa1b2c3d4);
    expect(header.readUInt32LE(16)).toBe(65535);
    expect(header.readUInt32LE(20)).toBe(101);

    const rows = readPcap(pcap, [call.callerSide, call.calleeSide], [call.callerSide + 1, call.calleeSide + 1]);
    expect(rows.length).toBe(total);
    // caller -> relay (the port the caller was given), callee -> relay: each packet once, as received.
    const fromCaller = rows.filter((r) => r.srcPort === call.caller.port);
    const fromCallee = rows.filter((r) => r.srcPort === call.callee.port);
    expect(fromCaller.length).toBe(N + 3);
    expect(fromCallee.length).toBe(N + 3);
    for (const r of fromCaller) expect(r).toMatchObject({ src: LO, dst: LO });
    expect(new Set(fromCaller.filter((r) => r.ssrc !== null).map((r) => r.dstPort))).toEqual(new Set([call.callerSide]));
    expect(new Set(fromCaller.filter((r) => r.rtcpType !== null).map((r) => r.dstPort))).toEqual(new Set([call.callerSide + 1]));
    expect(new Set(fromCallee.filter((r) => r.ssrc !== null).map((r) => r.dstPort))).toEqual(new Set([call.calleeSide]));
    expect(new Set(fromCallee.filter((r) => r.rtcpType !== null).map((r) => r.dstPort))).toEqual(new Set([call.calleeSide + 1]));
    expect(fromCaller.filter((r) => r.rtcpType === 200).length).toBe(3);
    expect(fromCallee.filter((r) => r.rtcpType === 201).length).toBe(3);
    expect(rtpSeqs(fromCaller, CALLER_SSRC)).toEqual(range(0, N));
    expect(rtpSeqs(fromCallee, CALLEE_SSRC)).toEqual(range(0, N));

    const streams = rtpStreams(pcap, [call.callerSide, call.calleeSide]);
    expect(streams.map((s) => s.ssrc).sort()).toEqual([CALLER_SSRC, CALLEE_SSRC].sort());
    for (const s of streams) expect(s).toMatchObject({ packets: N, lost: 0 });

    // Metadata moved beside it, naming the call, the tags, both SDPs in order, the user metadata and the pcap.
    const metas = filesIn(path.join(dir, 'metadata'), '.meta');
    const meta = metas.find((m) => path.basename(m, '.meta') === path.basename(pcap, '.pcap'));
    expect(meta, metas.join(',')).toBeDefined();
    const text = readFileSync(meta as string, 'utf8');
    expect(text).toContain('CALL-ID: rec-1@example');
    expect(text).toContain(`PCAP: ${pcap}`);
    expect(text).toContain('TAG: tagA');
    expect(text).toContain('TAG: tagB');
    expect(text).toContain('METADATA: customer=42');
    expect(text).toContain('END TIME: ');
    expect(text.indexOf('SDP mode: offer')).toBeGreaterThan(-1);
    expect(text.indexOf('SDP mode: answer')).toBeGreaterThan(text.indexOf('SDP mode: offer'));
    expect(text).toContain(`m=audio ${call.caller.port} RTP/AVP 0`);
    expect(text).toContain(`m=audio ${call.callee.port} RTP/AVP 0`);
    expect(filesIn(path.join(dir, 'spool'), '')).toEqual([]);
    await call.close();
  });

  it('pause / stop / start mid-call record exactly the packets of the recorded intervals', async () => {
    const call = await setUpCall(ng, 'rec-2@example');
    const q0 = await query(ng, call.callId);
    expect(q0['recording']).toBeUndefined();
    await exchange(call, 0, 10); // not recorded
    expectOk((await ng.request({ command: 'start recording', 'call-id': call.callId })).dict);
    await exchange(call, 10, 20);
    expectOk((await ng.request({ command: 'pause recording', 'call-id': call.callId })).dict);
    const paused = (await query(ng, call.callId))['recording'] as Record<string, unknown>;
    expect(paused).toMatchObject({ recorded: 'yes', state: 'paused' });
    await exchange(call, 20, 30); // paused
    expectOk((await ng.request({ command: 'start recording', 'call-id': call.callId })).dict);
    await exchange(call, 30, 40);
    expectOk((await ng.request({ command: 'stop recording', 'call-id': call.callId })).dict);
    expect((await query(ng, call.callId))['recording']).toBeUndefined();
    const first = paused['pcap'] as string;
    expect(existsSync(first)).toBe(true);
    await exchange(call, 40, 50); // stopped
    expectOk((await ng.request({ command: 'start recording', 'call-id': call.callId })).dict);
    const second = ((await query(ng, call.callId))['recording'] as Record<string, unknown>)['pcap'] as string;
    expect(second).not.toBe(first);
    await exchange(call, 50, 60);
    expectOk((await ng.request({ command: 'delete', 'call-id': call.callId })).dict);

    const ports = [call.callerSide, call.calleeSide];
    const rows1 = readPcap(first, ports, []);
    expect(rtpSeqs(rows1, CALLER_SSRC)).toEqual([...range(10, 20), ...range(30, 40)]);
    expect(rtpSeqs(rows1, CALLEE_SSRC)).toEqual([...range(10, 20), ...range(30, 40)]);
    expect(rows1.length).toBe(40);
    const rows2 = readPcap(second, ports, []);
    expect(rtpSeqs(rows2, CALLER_SSRC)).toEqual(range(50, 60));
    expect(rtpSeqs(rows2, CALLEE_SSRC)).toEqual(range(50, 60));
    expect(rows2.length).toBe(20);
    await call.close();
  });

  it('recording commands need a known call', async () => {
    for (const command of ['start recording', 'stop recording', 'pause recording']) {
      const r = await ng.request({ command, 'call-id': 'no-such-call' });
      expect(toPlain(r.dict)).toEqual({ result: 'error', 'error-reason': 'Unknown call-id' });
    }
  });

  it('an unusable recording directory fails the recording, never the call', async () => {
    const call = await setUpCall(ng, 'rec-3@example');
    const spool = path.join(dir, 'spool');
    rmSync(spool, { recursive: true, force: true });
    writeFileSync(spool, 'not a directory');
    try {
      const r = (await ng.request({ command: 'start recording', 'call-id': call.callId })).plain;
      expect(r['result']).toBe('error');
      expect(String(r['error-reason'])).toMatch(/^Failed to start call recording: cannot create .*spool.*: Not a directory$/);
      // The call goes on, unrecorded.
      await exchange(call, 0, 5);
      expect((await query(ng, call.callId))['recording']).toBeUndefined();
      // record-call in an offer: the offer is answered, with a warning.
      const other = await Party.open(LO);
      const offer = (await ng.request({ command: 'offer', 'call-id': 'rec-4@example', 'from-tag': 'x', sdp: sdp(other.port), 'record-call': 'yes' })).plain;
      expect(offer['result']).toBe('ok');
      expect(String(offer['warning'])).toContain('Failed to start call recording');
      await other.close();
    } finally {
      rmSync(spool, { force: true });
      mkdirSync(spool);
    }
    await call.close();
  });
});

describe('recording survives kill -9 (eth framing, egress recorded too)', () => {
  it('tshark reads the spooled pcap cleanly after the relay was killed mid-call', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-kill-'));
    const relay = await startNgrelay({
      ngPort: 22422,
      portMin: 43100,
      portMax: 43199,
      deleteDelay: 0,
      extraArgs: [`--recording-dir=${dir}`, '--recording-format=eth', '--record-egress'],
    });
    const ng = await NgRawClient.open(22422);
    try {
      const call = await setUpCall(ng, 'kill-1', { flags: ['record-call'] });
      await exchange(call, 0, 20, 1);
      // Keep media flowing while the process dies.
      let seq = 20;
      const sending = (async () => {
        while (seq < 2000 && !relay.process.hasExited) {
          call.caller.sendNoWait(rtpPacket({ seq, ssrc: CALLER_SSRC }), call.callerSide, LO);
          call.callee.sendNoWait(rtpPacket({ seq, ssrc: CALLEE_SSRC }), call.calleeSide, LO);
          seq++;
          if (seq % 20 === 0) await new Promise((r) => setTimeout(r, 1));
        }
      })();
      await waitUntil(() => seq > 300, 5000);
      process.kill(relay.process.pid, 'SIGKILL');
      await relay.process.exited;
      await sending;

      const spooled = filesIn(path.join(dir, 'spool'), '.pcap');
      expect(spooled.length).toBe(1);
      const file = spooled[0] as string;
      const rows = readPcap(file, [call.callerSide, call.calleeSide], [call.callerSide + 1, call.calleeSide + 1]);
      // At least what was confirmed forwarded before the kill: 20 RTP + 1 RTCP each way, in and out.
      expect(rows.length).toBeGreaterThanOrEqual(4 * 21);
      expect(rows.every((r) => r.ethType === '0x0800')).toBe(true);
      // Ingress (party -> relay) and egress (relay -> other party) copies of the first caller packets.
      const callerRtp = rows.filter((r) => r.ssrc === CALLER_SSRC && (r.seq as number) < 20);
      const ingress = callerRtp.filter((r) => r.srcPort === call.caller.port && r.dstPort === call.callerSide);
      const egress = callerRtp.filter((r) => r.srcPort === call.calleeSide && r.dstPort === call.callee.port);
      expect(ingress.map((r) => r.seq)).toEqual(range(0, 20));
      expect(egress.map((r) => r.seq)).toEqual(range(0, 20));
      // Every record is whole: the data after the last one ends exactly at end of file (tshark agrees above).
      const bytes = readFileSync(file);
      let off = 24;
      while (off + 16 <= bytes.length) off += 16 + bytes.readUInt32LE(off + 8);
      expect(off).toBe(bytes.length);
      await call.close();

      // The next start finishes what the crash left in the spool: same bytes, final names, END TIME noted.
      const spooledMeta = filesIn(path.join(dir, 'spool'), '.meta');
      expect(spooledMeta.length).toBe(1);
      const restarted = await startNgrelay({
        ngPort: 22425,
        portMin: 43200,
        portMax: 43299,
        extraArgs: [`--recording-dir=${dir}`],
      });
      await restarted.stop();
      expect(filesIn(path.join(dir, 'spool'), '.pcap')).toEqual([]);
      const finished = filesIn(path.join(dir, 'pcaps'), '.pcap');
      expect(finished.map((f) => path.basename(f))).toEqual([path.basename(file)]);
      expect(readFileSync(finished[0] as string).equals(bytes)).toBe(true);
      const meta = readFileSync(filesIn(path.join(dir, 'metadata'), '.meta')[0] as string, 'utf8');
      expect(meta).toMatch(/END TIME: .*recovered at start-up/);
    } finally {
      ng.close();
      await relay.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('recording without a usable directory', () => {
  it('asking to record without --recording-dir answers an error naming the option', async () => {
    const relay = await startNgrelay({ ngPort: 22423, portMin: 43200, portMax: 43299, deleteDelay: 0 });
    const ng = await NgRawClient.open(22423);
    try {
      const caller = await Party.open(LO);
      const offer = (await ng.request({ command: 'offer', 'call-id': 'norec', 'from-tag': 'a', sdp: sdp(caller.port), 'record-call': 'yes' })).plain;
      expect(offer).toEqual({
        result: 'error',
        'error-reason': 'Call recording requested, but no recording directory configured (--recording-dir)',
      });
      const plain = (await ng.request({ command: 'offer', 'call-id': 'norec', 'from-tag': 'a', sdp: sdp(caller.port) })).plain;
      expect(plain['result']).toBe('ok');
      const start = (await ng.request({ command: 'start recording', 'call-id': 'norec' })).plain;
      expect(start['error-reason']).toBe('Call recording requested, but no recording directory configured (--recording-dir)');
      await caller.close();
    } finally {
      ng.close();
      await relay.stop();
    }
  });

  it.each([
    ['missing', (base: string) => path.join(base, 'does-not-exist'), /does not exist/],
    ['a file', (base: string) => { const f = path.join(base, 'file'); writeFileSync(f, ''); return f; }, /not a directory/],
  ])('a recording dir that is %s stops the start with one clear line', async (_what, make, reason) => {
    const base = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-bad-'));
    try {
      const bad = make(base);
      const r = await runNgrelay(['--config-file=none', '--interface=127.0.0.1', '--listen-ng=127.0.0.1:22424', `--recording-dir=${bad}`, '--log-level=0']);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toContain('--recording-dir');
      expect(lines[0]).toMatch(reason);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});

/**
 * A read-only and a full file system, made with small tmpfs mounts (needs root, as the suite's e2e tests do;
 * fails loudly otherwise). The mounts are removed in `finally`.
 */
describe('recording onto a read-only or full file system', () => {
  function mountTmpfs(options: string): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-rec-fs-'));
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { encoding: 'utf8' });
    if (r.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`cannot mount a tmpfs for this test (run the suite as root): ${r.stderr}`);
    }
    return dir;
  }
  function unmount(dir: string): void {
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }

  it('a read-only recording dir stops the start with one clear line', async () => {
    const dir = mountTmpfs('ro,size=64k');
    try {
      const r = await runNgrelay(['--config-file=none', '--interface=127.0.0.1', '--listen-ng=127.0.0.1:22426', `--recording-dir=${dir}`, '--log-level=0']);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines.length, r.stderr).toBe(1);
      expect(lines[0]).toContain('--recording-dir');
      expect(lines[0]).toMatch(/read-only/);
    } finally {
      unmount(dir);
    }
  });

  it('a disk that fills up mid-call ends the file on a whole record; every packet is still forwarded', async () => {
    // 256 KiB: room for the probe files at start-up, then roughly 1000 records of 216 bytes.
    const dir = mountTmpfs('size=256k');
    const relay = await startNgrelay({ ngPort: 22427, portMin: 43300, portMax: 43399, deleteDelay: 0, extraArgs: [`--recording-dir=${dir}`] });
    const ng = await NgRawClient.open(22427);
    try {
      const call = await setUpCall(ng, 'full-1', { 'record-call': 'yes' });
      // Far more than fits: 2 x 1500 RTP packets.
      for (let from = 0; from < 1500; from += 100) await exchange(call, from, from + 100);
      expect(call.caller.count).toBe(1500);
      expect(call.callee.count).toBe(1500);
      const rec = (await query(ng, 'full-1'))['recording'] as Record<string, unknown>;
      expect(rec['recorded']).toBe('yes');
      expect(Number(rec['packets written'])).toBeGreaterThan(0);
      expect(Number(rec['packets written'])).toBeLessThan(3000);
      expect(String(rec['error'] ?? '')).toMatch(/ENOSPC|no space/i);
      const [file] = filesIn(path.join(dir, 'spool'), '.pcap');
      const bytes = readFileSync(file as string);
      let off = 24;
      let records = 0;
      while (off + 16 <= bytes.length) {
        off += 16 + bytes.readUInt32LE(off + 8);
        records++;
      }
      expect(off).toBe(bytes.length);
      expect(records).toBe(Number(rec['packets written']));
      readPcap(file as string, [call.callerSide, call.calleeSide], []);
      await call.close();
    } finally {
      ng.close();
      await relay.stop();
      unmount(dir);
    }
  }, 60_000);
});
