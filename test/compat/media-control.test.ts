/**
 * block/unblock media and silence/unsilence media mid-call, the same script through rtpengine 10.5 and
 * ngrelay: after each command five PCMU (or PCMA) packets go each way, and what each party receives — how
 * many packets, and whether the payload is the sender's or the codec's silence — must be the same, as must
 * every reply. A blocked direction's packets still count in `query`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { toPlain, type BInputDict } from '../support/bencode';
import { CollectingSocket, collectingSocket } from '../support/udp-collector';

interface Step {
  label: string;
  request?: BInputDict;
  /** Payload type of the burst after the request (none = no burst); 'dtmf': PCMU and telephone-event alternating. */
  burst?: 0 | 8 | 'dtmf';
}

const CALL = 'media-control-1';
const STEPS: Step[] = [
  { label: 'warm-up', burst: 0 },
  { label: 'flowing', burst: 0 },
  { label: 'block from-tag A', request: { command: 'block media', 'call-id': CALL, 'from-tag': 'tag-a' }, burst: 0 },
  { label: 'unblock from-tag A', request: { command: 'unblock media', 'call-id': CALL, 'from-tag': 'tag-a' }, burst: 0 },
  { label: 'block from A to B', request: { command: 'block media', 'call-id': CALL, 'from-tag': 'tag-a', 'to-tag': 'tag-b' }, burst: 0 },
  { label: 'unblock from A to B', request: { command: 'unblock media', 'call-id': CALL, 'from-tag': 'tag-a', 'to-tag': 'tag-b' }, burst: 0 },
  { label: 'block, no tag', request: { command: 'block media', 'call-id': CALL }, burst: 0 },
  { label: 'unblock, no tag', request: { command: 'unblock media', 'call-id': CALL }, burst: 0 },
  { label: 'block all', request: { command: 'block media', 'call-id': CALL, flags: ['all'] }, burst: 0 },
  { label: 'unblock all', request: { command: 'unblock media', 'call-id': CALL, flags: ['all'] }, burst: 0 },
  { label: 'silence from-tag B (PCMU)', request: { command: 'silence media', 'call-id': CALL, 'from-tag': 'tag-b' }, burst: 0 },
  { label: 'still silenced (PCMA)', burst: 8 },
  { label: 'unsilence from-tag B', request: { command: 'unsilence media', 'call-id': CALL, 'from-tag': 'tag-b' }, burst: 0 },
  { label: 'silence to-tag B only', request: { command: 'silence media', 'call-id': CALL, 'to-tag': 'tag-b' }, burst: 0 },
  { label: 'unsilence to-tag B only', request: { command: 'unsilence media', 'call-id': CALL, 'to-tag': 'tag-b' }, burst: 0 },
  { label: 'audio and DTMF flowing', burst: 'dtmf' },
  { label: 'block DTMF from-tag A', request: { command: 'block DTMF', 'call-id': CALL, 'from-tag': 'tag-a' }, burst: 'dtmf' },
  { label: 'unblock DTMF from-tag A', request: { command: 'unblock DTMF', 'call-id': CALL, 'from-tag': 'tag-a' }, burst: 'dtmf' },
  { label: 'block DTMF, no tag', request: { command: 'block DTMF', 'call-id': CALL }, burst: 'dtmf' },
  { label: 'unblock DTMF, no tag', request: { command: 'unblock DTMF', 'call-id': CALL }, burst: 'dtmf' },
  { label: 'block DTMF, unknown from-tag', request: { command: 'block DTMF', 'call-id': CALL, 'from-tag': 'nobody' } },
  { label: 'unknown from-tag', request: { command: 'block media', 'call-id': CALL, 'from-tag': 'nobody' } },
  { label: 'unknown call', request: { command: 'silence media', 'call-id': 'no-such-call', 'from-tag': 'tag-a' } },
  { label: 'no call-id', request: { command: 'unblock media' } },
];

const sdp = (port: number): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000', 'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15', ''].join('\r\n');

function rtp(seq: number, pt: number, ssrc: number): Buffer {
  if (pt === 101) {
    // RFC 4733 event: digit 5, volume 10, duration growing with the sequence number.
    const e = Buffer.alloc(16);
    e[0] = 0x80;
    e[1] = pt;
    e.writeUInt16BE(seq, 2);
    e.writeUInt32BE(16000, 4);
    e.writeUInt32BE(ssrc, 8);
    e[12] = 5;
    e[13] = 10;
    e.writeUInt16BE((seq * 160) & 0xffff, 14);
    return e;
  }
  const b = Buffer.alloc(172, 0x11);
  b[0] = 0x80;
  b[1] = pt;
  b.writeUInt16BE(seq, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

/** What one party received in one burst: packets, and the distinct payload bytes seen ("11" = as sent). */
type Seen = { packets: number; payload: string[]; seqs: number[]; types: number[] };
interface Outcome {
  label: string;
  reply: unknown;
  toA?: Seen;
  toB?: Seen;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const party = (): Promise<CollectingSocket> => collectingSocket();

function seen(got: Buffer[]): Seen {
  const payload = new Set<string>();
  for (const g of got) if ((g[1]! & 0x7f) !== 101) for (const byte of g.subarray(12)) payload.add(byte.toString(16).padStart(2, '0'));
  return { packets: got.length, payload: [...payload].sort(), seqs: got.map((g) => g.readUInt16BE(2)), types: got.map((g) => g[1]! & 0x7f) };
}

async function runScript(start: typeof startRtpengine): Promise<{ outcomes: Outcome[]; totals: unknown }> {
  const relay = await startOnRandomPorts(start);
  const ng = await NgRawClient.open(relay.ngPort);
  const a = await party();
  const b = await party();
  try {
    const offer = await ng.request({ command: 'offer', 'call-id': CALL, 'from-tag': 'tag-a', sdp: sdp(a.port) });
    // The offer's SDP goes to B: its port is where B sends; the answer's goes to A.
    const toB = Number(/m=audio (\d+)/.exec(String((toPlain(offer.dict) as Record<string, unknown>)['sdp']))?.[1]);
    const answer = await ng.request({ command: 'answer', 'call-id': CALL, 'from-tag': 'tag-a', 'to-tag': 'tag-b', sdp: sdp(b.port) });
    const toA = Number(/m=audio (\d+)/.exec(String((toPlain(answer.dict) as Record<string, unknown>)['sdp']))?.[1]);
    let seq = 100;
    const outcomes: Outcome[] = [];
    for (const step of STEPS) {
      const reply = step.request ? toPlain((await ng.request(step.request)).dict) : null;
      const outcome: Outcome = { label: step.label, reply };
      if (step.burst !== undefined) {
        a.got.length = 0;
        b.got.length = 0;
        for (let i = 0; i < 5; ++i, ++seq) {
          const pt = step.burst === 'dtmf' ? (i % 2 ? 101 : 0) : step.burst;
          a.socket.send(rtp(seq, pt, 0xaaaa), toA, '127.0.0.1');
          b.socket.send(rtp(seq, pt, 0xbbbb), toB, '127.0.0.1');
          await sleep(10);
        }
        await sleep(100);
        outcome.toA = seen(a.got);
        outcome.toB = seen(b.got);
      }
      outcomes.push(outcome);
    }
    const query = toPlain((await ng.request({ command: 'query', 'call-id': CALL })).dict) as { totals?: unknown };
    return { outcomes, totals: query.totals };
  } finally {
    a.socket.close();
    b.socket.close();
    ng.close();
    await relay.stop();
  }
}

describe('block/silence media side by side with rtpengine 10.5', () => {
  let reference: Awaited<ReturnType<typeof runScript>>;
  let candidate: Awaited<ReturnType<typeof runScript>>;
  beforeAll(async () => {
    reference = await runScript(startRtpengine);
    candidate = await runScript(startNgrelay);
  }, 120_000);
  afterAll(() => undefined);

  it('gives the same replies, error strings included', () => {
    expect(candidate.outcomes.map((o) => [o.label, o.reply])).toEqual(reference.outcomes.map((o) => [o.label, o.reply]));
  });

  it('delivers, drops and mutes exactly the same packets as rtpengine (after the warm-up)', () => {
    const strip = (o: Outcome[]) => o.slice(1).map(({ label, toA, toB }) => ({ label, toA, toB }));
    expect(strip(candidate.outcomes)).toEqual(strip(reference.outcomes));
  });

  it("drops a blocked party's media, mutes a silenced party's with PCMU/PCMA silence, and keeps sequence numbers", () => {
    const by = new Map(candidate.outcomes.map((o) => [o.label, o]));
    expect(by.get('block from-tag A')?.toB?.packets).toBe(0);
    expect(by.get('block from-tag A')?.toA?.packets).toBe(5);
    expect(by.get('block all')?.toA?.packets).toBe(0);
    expect(by.get('block all')?.toB?.packets).toBe(0);
    expect(by.get('unblock all')?.toB?.packets).toBe(5);
    expect(by.get('silence from-tag B (PCMU)')?.toA?.payload).toEqual(['ff']);
    expect(by.get('still silenced (PCMA)')?.toA?.payload).toEqual(['d5']);
    expect(by.get('silence from-tag B (PCMU)')?.toB?.payload).toEqual(['11']);
    const seqs = by.get('silence from-tag B (PCMU)')?.toA?.seqs ?? [];
    expect(seqs).toHaveLength(5);
    expect(seqs.every((s, i) => i === 0 || s === (seqs[i - 1] ?? 0) + 1)).toBe(true);
    expect(by.get('unsilence from-tag B')?.toA?.payload).toEqual(['11']);
    // block DTMF from A: B gets A's audio only; A still gets B's DTMF.
    expect(by.get('block DTMF from-tag A')?.toB?.types).toEqual([0, 0, 0]);
    expect(by.get('block DTMF from-tag A')?.toA?.types).toEqual([0, 101, 0, 101, 0]);
    expect(by.get('block DTMF, no tag')?.toA?.types).toEqual([0, 0, 0]);
    expect(by.get('unblock DTMF, no tag')?.toB?.types).toEqual([0, 101, 0, 101, 0]);
  });

  it('keeps counting blocked packets in query (same totals as rtpengine)', () => {
    expect(candidate.totals).toEqual(reference.totals);
  });
});
