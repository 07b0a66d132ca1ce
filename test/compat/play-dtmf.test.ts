/**
 * play DTMF side by side with rtpengine 10.5 (which needs the `inject DTMF` flag and then transcodes; ngrelay
 * injects without it): both parties send PCMU every 20 ms for the whole script, events are played both
 * ways, and the replies and the events each party receives (digit, volume, marker, the durations of the
 * packets, the End packets) must be the same. For ngrelay the stream must stay the party's own: its SSRC,
 * sequence numbers without a gap or a duplicate across the event, the event's timestamp between the media
 * packets around it — judged by tshark on a pcap of what the receiving party got (`rtpevent`, `rtp,streams`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { toPlain, type BInputDict } from '../support/bencode';
import { writeReceivedPcap, type ReceivedDatagram } from '../support/pcap-file';
import { rtpStreams, tshark } from '../support/tshark';

const CALL = 'play-dtmf-1';
interface Step {
  request: BInputDict;
  /** ms to let the media run after the request. */
  waitMs: number;
}
const STEPS: Step[] = [
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a', code: '5', duration: 100, volume: 10 }, waitMs: 500 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a', code: 11, duration: 250, volume: 12 }, waitMs: 700 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-b', digit: '#', duration: 200, volume: 5, pause: 100 }, waitMs: 600 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a', code: 'C', duration: 40, volume: -20 }, waitMs: 500 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a' }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a', code: 'X' }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'tag-a', code: 17 }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': CALL, code: 3 }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': CALL }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': CALL, 'from-tag': 'nobody', code: 3 }, waitMs: 0 },
  { request: { command: 'play DTMF', 'call-id': 'no-such-call', 'from-tag': 'tag-a', code: 3 }, waitMs: 0 },
  { request: { command: 'play DTMF', 'from-tag': 'tag-a', code: 3 }, waitMs: 0 },
];

const sdp = (port: number): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', ''].join('\r\n');

function pcmu(seq: number, ssrc: number): Buffer {
  const b = Buffer.alloc(172, 0x11);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE((seq * 160) >>> 0, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

interface Party {
  socket: dgram.Socket;
  port: number;
  got: ReceivedDatagram[];
}
async function party(): Promise<Party> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', () => r()));
  const port = socket.address().port;
  const got: ReceivedDatagram[] = [];
  socket.on('message', (m, rinfo) => got.push({ data: m, srcPort: rinfo.port, dstPort: port, atMs: Date.now() }));
  return { socket, port, got };
}

/** One event as the receiving party saw it. */
interface SeenEvent {
  event: number;
  volume: number;
  marker: boolean[];
  durations: number[];
  ends: number;
}
function events(got: readonly ReceivedDatagram[]): SeenEvent[] {
  const out: SeenEvent[] = [];
  let lastTs = -1;
  // In sequence order, not arrival order: on a loaded machine either relay's packets may arrive swapped
  // (seen with rtpengine 10.5), which says nothing about what it sent. Order itself is checked below.
  const base = got.length > 0 ? got[0]!.data.readUInt16BE(2) : 0;
  const bySeq = [...got].sort((x, y) => ((x.data.readUInt16BE(2) - base) & 0xffff) - ((y.data.readUInt16BE(2) - base) & 0xffff));
  for (const { data } of bySeq) {
    if ((data[1]! & 0x7f) !== 101) continue;
    const ts = data.readUInt32BE(4);
    if (ts !== lastTs) out.push({ event: data[12]!, volume: data[13]! & 0x3f, marker: [], durations: [], ends: 0 });
    lastTs = ts;
    const e = out[out.length - 1]!;
    e.marker.push((data[1]! & 0x80) !== 0);
    if (data[13]! & 0x80) e.ends++;
    e.durations.push(data.readUInt16BE(14));
  }
  return out;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Run {
  replies: unknown[];
  toA: ReceivedDatagram[];
  toB: ReceivedDatagram[];
  relayPorts: { toA: number; toB: number };
  query: Record<string, unknown>;
}

async function runScript(start: typeof startRtpengine): Promise<Run> {
  const relay = await startOnRandomPorts(start);
  const ng = await NgRawClient.open(relay.ngPort);
  const a = await party();
  const b = await party();
  let sending = true;
  try {
    const offer = await ng.request({ command: 'offer', 'call-id': CALL, 'from-tag': 'tag-a', sdp: sdp(a.port), flags: ['inject DTMF'] });
    const toB = Number(/m=audio (\d+)/.exec(String((toPlain(offer.dict) as Record<string, unknown>)['sdp']))?.[1]);
    const answer = await ng.request({ command: 'answer', 'call-id': CALL, 'from-tag': 'tag-a', 'to-tag': 'tag-b', sdp: sdp(b.port), flags: ['inject DTMF'] });
    const toA = Number(/m=audio (\d+)/.exec(String((toPlain(answer.dict) as Record<string, unknown>)['sdp']))?.[1]);
    // Media both ways every 20 ms, bounded: at most 400 packets each (8 s).
    const media = (async () => {
      for (let seq = 1000; sending && seq < 1400; ++seq) {
        a.socket.send(pcmu(seq, 0xaaaa), toA, '127.0.0.1');
        b.socket.send(pcmu(seq, 0xbbbb), toB, '127.0.0.1');
        await sleep(20);
      }
    })();
    await sleep(300);
    const replies: unknown[] = [];
    for (const step of STEPS) {
      replies.push(toPlain((await ng.request(step.request)).dict));
      await sleep(step.waitMs);
    }
    await sleep(200);
    sending = false;
    await media;
    await sleep(100);
    const query = toPlain((await ng.request({ command: 'query', 'call-id': CALL })).dict) as Record<string, unknown>;
    return { replies, toA: a.got, toB: b.got, relayPorts: { toA, toB }, query };
  } finally {
    sending = false;
    a.socket.close();
    b.socket.close();
    ng.close();
    await relay.stop();
  }
}

describe('play DTMF side by side with rtpengine 10.5', () => {
  let reference: Run;
  let candidate: Run;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-play-dtmf-'));
    reference = await runScript(startRtpengine);
    candidate = await runScript(startNgrelay);
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('replies as rtpengine does', () => {
    expect(candidate.replies).toEqual(reference.replies);
  });

  it('sends the same events, packet for packet, both ways', () => {
    const refB = events(reference.toB);
    expect(refB.length).toBe(3); // the reference did inject: the comparison means something
    expect(events(candidate.toB)).toEqual(refB);
    expect(events(candidate.toA)).toEqual(events(reference.toA));
  });

  it('keeps the party\'s stream: its SSRC, no sequence gap or duplicate, the event timestamp in the media clock', () => {
    for (const [got, ssrc] of [[candidate.toB, 0xaaaa], [candidate.toA, 0xbbbb]] as const) {
      expect(new Set(got.map((g) => g.data.readUInt32BE(8)))).toEqual(new Set([ssrc]));
      const seqs = got.map((g) => g.data.readUInt16BE(2));
      for (let i = 1; i < seqs.length; ++i) expect(((seqs[i]! - seqs[i - 1]!) & 0xffff)).toBe(1);
      // Each event starts where the party's media clock stood: after the audio before it, before the audio after.
      for (let i = 1; i < got.length - 1; ++i) {
        const d = got[i]!.data;
        if ((d[1]! & 0x80) === 0 || (d[1]! & 0x7f) !== 101) continue;
        const before = got[i - 1]!.data.readUInt32BE(4);
        const after = got.slice(i).find((g) => (g.data[1]! & 0x7f) === 0)!.data.readUInt32BE(4);
        expect(d.readUInt32BE(4)).toBeGreaterThan(before);
        expect(d.readUInt32BE(4)).toBeLessThan(after);
      }
    }
  });

  it('tshark sees the events and no loss in what B received', () => {
    const file = path.join(dir, 'to-b.pcap');
    writeReceivedPcap(file, candidate.toB);
    const port = candidate.toB[0]!.dstPort;
    const streams = rtpStreams(file, [port]);
    expect(streams).toEqual([{ ssrc: 0xaaaa, packets: candidate.toB.length, lost: 0 }]);
    const r = tshark(['-r', file, '-d', `udp.port==${port},rtp`, '-Y', 'rtpevent', '-T', 'fields', '-e', 'rtpevent.event_id', '-e', 'rtpevent.end_of_event', '-e', 'rtp.marker']);
    expect(r.status).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => l.split('\t'));
    const ended = rows.filter((row) => row[1] === '1' || row[1] === 'True');
    const starts = rows.filter((row) => row[2] === '1' || row[2] === 'True');
    expect(starts.map((row) => Number(row[0]))).toEqual([5, 11, 14]);
    expect(ended.length).toBe(9);
  });

  it('query reports no loss for the streams the events went into', () => {
    const text = JSON.stringify(candidate.query);
    // Both parties' RTP streams report their figures, and none lost a packet.
    expect(text.match(/"packets lost":0/g)?.length).toBe(2);
    expect(text).not.toMatch(/"packets lost":[1-9]/);
    expect(candidate.query['result']).toBe('ok');
  });
});
