/**
 * What the log of the real binary tells a person about a call (real RTP through the native engine): the
 * offer/answer lines name the ports, the end logs each stream's final packets/bytes/errors with the reason
 * (delete, and shutdown for calls still up when the relay stops), a broken SDP names its line. Started with
 * Debian's `recording-method = proc`, a call that asks for recording is recorded as pcap.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { countingParty as party, plainAudioSdp as sdp, rtp172 as rtp, until, type CountingParty as Party } from '../support/counting-party';

const ngPort = 41000 + Math.floor(Math.random() * 2000);
const portMin = 56000 + 2 * Math.floor(Math.random() * 2000);


let relay: RelayUnderTest;
let ng: NgRawClient;
let recordingDir: string;
const parties: Party[] = [];

beforeAll(async () => {
  recordingDir = mkdtempSync(join(tmpdir(), 'ngrelay-call-log-'));
  relay = await startNgrelay({
    ngPort,
    portMin,
    portMax: portMin + 99,
    deleteDelay: 0,
    extraArgs: ['--recording-method=proc', `--recording-dir=${recordingDir}`],
  });
  ng = await NgRawClient.open(ngPort);
}, 30_000);

afterAll(async () => {
  for (const p of parties) p.socket.close();
  ng?.close();
  await relay?.stop();
  rmSync(recordingDir, { recursive: true, force: true });
});

function logLines(): Array<Record<string, unknown>> {
  return relay.process.stderrText
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A call from 127.0.0.31 to 127.0.0.32 with `count` RTP packets each way; returns the relay's two ports. */
async function call(callId: string, count: number, extra: Record<string, string> = {}): Promise<{ forA: number; forB: number }> {
  const a = await party('127.0.0.31');
  const b = await party('127.0.0.32');
  parties.push(a, b);
  const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp('127.0.0.31', a.port), ...extra });
  const forB = Number(/m=audio (\d+)/.exec(textOf(offer.dict, 'sdp')!)![1]);
  const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp('127.0.0.32', b.port) });
  const forA = Number(/m=audio (\d+)/.exec(textOf(answer.dict, 'sdp')!)![1]);
  for (let i = 0; i < count; i++) {
    a.socket.send(rtp(i, 0x1111), forA, '127.0.0.1');
    b.socket.send(rtp(i, 0x2222), forB, '127.0.0.1');
  }
  await until('RTP both ways', () => a.received >= count && b.received >= count);
  return { forA, forB };
}

describe('the log of a call', () => {
  it('recording-method = proc is warned about once at start', () => {
    const warnings = logLines().filter((l) => String(l['msg']).startsWith('option --recording-method'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!['msg']).toContain('recorded as pcap under --recording-dir');
  });

  it('offer/answer lines name the ports, the end lists final packets/bytes per stream and the reason', async () => {
    const { forA, forB } = await call('log-1', 30, { 'record-call': 'yes' });
    const findAnswered = () => logLines().find((l) => l['msg'] === 'answer processed' && l['call-id'] === 'log-1');
    await until('the answer line', () => findAnswered() !== undefined);
    const answered = findAnswered();
    expect(answered?.['ports']).toEqual({ offerer: [`127.0.0.1:${forA}/${forA + 1}`], answerer: [`127.0.0.1:${forB}/${forB + 1}`] });

    await ng.request({ command: 'delete', 'call-id': 'log-1', 'from-tag': 'A' });
    await until('call ended', () => logLines().some((l) => l['msg'] === 'call ended' && l['call-id'] === 'log-1'));
    const stats = logLines().filter((l) => l['msg'] === 'final packet stats' && l['call-id'] === 'log-1');
    const rtpOf = (port: number) => stats.find((l) => l['component'] === 'rtp' && l['local'] === `127.0.0.1:${port}`);
    expect(rtpOf(forA)).toMatchObject({ tag: 'A', packets: 30, bytes: 30 * 172, errors: 0 });
    expect(rtpOf(forB)).toMatchObject({ tag: 'B', packets: 30, bytes: 30 * 172, errors: 0, remote: expect.stringMatching(/^127\.0\.0\.32:/) });
    expect(stats.filter((l) => l['component'] === 'rtcp')).toHaveLength(2);
    const ended = logLines().find((l) => l['msg'] === 'call ended' && l['call-id'] === 'log-1');
    expect(ended).toMatchObject({ reason: 'delete' });
    expect(typeof ended?.['duration']).toBe('number');
  });

  it('the recorded call (proc method) left a pcap under recording-dir', async () => {
    await until('pcap moved to pcaps/', () => readdirSync(join(recordingDir, 'pcaps')).some((f) => f.startsWith('log-1')));
    const pcap = readdirSync(join(recordingDir, 'pcaps')).find((f) => f.startsWith('log-1'))!;
    // 24-byte pcap header plus 60 records of 172 bytes of payload each, at least.
    expect(statSync(join(recordingDir, 'pcaps', pcap)).size).toBeGreaterThan(24 + 60 * 172);
  });

  it('an SDP that does not parse: the log names the line, the reply says "Failed to parse SDP"', async () => {
    const bad = 'v=0\r\no=- 1 1 IN IP4 127.0.0.31\r\ns=-\r\nc=IN IP4 somewhere\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
    const reply = await ng.request({ command: 'offer', 'call-id': 'log-bad', 'from-tag': 'A', sdp: bad });
    expect(textOf(reply.dict, 'error-reason')).toBe('Failed to parse SDP');
    const find = () => logLines().find((l) => l['msg'] === 'SDP not accepted' && l['call-id'] === 'log-bad');
    await until('the log line', () => find() !== undefined);
    expect(find()?.['detail']).toBe('line 4: bad c= address: "c=IN IP4 somewhere"');
  });

  it('a call still up when the relay stops is logged with reason shutdown and its final stats', async () => {
    await call('log-2', 10);
    await relay.stop();
    const lines = logLines();
    expect(lines.find((l) => l['msg'] === 'call ended' && l['call-id'] === 'log-2')).toMatchObject({ reason: 'shutdown' });
    const stats = lines.filter((l) => l['msg'] === 'final packet stats' && l['call-id'] === 'log-2' && l['component'] === 'rtp');
    expect(stats.map((l) => l['packets'])).toEqual([10, 10]);
  });
});
