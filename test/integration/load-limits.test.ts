/**
 * --max-sessions on the real bin/ngrelay with real RTP: N calls forward media; the N+1th new offer gets
 * rtpengine's load-limit reply (`result: load limit` for a client that supports it, the error otherwise)
 * while the N calls keep forwarding and their re-offers and answers go on; `rtpengine-ctl set maxsessions`
 * raises the limit live.
 */
import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { Party, rtpPacket, waitUntil } from '../support/rtp-packets';
import { buildSdp } from '../support/sdp-fixtures';
import { freeMediaRange, freeTcpPort, freeUdpPort } from '../support/free-ports';

const MAX_SESSIONS = 2;

function ctl(port: number, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/rtpengine-ctl', ['-ip', '127.0.0.1', '-port', String(port), ...command.split(' ')], { timeout: 10_000 }, (err, out) =>
      err ? reject(err) : resolve(out),
    );
  });
}

function audioSdp(party: Party): string {
  return buildSdp({ address: party.address, media: [{ type: 'audio', port: party.port, direction: 'sendrecv' }] });
}

function relayPort(sdp: unknown): number {
  const m = /m=audio (\d+) /.exec(String(sdp));
  if (!m) throw new Error(`no m= line in ${String(sdp)}`);
  return Number(m[1]);
}

interface Call {
  id: string;
  caller: Party;
  callee: Party;
  /** Relay ports each party sends to. */
  callerSendsTo: number;
  calleeSendsTo: number;
}

describe('--max-sessions with real RTP', () => {
  let relay: RelayUnderTest;
  let ng: NgRawClient;
  let cliPort: number;
  const calls: Call[] = [];
  const parties: Party[] = [];

  async function party(): Promise<Party> {
    const p = await Party.open('127.0.0.1');
    parties.push(p);
    return p;
  }

  async function startCall(id: string): Promise<Call> {
    const caller = await party();
    const callee = await party();
    const offer = await ng.request({ command: 'offer', 'call-id': id, 'from-tag': `${id}-a`, sdp: audioSdp(caller), supports: ['load limit'] });
    expect(offer.plain['result']).toBe('ok');
    const answer = await ng.request({ command: 'answer', 'call-id': id, 'from-tag': `${id}-a`, 'to-tag': `${id}-b`, sdp: audioSdp(callee) });
    expect(answer.plain['result']).toBe('ok');
    // The offer's SDP goes to the callee: it names the port the callee sends to; the answer's, the caller's.
    return { id, caller, callee, calleeSendsTo: relayPort(offer.plain['sdp']), callerSendsTo: relayPort(answer.plain['sdp']) };
  }

  /** Sends `count` RTP packets each way and waits until both parties got them all. */
  async function forwards(call: Call, count: number, ssrc: number): Promise<boolean> {
    const before = [call.caller.count, call.callee.count];
    for (let seq = 0; seq < count; seq++) {
      await call.caller.send(rtpPacket({ seq, ssrc }), call.callerSendsTo, '127.0.0.1');
      await call.callee.send(rtpPacket({ seq, ssrc: ssrc + 1 }), call.calleeSendsTo, '127.0.0.1');
    }
    return waitUntil(() => call.callee.count - before[1]! >= count && call.caller.count - before[0]! >= count, 3000);
  }

  beforeAll(async () => {
    const [ngPort, cli, range] = await Promise.all([freeUdpPort(), freeTcpPort(), freeMediaRange()]);
    cliPort = cli;
    relay = await startNgrelay({ ngPort, ...range, extraArgs: [`--max-sessions=${MAX_SESSIONS}`, `--listen-cli=127.0.0.1:${cli}`] });
    ng = await NgRawClient.open(ngPort);
    for (let i = 0; i < MAX_SESSIONS; i++) calls.push(await startCall(`limit-call-${i}`));
  }, 60_000);

  afterAll(async () => {
    ng?.close();
    for (const p of parties) await p.close();
    await relay?.stop();
  });

  it(`forwards RTP on the ${MAX_SESSIONS} calls below the limit`, async () => {
    for (const [i, call] of calls.entries()) expect(await forwards(call, 5, 1000 + 10 * i)).toBe(true);
  });

  it('refuses the next new offer: "load limit" for a client that supports it, rtpengine\'s error otherwise', async () => {
    const p = await party();
    const sdp = audioSdp(p);
    const withSupport = await ng.request({ command: 'offer', 'call-id': 'limit-over', 'from-tag': 'x', sdp, supports: ['load limit'] });
    expect(withSupport.plain).toEqual({ result: 'load limit', message: 'Parallel session limit reached' });
    const without = await ng.request({ command: 'offer', 'call-id': 'limit-over', 'from-tag': 'x', sdp });
    expect(without.plain).toEqual({ result: 'error', 'error-reason': 'Parallel session limit reached' });
    const list = await ng.request({ command: 'list' });
    expect(list.plain['calls']).toHaveLength(MAX_SESSIONS);
    expect(await ctl(cliPort, 'list totals')).toMatch(/ Total rejected sessions +:2\n/);
  });

  it('lets the running calls go on: re-offer, answer and RTP after the refusal', async () => {
    const call = calls[0]!;
    const reoffer = await ng.request({ command: 'offer', 'call-id': call.id, 'from-tag': `${call.id}-a`, sdp: audioSdp(call.caller) });
    expect(reoffer.plain['result']).toBe('ok');
    const reanswer = await ng.request({ command: 'answer', 'call-id': call.id, 'from-tag': `${call.id}-a`, 'to-tag': `${call.id}-b`, sdp: audioSdp(call.callee) });
    expect(reanswer.plain['result']).toBe('ok');
    for (const [i, c] of calls.entries()) expect(await forwards(c, 5, 2000 + 10 * i)).toBe(true);
  });

  it('takes a new call once rtpengine-ctl raises the limit live', async () => {
    expect(await ctl(cliPort, `set maxsessions ${MAX_SESSIONS + 1}`)).toBe(`Success setting maxsessions to ${MAX_SESSIONS + 1}\n`);
    const extra = await startCall('limit-call-extra');
    expect(await forwards(extra, 5, 3000)).toBe(true);
    const p = await party();
    const over = await ng.request({ command: 'offer', 'call-id': 'limit-over-2', 'from-tag': 'x', sdp: audioSdp(p), supports: ['load limit'] });
    expect(over.plain['result']).toBe('load limit');
  });
});
