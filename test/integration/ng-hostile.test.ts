/**
 * Hostile and oversized ng input against the real relay (bin/ngrelay over UDP on loopback): nothing a client
 * sends may blind `statistics`, poison a call-id, merge two calls or leave a request without a reply.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient, textOf, type NgReply } from '../support/ng-client';
import type { BDict } from '../support/bencode';
import { buildSdp, callerAudio, calleeAudio, CALLER_ADDRESS } from '../support/sdp-fixtures';

/**
 * A random ng port and media range per run, so concurrent runs in other worktrees do not collide. The file's
 * big relay (span > 100) and its small ones draw from separate regions, so they never share a port.
 */
function ports(span: number): { ngPort: number; portMin: number; portMax: number } {
  const slot = Math.floor(Math.random() * 400);
  const base = span > 100 ? 31000 : 50000;
  const stride = span > 100 ? 40 : 20;
  return { ngPort: 23000 + slot + (span > 100 ? 0 : 400), portMin: base + slot * stride, portMax: base + slot * stride + span - 1 };
}

async function startRelay(span: number, extraArgs: string[] = []): Promise<RelayUnderTest> {
  // A few tries: a port taken by a concurrent run makes the start fail, another random slot then works.
  let last: unknown;
  for (let i = 0; i < 3; i++) {
    try {
      return await startNgrelay({ ...ports(span), deleteDelay: 0, extraArgs });
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

const result = (r: NgReply): string | undefined => textOf(r.dict, 'result');
const reason = (r: NgReply): string | undefined => textOf(r.dict, 'error-reason');
const callIds = (r: NgReply): Buffer[] => (r.dict['calls'] as Buffer[]).map((b) => Buffer.from(b));

describe('ng hostile input (real relay)', () => {
  let relay: RelayUnderTest;
  let client: NgRawClient;

  beforeAll(async () => {
    relay = await startRelay(1200, ['--ng-cache-max-entries=5']);
    client = await NgRawClient.open(relay.ngPort, relay.ngHost);
  });
  afterAll(async () => {
    client?.close();
    await relay?.stop();
  });

  const request = (body: Parameters<NgRawClient['request']>[0]): Promise<NgReply> =>
    client.request(body, { retransmitMs: 0, deadlineMs: 3000 });

  const statistics = async (): Promise<{ reply: NgReply; stats: BDict }> => {
    const reply = await request({ command: 'statistics' });
    expect(result(reply)).toBe('ok');
    return { reply, stats: reply.dict['statistics'] as BDict };
  };
  const control = (stats: BDict): BDict => stats['controlstatistics'] as BDict;

  describe('A: statistics never echoes what clients made up', () => {
    it('stays small after a 40,000-byte unknown command name', async () => {
      const bad = await request({ command: 'x'.repeat(40_000) });
      expect(reason(bad)).toBe('Unrecognized command');
      const { reply, stats } = await statistics();
      expect(reply.datagram.length).toBeLessThan(4096);
      expect(reply.body.includes('xxxxxxxx')).toBe(false);
      const proxy = (control(stats)['proxies'] as BDict[])[0]!;
      expect(proxy['othercount']).toBeGreaterThanOrEqual(1);
    });

    it('stays small after 53 distinct 600-byte command names, counting them in one bucket', async () => {
      const before = (control((await statistics()).stats)['proxies'] as BDict[])[0]!['othercount'] as number;
      for (let i = 0; i < 53; i++) await request({ command: `${String(i).padStart(3, '0')}${'y'.repeat(597)}` });
      const { reply, stats } = await statistics();
      expect(reply.datagram.length).toBeLessThan(4096);
      expect((control(stats)['proxies'] as BDict[])[0]!['othercount']).toBe(before + 53);
    });
  });

  describe('reply cache', () => {
    it('shows its size in statistics and stays within --ng-cache-max-entries', async () => {
      for (let i = 0; i < 20; i++) await request({ command: 'ping' });
      const { stats } = await statistics();
      const entries = control(stats)['replycacheentries'] as number;
      expect(entries).toBeGreaterThanOrEqual(1);
      expect(entries).toBeLessThanOrEqual(5);
      expect(control(stats)['replycachebytes']).toBeGreaterThan(0);
    });
  });

  describe('B: a failing command leaves nothing half-made', () => {
    it('takes an offer with m=audio 65535, and every later command on that call', async () => {
      const offer = await request({ command: 'offer', 'call-id': 'port-65535', 'from-tag': 'a', sdp: callerAudio(65535) });
      expect(result(offer), JSON.stringify(offer.plain)).toBe('ok');
      const again = await request({ command: 'offer', 'call-id': 'port-65535', 'from-tag': 'a', sdp: callerAudio(65535) });
      expect(result(again)).toBe('ok');
      const answer = await request({ command: 'answer', 'call-id': 'port-65535', 'from-tag': 'a', 'to-tag': 'b', sdp: calleeAudio() });
      expect(result(answer)).toBe('ok');
      expect(result(await request({ command: 'delete', 'call-id': 'port-65535' }))).toBe('ok');
    });

    it('leaves list, the call and the counters as they were when an offer or answer fails', async () => {
      const id = 'atomic-1';
      expect(result(await request({ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: callerAudio() }))).toBe('ok');
      const snapshot = async (): Promise<string> => {
        const list = await request({ command: 'list', limit: 1000 });
        const query = await request({ command: 'query', 'call-id': id });
        const { stats } = await statistics();
        const totals = { ...(stats['totalstatistics'] as BDict) };
        delete totals['uptime'];
        return JSON.stringify({ list: list.plain, query: query.plain, totals, current: stats['currentstatistics'] });
      };
      const before = await snapshot();
      const twoMedia = buildSdp({ address: '127.0.0.42', media: [{ type: 'audio', port: 40002 }, { type: 'audio', port: 40004 }] });
      const failures: Array<[Parameters<NgRawClient['request']>[0], string]> = [
        [{ command: 'answer', 'call-id': id, 'from-tag': 'a', 'to-tag': 'b', sdp: twoMedia }, 'Failed to parse SDP'],
        [{ command: 'answer', 'call-id': id, 'from-tag': 'nobody', 'to-tag': 'b', sdp: calleeAudio() }, 'Invalid dialogue association'],
        [{ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: 'v=0\r\nm=audio 70000 RTP/AVP 0\r\n' }, 'Failed to parse SDP'],
        [{ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: 'v=0\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n' }, 'Incomplete SDP specification'],
      ];
      for (const [body, why] of failures) {
        const reply = await request(body);
        expect(reason(reply), JSON.stringify(reply.plain)).toBe(why);
        expect(await snapshot()).toBe(before);
      }
      await request({ command: 'delete', 'call-id': id });
    });

    it('returns every port of an offer that runs out of them', async () => {
      const tiny = await startRelay(8);
      const c = await NgRawClient.open(tiny.ngPort, tiny.ngHost);
      try {
        const req = (body: Parameters<NgRawClient['request']>[0]): Promise<NgReply> => c.request(body, { retransmitMs: 0 });
        { const first = await req({ command: 'offer', 'call-id': 'c1', 'from-tag': 'a', sdp: callerAudio() }); expect(result(first), JSON.stringify(first.plain)).toBe('ok'); }
        const big = buildSdp({ address: CALLER_ADDRESS, media: [40000, 40010, 40020].map((port) => ({ type: 'audio' as const, port })) });
        const refused = await req({ command: 'offer', 'call-id': 'c2', 'from-tag': 'a', sdp: big });
        expect(reason(refused), JSON.stringify(refused.plain)).toBe('Ran out of ports');
        // Another re-offer of c1 needing more ports fails too, and leaves c1's ports as they were.
        expect(reason(await req({ command: 'offer', 'call-id': 'c1', 'from-tag': 'a', sdp: big }))).toBe('Ran out of ports');
        const list = await req({ command: 'list' });
        expect(list.plain['calls']).toEqual(['c1']);
        // The 4 ports left are all free: a one-media call takes them.
        expect(result(await req({ command: 'offer', 'call-id': 'c3', 'from-tag': 'a', sdp: callerAudio() }))).toBe('ok');
      } finally {
        c.close();
        await tiny.stop();
      }
    });
  });

  describe('C: call-ids and tags are byte strings', () => {
    it('keeps x\\xff\\xfe and x\\xfe\\xff apart as two calls, and lists their exact bytes', async () => {
      const a = Buffer.from('x\xff\xfe', 'latin1');
      const b = Buffer.from('x\xfe\xff', 'latin1');
      expect(result(await request({ command: 'offer', 'call-id': a, 'from-tag': Buffer.from('t\xff', 'latin1'), sdp: callerAudio() }))).toBe('ok');
      expect(result(await request({ command: 'offer', 'call-id': b, 'from-tag': Buffer.from('t\xfe', 'latin1'), sdp: callerAudio() }))).toBe('ok');
      const listed = callIds(await request({ command: 'list', limit: 1000 }));
      expect(listed.some((x) => x.equals(a))).toBe(true);
      expect(listed.some((x) => x.equals(b))).toBe(true);
      const query = await request({ command: 'query', 'call-id': a });
      const tags = Object.values(query.dict['tags'] as BDict).map((t) => (t as BDict)['tag'] as Buffer);
      expect(tags.filter((t) => t.length > 0)).toEqual([Buffer.from('t\xff', 'latin1')]);
      expect(result(await request({ command: 'delete', 'call-id': a }))).toBe('ok');
      const after = callIds(await request({ command: 'list', limit: 1000 }));
      expect(after.some((x) => x.equals(a))).toBe(false);
      expect(after.some((x) => x.equals(b))).toBe(true);
      await request({ command: 'delete', 'call-id': b });
    });

    it('refuses a JSON message that is not valid UTF-8, with an error reply', async () => {
      const reply = await request(Buffer.from('{"command":"ping","call-id":"x\xff"}', 'latin1'));
      expect(result(reply)).toBe('error');
      expect(reason(reply)).toBe('Failed to parse JSON document');
    });

    it('reads a UTF-8 JSON call-id as the same bytes a bencode client sends', async () => {
      const json = Buffer.from(JSON.stringify({ command: 'offer', 'call-id': 'caf\u00e9', 'from-tag': 'a', sdp: callerAudio() }), 'utf8');
      expect(result(await request(json))).toBe('ok');
      const query = await request({ command: 'query', 'call-id': Buffer.from('caf\u00e9', 'utf8') });
      expect(result(query)).toBe('ok');
      const jsonList = await request(Buffer.from('{"command":"list","limit":1000}'));
      expect(jsonList.body.toString('utf8')).toContain('"caf\u00e9"');
      await request({ command: 'delete', 'call-id': Buffer.from('caf\u00e9', 'utf8') });
    });
  });

  describe('D: a reply too large for a datagram becomes a short error', () => {
    it('list: too large as a whole, fine within a smaller limit', async () => {
      const ids = ['L1', 'L2'].map((p) => p + 'z'.repeat(33_000));
      for (const id of ids) expect(result(await request({ command: 'offer', 'call-id': id, 'from-tag': 'a', sdp: callerAudio() }))).toBe('ok');
      const whole = await request({ command: 'list', limit: 1000 });
      expect(result(whole)).toBe('error');
      expect(reason(whole)).toMatch(/^Reply too large for a UDP datagram/);
      expect(whole.datagram.length).toBeLessThan(1024);
      const one = await request({ command: 'list', limit: 1 });
      expect(result(one)).toBe('ok');
      for (const id of ids) await request({ command: 'delete', 'call-id': id });
    });

    it('query of a call with hundreds of media', async () => {
      const media = Array.from({ length: 250 }, (_, i) => ({ type: 'audio' as const, port: 2000 + 2 * i }));
      const offer = await request({ command: 'offer', 'call-id': 'wide', 'from-tag': 'a', sdp: buildSdp({ address: CALLER_ADDRESS, media }) });
      expect(result(offer), JSON.stringify(offer.plain)).toBe('ok');
      const query = await request({ command: 'query', 'call-id': 'wide' });
      expect(result(query)).toBe('error');
      expect(reason(query)).toMatch(/^Reply too large for a UDP datagram/);
      // JSON requests get the error in JSON.
      const json = await request(Buffer.from('{"command":"query","call-id":"wide"}'));
      expect(json.body[0]).toBe(0x7b);
      expect(reason(json)).toMatch(/^Reply too large/);
      await request({ command: 'delete', 'call-id': 'wide' });
    });
  });
});
