/**
 * block DTMF's DTMF-security modes that need no transcoding, on the real engine: zero and DTMF forward the
 * party's telephone-event packets with digit 0 / the given digit, random with another digit (the same for
 * every packet of one event), off lifts the block; silence and tone (generated audio) drop with a warning;
 * an unknown mode is an error. And `silence media` on G.722 sends rtpengine 10.5's silence byte, 0xFA, side by
 * side with rtpengine.
 */
import { describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import { startRtpengine } from '../support/rtpengine';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { toPlain, type BInputDict } from '../support/bencode';
import { CollectingSocket, collectingSocket } from '../support/udp-collector';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const sdp = (port: number, pts: string, attrs: string[]): string =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP ${pts}`, ...attrs, ''].join('\r\n');
const TE = ['a=rtpmap:0 PCMU/8000', 'a=rtpmap:101 telephone-event/8000', 'a=fmtp:101 0-15'];

const party = (): Promise<CollectingSocket> => collectingSocket();

/** Packet `i` of a digit-5 event whose timestamp is `ts` (the last three are End packets). */
function event(seq: number, ts: number, i: number): Buffer {
  const e = Buffer.alloc(16);
  e[0] = 0x80;
  e[1] = 101;
  e.writeUInt16BE(seq, 2);
  e.writeUInt32BE(ts, 4);
  e.writeUInt32BE(0xbbbb, 8);
  e[12] = 5;
  e[13] = 10 | (i >= 3 ? 0x80 : 0);
  e.writeUInt16BE(160 * (i + 1), 14);
  return e;
}

interface Call {
  ng: NgRawClient;
  a: Awaited<ReturnType<typeof party>>;
  b: Awaited<ReturnType<typeof party>>;
  toA: number;
  toB: number;
  stop(): Promise<void>;
}

async function call(start: typeof startNgrelay, id: string, pts: string, attrs: string[]): Promise<Call> {
  const relay = await startOnRandomPorts(start);
  const ng = await NgRawClient.open(relay.ngPort);
  const a = await party();
  const b = await party();
  const offer = await ng.request({ command: 'offer', 'call-id': id, 'from-tag': 'tag-a', sdp: sdp(a.port, pts, attrs) });
  const toB = Number(/m=audio (\d+)/.exec(String((toPlain(offer.dict) as Record<string, unknown>)['sdp']))?.[1]);
  const answer = await ng.request({ command: 'answer', 'call-id': id, 'from-tag': 'tag-a', 'to-tag': 'tag-b', sdp: sdp(b.port, pts, attrs) });
  const toA = Number(/m=audio (\d+)/.exec(String((toPlain(answer.dict) as Record<string, unknown>)['sdp']))?.[1]);
  return {
    ng, a, b, toA, toB,
    stop: async () => {
      a.socket.close();
      b.socket.close();
      ng.close();
      await relay.stop();
    },
  };
}

describe('block DTMF with DTMF-security', () => {
  it('replaces, drops or passes the party\'s events as the mode says', async () => {
    const c = await call(startNgrelay, 'dtmf-security-1', '0 101', TE);
    try {
      let seq = 500;
      let ts = 16000;
      /** Two events from B (6 packets each); what A got of them: digits per event. */
      const burst = async (request: BInputDict | null): Promise<{ reply: unknown; digits: number[][] }> => {
        const reply = request ? toPlain((await c.ng.request({ 'call-id': 'dtmf-security-1', ...request })).dict) : null;
        c.a.got.length = 0;
        for (let e = 0; e < 2; ++e, ts += 1600) {
          for (let i = 0; i < 6; ++i, ++seq) {
            c.b.socket.send(event(seq, ts, i), c.toB, '127.0.0.1');
            await sleep(5);
          }
        }
        await sleep(100);
        const byTs = new Map<number, number[]>();
        for (const g of c.a.got) byTs.set(g.readUInt32BE(4), [...(byTs.get(g.readUInt32BE(4)) ?? []), g[12]!]);
        return { reply, digits: [...byTs.values()] };
      };
      const ok = { result: 'ok' };
      expect(await burst(null)).toEqual({ reply: null, digits: [[5, 5, 5, 5, 5, 5], [5, 5, 5, 5, 5, 5]] });
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'zero' })).toEqual({ reply: ok, digits: [Array(6).fill(0), Array(6).fill(0)] });
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'DTMF', digit: '#' })).toEqual({ reply: ok, digits: [Array(6).fill(11), Array(6).fill(11)] });
      const random = await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'random' });
      expect(random.digits.length).toBe(2);
      for (const digits of random.digits) {
        expect(digits.length).toBe(6);
        expect(new Set(digits).size).toBe(1);
        expect(digits[0]).not.toBe(5);
      }
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'silence' })).toEqual({
        reply: { warning: 'DTMF-security=silence needs transcoding: DTMF events are dropped instead', result: 'ok' },
        digits: [],
      });
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'bogus' })).toEqual({
        reply: { result: 'error', 'error-reason': "Unknown DTMF-security mode 'bogus'" },
        digits: [],
      });
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b' })).toEqual({ reply: ok, digits: [] });
      expect(await burst({ command: 'block DTMF', 'from-tag': 'tag-b', 'DTMF-security': 'off' })).toEqual({ reply: ok, digits: [Array(6).fill(5), Array(6).fill(5)] });
    } finally {
      await c.stop();
    }
  }, 60_000);
});

describe('silence media on G.722', () => {
  async function silencedPayloads(start: typeof startNgrelay): Promise<string[]> {
    const c = await call(start, 'g722-silence-1', '9', ['a=rtpmap:9 G722/8000']);
    try {
      const packet = (seq: number): Buffer => {
        const b = Buffer.alloc(172, 0x11);
        b[0] = 0x80;
        b[1] = 9;
        b.writeUInt16BE(seq, 2);
        b.writeUInt32BE(seq * 160, 4);
        b.writeUInt32BE(0xaaaa, 8);
        return b;
      };
      for (let seq = 1; seq <= 3; ++seq) {
        c.a.socket.send(packet(seq), c.toA, '127.0.0.1');
        await sleep(20);
      }
      await c.ng.request({ command: 'silence media', 'call-id': 'g722-silence-1', 'from-tag': 'tag-a' });
      c.b.got.length = 0;
      for (let seq = 4; seq <= 8; ++seq) {
        c.a.socket.send(packet(seq), c.toA, '127.0.0.1');
        await sleep(20);
      }
      await sleep(100);
      return c.b.got.map((g) => [...new Set(g.subarray(12))].map((x) => x.toString(16)).join(','));
    } finally {
      await c.stop();
    }
  }

  it('sends 0xFA as rtpengine 10.5 does', async () => {
    const reference = await silencedPayloads(startRtpengine);
    expect(reference).toEqual(Array(5).fill('fa'));
    expect(await silencedPayloads(startNgrelay)).toEqual(reference);
  }, 60_000);
});
