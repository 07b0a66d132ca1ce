/**
 * The real `ngrelay` binary with `--table=0` (the kernel fast path), driven over ng: streams go to the kernel
 * and query says so ("kernelized", counters equal to what the parties received); a relay without the
 * capabilities starts with one warning and forwards in userspace; `kill -9` with streams in the kernel
 * leaves nothing forwarding. Loopback only; random ng and media ports.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { relayArgs, LOOPBACK } from '../support/relay';
import { startNgProcess, type ManagedProcess } from '../support/process';
import { NgRawClient } from '../support/ng-client';
import { freeMediaRange, freeTcpPort } from '../support/free-ports';
import { isDict, type BDict, type BValue } from '../support/bencode';
import { rtpPacket, sleep, waitUntil } from '../support/rtp-packets';

interface Party {
  socket: dgram.Socket;
  port: number;
  seqs: number[];
}

async function party(): Promise<Party> {
  const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  const p: Party = { socket, port: socket.address().port, seqs: [] };
  socket.on('message', (data) => p.seqs.push(data.readUInt16BE(2)));
  return p;
}

function sdp(port: number): string {
  return ['v=0', `o=- 1 1 IN IP4 ${LOOPBACK}`, 's=-', `c=IN IP4 ${LOOPBACK}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

function mPort(reply: BDict): number {
  const m = /m=audio (\d+) /.exec((reply['sdp'] as Buffer | undefined)?.toString('latin1') ?? '');
  if (!m) throw new Error('offer/answer without an m= line');
  return Number(m[1]);
}

let proc: ManagedProcess | null = null;
let ng: NgRawClient | null = null;
let parties: Party[] = [];

afterEach(async () => {
  ng?.close();
  ng = null;
  await proc?.stop();
  proc = null;
  for (const p of parties) p.socket.close();
  parties = [];
});

/** Starts ngrelay with --table=0, under `capsh --drop=...` when `dropCaps`. */
async function startRelay(dropCaps = false): Promise<number> {
  const ngPort = await freeTcpPort();
  const range = await freeMediaRange(40);
  const args = relayArgs({ ngPort, ...range }).map((a) => (a === '--table=-1' ? '--table=0' : a));
  const node = [process.execPath, NGRELAY_BIN, ...args];
  const quoted = node.map((a) => `'${a}'`).join(' ');
  const spec = dropCaps
    ? { name: 'ngrelay', command: 'capsh', args: ['--drop=cap_bpf,cap_net_admin,cap_sys_admin,cap_perfmon', '--', '-c', `exec ${quoted}`], cwd: REPO_ROOT }
    : { name: 'ngrelay', command: node[0]!, args: node.slice(1), cwd: REPO_ROOT };
  proc = await startNgProcess(spec, { host: LOOPBACK, port: ngPort, deadlineMs: 15_000 });
  ng = await NgRawClient.open(ngPort);
  return ngPort;
}

/** A call between two parties; each sends one packet so both ends are confirmed. */
async function call(callId: string) {
  const a = await party();
  const b = await party();
  parties.push(a, b);
  const offer = await ng!.request({ command: 'offer', 'call-id': callId, 'from-tag': 'A', sdp: sdp(a.port) });
  const portForB = mPort(offer.dict);
  const answer = await ng!.request({ command: 'answer', 'call-id': callId, 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.port) });
  const portForA = mPort(answer.dict);
  return { a, b, portForA, portForB };
}

async function send(c: Awaited<ReturnType<typeof call>>, first: number, count: number): Promise<void> {
  for (let i = first; i < first + count; i++) {
    c.a.socket.send(rtpPacket({ seq: i, ssrc: 0xa }), c.portForA, LOOPBACK);
    c.b.socket.send(rtpPacket({ seq: i, ssrc: 0xb }), c.portForB, LOOPBACK);
    await sleep(1);
  }
}

function get(v: BValue | undefined, ...path: string[]): BValue | undefined {
  let cur = v;
  for (const key of path) cur = cur !== undefined && isDict(cur) ? cur[key] : undefined;
  return cur;
}

/** query's RTP streams of a call: flags and packet counts per tag. */
async function rtpStreams(callId: string): Promise<Array<{ tag: string; flags: string[]; packets: number }>> {
  const q = await ng!.request({ command: 'query', 'call-id': callId });
  const out: Array<{ tag: string; flags: string[]; packets: number }> = [];
  const tags = get(q.dict, 'tags');
  if (!tags || !isDict(tags)) throw new Error('query without tags');
  for (const [tag, mono] of Object.entries(tags)) {
    const medias = get(mono, 'medias');
    for (const media of Array.isArray(medias) ? medias : []) {
      const streams = get(media, 'streams');
      for (const s of Array.isArray(streams) ? streams : []) {
        const flags = (get(s, 'flags') as BValue[] | undefined)?.map((f) => String(f)) ?? [];
        if (!flags.includes('RTP')) continue;
        out.push({ tag, flags, packets: Number(get(s, 'stats', 'packets') ?? -1) });
      }
    }
  }
  return out;
}

describe('ngrelay --table=0', () => {
  it('hands the call to the kernel: query flags it "kernelized" and its counters match the receivers', async () => {
    await startRelay();
    expect(proc!.stderrText + proc!.stdoutText).toMatch(/kernel fast path on/);
    const c = await call('kp-1');
    await send(c, 0, 200);
    expect(await waitUntil(() => c.a.seqs.length === 200 && c.b.seqs.length === 200, 5000)).toBe(true);
    expect(c.b.seqs).toEqual([...Array(200).keys()]);
    const streams = await rtpStreams('kp-1');
    expect(streams).toHaveLength(2);
    for (const s of streams) {
      expect(s.flags).toContain('kernelized');
      expect(s.packets).toBe(200);
    }
  });

  it('without CAP_BPF/CAP_NET_ADMIN: one warning saying why, and media flows in userspace', async () => {
    await startRelay(true);
    const c = await call('kp-2');
    await send(c, 0, 50);
    expect(await waitUntil(() => c.a.seqs.length === 50 && c.b.seqs.length === 50, 5000)).toBe(true);
    const log = proc!.stderrText + proc!.stdoutText;
    const warnings = log.split('\n').filter((l) => l.includes('kernel fast path'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/kernel fast path unavailable: the kernel refused to load the BPF program .*CAP_BPF.*forwarding in userspace/);
    for (const s of await rtpStreams('kp-2')) expect(s.flags).not.toContain('kernelized');
  });

  it('kill -9 with streams in the kernel: nothing forwards afterwards (the bpf_links die with the process)', async () => {
    await startRelay();
    const c = await call('kp-3');
    await send(c, 0, 100);
    expect(await waitUntil(() => c.b.seqs.length === 100, 5000)).toBe(true);
    expect((await rtpStreams('kp-3')).every((s) => s.flags.includes('kernelized'))).toBe(true);
    ng!.close();
    ng = null;
    proc!.killNow();
    expect(await waitUntil(() => proc!.hasExited, 5000)).toBe(true);
    await send(c, 100, 50);
    await sleep(300);
    expect(c.b.seqs).toHaveLength(100);
    expect(c.a.seqs).toHaveLength(100);
  });
});
