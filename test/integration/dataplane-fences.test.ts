/**
 * Batched rule changes (batchChanges, as the relay runs): which fences the JS thread waits for. Rule changes
 * (new streams, updates, removals) are queued without waking the I/O threads (the native fence id comes back
 * negated, nobody waits); a batch the JS thread reads back (a quality copy) is acknowledged. Either way a
 * packet sent after settled() obeys the new rule: the thread that reads it runs what is queued first.
 * Relay streams use ports 35000-35499.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane } from '../../src/dataplane/types';
import { Party, rtpPacket, waitUntil } from '../support/rtp-packets';
import { endpointOf as ep, packed, portFree, portFreeWithin, PortRuns, rawEngineClass, streamRule as rule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(35000, 35499);

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('native fences', () => {
  it('queues (negated id) what nobody waits for, acknowledges what the JS thread reads back, and reports what retired something', async () => {
    const NativeEngine = rawEngineClass();
    const passed: number[] = [];
    const sched = { policy: 'default', priority: null };
    const e = new NativeEngine(2, 1 << 20, () => {}, sched, sched, (id) => passed.push(id));
    cleanups.push(() => e.close());
    const port = await relayPorts.take(4);
    const r = rule({ expected: null, sink: null });
    e.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, ...packed(r));
    e.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, ...packed({ ...r, sink: 1 }));
    e.updateStream(1, ...packed({ ...r, sink: 2 })); // a stream attached in this same batch: still new
    const first = e.fence();
    expect(first).toBeLessThan(0);
    e.updateStream(1, ...packed({ ...r, sink: null })); // live now, but a rule change needs no acknowledgement
    const second = e.fence();
    expect(second).toBe(first - 1);
    e.requestQuality([2]); // read back by the JS thread: acknowledged
    const third = e.fence();
    expect(third).toBe(-second + 1);
    e.removeStream(2); // nobody waits, but the stream and its socket are freed once it passed: reported
    const fourth = e.fence();
    expect(fourth).toBe(-(third + 1));
    expect(e.fence()).toBe(fourth - 1); // nothing queued at all
    // The queued fences pass when the threads next wake (the DataPlane asks for that shortly after).
    e.wakeQueued();
    expect(await waitUntil(() => [third, -fourth].every((id) => passed.includes(id)))).toBe(true);
    expect(passed).not.toContain(-first); // nobody needs telling about these two
    expect(passed).not.toContain(-second);
  });

  it('frees what a passed fence retired off the JS thread: every port comes back, and one bound again at once is waited for', async () => {
    // The sockets a fence retired are closed on the event relay's thread after the fence passed, so a port
    // can still be held for a moment when the allocator hands it out again; addStream then waits for those
    // closes (EventRelay::closeNow) instead of failing with EADDRINUSE.
    const NativeEngine = rawEngineClass();
    const sched = { policy: 'default', priority: null };
    const count = 200;
    let rebound = 0;
    let rebindError: unknown = null;
    let retiring = 0;
    let base = 0;
    const r = rule({ expected: null, sink: null });
    const e = new NativeEngine(2, 1 << 20, () => {}, sched, sched, (id) => {
      if (id !== retiring) return;
      // In the notification itself, while the relay's thread closes the sockets in removal order: the last
      // one removed is rebound first, before its close.
      try {
        for (let i = count - 1; i >= 0; i--) {
          e.addStream({ id: 1000 + i, component: 'rtp', localAddress: LO, localPort: base + i }, ...packed(r));
          rebound++;
        }
      } catch (err) {
        rebindError = err;
      }
    });
    cleanups.push(() => e.close());
    base = await relayPorts.take(count);
    for (let i = 0; i < count; i++) e.addStream({ id: 1 + i, component: 'rtp', localAddress: LO, localPort: base + i }, ...packed(r));
    e.sync();
    for (let i = 0; i < count; i++) e.removeStream(1 + i);
    retiring = -e.fence();
    expect(retiring).toBeGreaterThan(0);
    e.wakeQueued();
    expect(await waitUntil(() => rebound === count || rebindError !== null)).toBe(true);
    expect(rebindError).toBeNull();
    for (let i = 0; i < count; i++) e.removeStream(1000 + i);
    e.sync(); // and after sync() every port is free at once
    for (let i = 0; i < count; i++) expect(await portFree(base + i, LO)).toBe(true);
  });

  it('acknowledges a batch that copies the quality of a stream attached in that same batch', async () => {
    // A query in the event-loop turn of the offer: the copy is written by the I/O thread into memory the JS
    // thread frees once the fence passed. A silent fence here was a use-after-free (found by the ng fuzzer).
    const NativeEngine = rawEngineClass();
    const sched = { policy: 'default', priority: null };
    const e = new NativeEngine(2, 1 << 20, () => {}, sched, sched, () => {});
    cleanups.push(() => e.close());
    const port = await relayPorts.take(2);
    e.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, ...packed(rule({ expected: null, sink: null })));
    e.requestQuality([1]);
    expect(e.fence()).toBeGreaterThan(0);
  });
});

describe('batched data plane', () => {
  async function setUp(): Promise<{ engine: DataPlane; a: Party; b: Party; c: Party; port: number }> {
    const engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20, batchChanges: true });
    const [a, b, c] = await Promise.all([Party.open(LO), Party.open(LO), Party.open(LO)]);
    cleanups.push(async () => {
      engine.close();
      await Promise.all([a.close(), b.close(), c.close()]);
    });
    return { engine, a, b, c, port: await relayPorts.take(4) };
  }

  it('forwards what a new call receives the moment settled() resolves (silent fence)', async () => {
    const { engine, a, b, port } = await setUp();
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }));
    await engine.settled();
    for (let seq = 0; seq < 20; seq++) await a.send(rtpPacket({ seq, ssrc: 5 }), port, LO);
    expect(await waitUntil(() => b.count === 20)).toBe(true);
  });

  it('settled({ fenceNow }) fences at once: a silent fence resolves before the next loop turn, and forwards', async () => {
    const { engine, a, b, port } = await setUp();
    // Queued before the changes, so it runs before the immediate that would fence them at the turn's end.
    let immediateRan = false;
    setImmediate(() => (immediateRan = true));
    const immediates = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Immediate').length;
    const before = immediates();
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }));
    expect(immediates()).toBe(before + 1); // the turn's fence
    await engine.settled({ fenceNow: true });
    expect(immediateRan).toBe(false);
    expect(immediates()).toBe(before); // taken back: nothing left for it to fence
    for (let seq = 0; seq < 20; seq++) await a.send(rtpPacket({ seq, ssrc: 5 }), port, LO);
    expect(await waitUntil(() => b.count === 20)).toBe(true);
    // Without it the same changes wait for the turn's fence.
    immediateRan = false;
    setImmediate(() => (immediateRan = true));
    engine.updateStream(1, rule({ expected: ep(a), sink: 2 }));
    await engine.settled();
    expect(immediateRan).toBe(true);
  });

  it('a packet sent after settled() obeys an update of a live stream, every time', async () => {
    const { engine, a, b, c, port } = await setUp();
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }, 'off'));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }, 'off'));
    await engine.settled();
    // Alternate where stream 2's party is: each packet from A after settled() must reach the party just set.
    for (let i = 0; i < 100; i++) {
      const to = i % 2 === 0 ? c : b;
      engine.updateStream(2, rule({ expected: ep(to), sink: 1 }, 'off'));
      await engine.settled();
      const before = to.count;
      await a.send(rtpPacket({ seq: 100 + i, ssrc: 5 }), port, LO);
      expect(await waitUntil(() => to.count === before + 1, 2000, 1)).toBe(true);
    }
    expect(b.count + c.count).toBe(100);
  });

  it('a packet sent after settled() meets a change queued on its own idle I/O thread (no wake-up), every time', async () => {
    // The change to stream 1 is queued on the thread that reads stream 1's socket, and nothing wakes that
    // thread: the packet itself does, and the thread runs what is queued before it looks at the packet.
    const { engine, a, b, c, port } = await setUp();
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }, 'off'));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }, 'off'));
    engine.addStream({ id: 3, component: 'rtp', localAddress: LO, localPort: port + 4 }, rule({ expected: ep(c), sink: 1 }, 'off'));
    await engine.settled();
    for (let i = 0; i < 100; i++) {
      const [sink, to] = i % 2 === 0 ? [3, c] : [2, b];
      engine.updateStream(1, rule({ expected: ep(a), sink }, 'off'));
      await engine.settled();
      const before = to.count;
      await a.send(rtpPacket({ seq: 200 + i, ssrc: 6 }), port, LO);
      expect(await waitUntil(() => to.count === before + 1, 2000, 1)).toBe(true);
    }
    expect(b.count + c.count).toBe(100);
  });

  it('forwards nothing sent after a removal settled, and frees the port shortly after without another command', async () => {
    const { engine, a, b, port } = await setUp();
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }, 'off'));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: ep(b), sink: 1 }, 'off'));
    await engine.settled();
    await a.send(rtpPacket({ seq: 1, ssrc: 7 }), port, LO);
    expect(await waitUntil(() => b.count === 1)).toBe(true);
    engine.removeStream(2);
    engine.updateStream(1, rule({ expected: ep(a), sink: null }, 'off'));
    await engine.settled();
    for (let seq = 2; seq < 12; seq++) await a.send(rtpPacket({ seq, ssrc: 7 }), port, LO);
    expect(await portFreeWithin(port + 2, LO)).toBe(true);
    expect(b.count).toBe(1);
  });
});
