import { describe, expect, it } from 'vitest';
import { AdmissionQueue, LIBUV_READS_PER_WAKEUP, OVERLOAD_MESSAGE, looksLikePing, shedReply } from '../../src/ng/admission';
import { PARALLEL_SESSION_LIMIT_REASON } from '../../src/ng/load-limit';
import type { NgDict } from '../../src/ng/types';

/** A clock the test moves; each delivery "costs" `costMs`. */
function clocked(costMs: number) {
  let now = 0;
  const delivered: Array<{ item: number; late: boolean; at: number }> = [];
  const clock = () => now;
  const advance = (ms: number) => {
    now += ms;
  };
  const deliver = (item: number, late: boolean) => {
    delivered.push({ item, late, at: now });
    now += costMs;
  };
  return { clock, advance, deliver, delivered };
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('AdmissionQueue', () => {
  it('runs requests in arrival order, and only up to one slice per event-loop turn', async () => {
    const c = clocked(2);
    const q = new AdmissionQueue<number>({ maxWaitMs: 1000, sliceMs: 5, maxReadTurns: 4 }, c.deliver, c.clock);
    for (let i = 0; i < 10; i++) q.offer(i);
    expect(c.delivered).toHaveLength(0); // nothing runs inside the socket callback
    await turn();
    // 2 ms each: the third delivery ends the 5 ms slice.
    expect(c.delivered.map((d) => d.item)).toEqual([0, 1, 2]);
    expect(q.stats().queued).toBe(7);
    for (let i = 0; i < 5; i++) await turn();
    expect(c.delivered.map((d) => d.item)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(q.stats().queued).toBe(0);
  });

  it('marks a request late when it waited longer than maxWaitMs, and counts it', async () => {
    const c = clocked(0);
    const q = new AdmissionQueue<number>({ maxWaitMs: 100, sliceMs: 5, maxReadTurns: 4 }, c.deliver, c.clock);
    q.offer(1);
    c.advance(101);
    q.offer(2);
    await turn();
    expect(c.delivered).toEqual([
      { item: 1, late: true, at: 101 },
      { item: 2, late: false, at: 101 },
    ]);
    expect(q.stats()).toEqual({ late: 1, maxWaitMs: 101, queued: 0 });
  });

  it('a request exactly at the bound is not late', async () => {
    const c = clocked(0);
    const q = new AdmissionQueue<number>({ maxWaitMs: 100, sliceMs: 5, maxReadTurns: 4 }, c.deliver, c.clock);
    q.offer(1);
    c.advance(100);
    await turn();
    expect(c.delivered[0]!.late).toBe(false);
  });
});

describe('AdmissionQueue reading first', () => {
  it('while full libuv batches come in, only reads (up to maxReadTurns turns), then runs a slice', async () => {
    const c = clocked(1);
    const q = new AdmissionQueue<number>({ maxWaitMs: 1000, sliceMs: 5, maxReadTurns: 2 }, c.deliver, c.clock);
    let n = 0;
    const batch = (size: number) => {
      for (let i = 0; i < size; i++) q.offer(n++);
    };
    batch(LIBUV_READS_PER_WAKEUP);
    await turn(); // full batch: the socket may hold more, read first
    expect(c.delivered).toHaveLength(0);
    batch(LIBUV_READS_PER_WAKEUP);
    await turn();
    expect(c.delivered).toHaveLength(0);
    batch(LIBUV_READS_PER_WAKEUP);
    await turn(); // maxReadTurns reached: a slice runs even though the batch was full
    expect(c.delivered.length).toBe(5);
    batch(3);
    await turn(); // a short batch: the socket is empty, work goes on
    expect(c.delivered.length).toBe(10);
  });

  it('runs an urgent request (a ping) at once, ahead of the queue', async () => {
    const c = clocked(0);
    const q = new AdmissionQueue<number>({ maxWaitMs: 1000, sliceMs: 5, maxReadTurns: 4 }, c.deliver, c.clock);
    q.offer(1);
    q.offer(2, true);
    expect(c.delivered.map((d) => d.item)).toEqual([2]);
    await turn();
    expect(c.delivered.map((d) => d.item)).toEqual([2, 1]);
  });

  it('looksLikePing: Kamailio\'s bencode and JSON pings, not an offer', () => {
    expect(looksLikePing(Buffer.from('5362_1 d7:command4:pinge'))).toBe(true);
    expect(looksLikePing(Buffer.from('x {"command":"ping"}'))).toBe(true);
    expect(looksLikePing(Buffer.from('x d7:command5:offer3:sdp10:v=0 ...e'))).toBe(false);
  });
});

describe('shedReply', () => {
  const offer = (supports: boolean): NgDict => ({
    command: Buffer.from('offer'),
    'call-id': Buffer.from('x'),
    ...(supports ? { supports: [Buffer.from('load limit')] } : {}),
  });

  it('refuses a late offer with the load-limit reply (or rtpengine error for a client without "load limit")', () => {
    expect(shedReply('offer', offer(true))).toEqual({ result: 'load limit', message: OVERLOAD_MESSAGE });
    expect(shedReply('offer', offer(false))).toEqual({ result: 'error', 'error-reason': PARALLEL_SESSION_LIMIT_REASON });
  });

  it('lets everything else run: ping, answer and delete finish what exists', () => {
    for (const command of ['ping', 'answer', 'delete', 'query', 'statistics']) {
      expect(shedReply(command, { command: Buffer.from(command) })).toBeNull();
    }
  });
});
