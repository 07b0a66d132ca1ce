/**
 * The classic tc (clsact) attachment, which kernels without tcx (before 6.6) get, forced on this kernel with
 * NGRELAY_KERNEL_ATTACH=tc: the hand-over test of kernel-path-load.test.ts runs through it unchanged, and a
 * `kill -9` leaves its filter (a clsact filter is not owned by the process, unlike a tcx bpf_link) until the
 * next start replaces it. Loopback only; the filter has ngrelay's fixed handle and priority on lo.
 */
import { execFileSync } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { relayArgs, LOOPBACK } from '../support/relay';
import { startNgProcess, type ManagedProcess } from '../support/process';
import { NgRawClient } from '../support/ng-client';
import { freeMediaRange, freeTcpPort } from '../support/free-ports';
import { isDict, type BDict, type BValue } from '../support/bencode';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
// The hand-over/take-back test at 50k pps, registered here a second time, now through clsact.
import './kernel-path-load.test';

/** kernel_path.cpp's kTcHandle / kTcPriority ("NG"). */
const TC_HANDLE = '0x4e47';
let clsactBefore = false;

function loIngressFilters(): string {
  return execFileSync('tc', ['filter', 'show', 'dev', 'lo', 'ingress'], { encoding: 'utf8' });
}

/** The ngrelay filter on lo's ingress: its BPF program id, or null when there is none. */
function ngrelayFilter(): number | null {
  const line = loIngressFilters()
    .split('\n')
    .find((l) => l.includes(`handle ${TC_HANDLE}`) && l.includes('bpf'));
  if (!line) return null;
  const m = /\bid (\d+)/.exec(line);
  return m ? Number(m[1]) : -1;
}

beforeAll(() => {
  process.env.NGRELAY_KERNEL_ATTACH = 'tc';
  clsactBefore = execFileSync('tc', ['qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8' }).includes('clsact');
});

afterAll(() => {
  delete process.env.NGRELAY_KERNEL_ATTACH;
  // A failed test may leave a killed relay's filter; the clsact qdisc goes too if this file created it.
  if (ngrelayFilter() !== null) execFileSync('tc', ['filter', 'del', 'dev', 'lo', 'ingress', 'pref', String(Number(TC_HANDLE)), 'handle', TC_HANDLE, 'bpf']);
  if (!clsactBefore) execFileSync('tc', ['qdisc', 'del', 'dev', 'lo', 'clsact'], { stdio: 'ignore' });
});

const stoppers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stoppers.splice(0).reverse()) await stop();
});

describe('kernel fast path through clsact (NGRELAY_KERNEL_ATTACH=tc)', () => {
  it('attaches a classic tc filter instead of a tcx link, and removes it when closed', () => {
    const engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 1 << 20, table: 0, kernelAddresses: [LOOPBACK] });
    try {
      expect(engine.info().kernelPath).toMatchObject({ active: true, attach: 'tc' });
      expect(engine.info().kernelPath?.interfaces).toContain('lo');
      expect(ngrelayFilter()).not.toBeNull();
    } finally {
      engine.close();
    }
    expect(ngrelayFilter()).toBeNull();
  });

  it('kill -9 leaves the filter forwarding; the next start replaces it, and a clean stop removes it', async () => {
    const first = await startRelay();
    expect(first.proc.stderrText + first.proc.stdoutText).toMatch(/"attach":"tc".*kernel fast path on/);
    const c = await call(first.ng, 'clsact-1');
    await send(c, 100);
    expect(await kernelized(first.ng, 'clsact-1')).toEqual([true, true]);
    const staleProgram = ngrelayFilter();
    expect(staleProgram).not.toBeNull();

    first.proc.killNow();
    expect(await waitUntil(() => first.proc.hasExited, 5000)).toBe(true);
    // Nothing owned the filter: it is still there, with the dead relay's rules, and forwards the call.
    expect(ngrelayFilter()).toBe(staleProgram);
    await send(c, 50);

    const second = await startRelay();
    expect(second.proc.stderrText + second.proc.stdoutText).toMatch(/"attach":"tc".*kernel fast path on/);
    const replaced = ngrelayFilter();
    expect(replaced).not.toBeNull();
    expect(replaced).not.toBe(staleProgram);
    expect(loIngressFilters().split('\n').filter((l) => l.includes(`handle ${TC_HANDLE}`))).toHaveLength(1);
    // The old call's packets find no rule any more: its ports are closed, nothing arrives.
    const before = [c.a.count, c.b.count];
    await send(c, 50, false);
    await sleep(300);
    expect([c.a.count, c.b.count]).toEqual(before);

    await second.stop();
    expect(ngrelayFilter()).toBeNull();
  });
});

interface Relay {
  ng: NgRawClient;
  proc: ManagedProcess;
  stop(): Promise<void>;
}

async function startRelay(): Promise<Relay> {
  const ngPort = await freeTcpPort();
  const range = await freeMediaRange(40);
  const args = relayArgs({ ngPort, ...range }).map((a) => (a === '--table=-1' ? '--table=0' : a));
  const proc = await startNgProcess(
    { name: 'ngrelay', command: process.execPath, args: [NGRELAY_BIN, ...args], cwd: REPO_ROOT },
    { host: LOOPBACK, port: ngPort, deadlineMs: 15_000 },
  );
  const ng = await NgRawClient.open(ngPort);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    ng.close();
    await proc.stop();
  };
  stoppers.push(stop);
  return { ng, proc, stop };
}

interface Call {
  a: Party;
  b: Party;
  portForA: number;
  portForB: number;
  sent: number;
}

function sdp(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

function mPort(reply: BDict): number {
  const m = /m=audio (\d+) /.exec((reply['sdp'] as Buffer | undefined)?.toString('latin1') ?? '');
  if (!m) throw new Error('offer/answer without an m= line');
  return Number(m[1]);
}

async function call(ng: NgRawClient, callId: string): Promise<Call> {
  const a = await Party.open();
  const b = await Party.open();
  stoppers.push(async () => {
    await a.close();
    await b.close();
  });
  const offer = await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(a.port) });
  const answer = await ng.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) });
  return { a, b, portForA: mPort(answer.dict), portForB: mPort(offer.dict), sent: 0 };
}

/** `count` packets each way; with `expectAll`, waits until both parties have everything sent so far. */
async function send(c: Call, count: number, expectAll = true): Promise<void> {
  for (let i = 0; i < count; i++) {
    c.a.sendNoWait(rtpPacket({ seq: c.sent + i, ssrc: 0xa }), c.portForA, LOOPBACK);
    c.b.sendNoWait(rtpPacket({ seq: c.sent + i, ssrc: 0xb }), c.portForB, LOOPBACK);
    await sleep(1);
  }
  c.sent += count;
  if (expectAll) expect(await waitUntil(() => c.a.count === c.sent && c.b.count === c.sent, 5000)).toBe(true);
}

function get(v: BValue | undefined, ...path: string[]): BValue | undefined {
  let cur = v;
  for (const key of path) cur = cur !== undefined && isDict(cur) ? cur[key] : undefined;
  return cur;
}

/** For each RTP stream of the call in query: flagged "kernelized". */
async function kernelized(ng: NgRawClient, callId: string): Promise<boolean[]> {
  const q = await ng.request({ command: 'query', 'call-id': callId });
  const out: boolean[] = [];
  const tags = get(q.dict, 'tags');
  for (const mono of tags && isDict(tags) ? Object.values(tags) : []) {
    const medias = get(mono, 'medias');
    for (const media of Array.isArray(medias) ? medias : []) {
      const streams = get(media, 'streams');
      for (const s of Array.isArray(streams) ? streams : []) {
        const flags = ((get(s, 'flags') as BValue[] | undefined) ?? []).map(String);
        if (flags.includes('RTP')) out.push(flags.includes('kernelized'));
      }
    }
  }
  return out;
}
