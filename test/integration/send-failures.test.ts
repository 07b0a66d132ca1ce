/**
 * The packet path's send: a run of packets goes out in one sendmmsg; when the kernel refuses a destination
 * (here port 0: EINVAL for every packet), each refused packet is counted as dropped, one by one, and the
 * stream's other direction and later traffic are not disturbed (native/src/io_thread.cpp flushSendsRest).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane, StreamRule } from '../../src/dataplane/types';
import { Party, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';
import { endpointOf as ep, PortRuns, streamRule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const relayPorts = new PortRuns(39600, 39799);

let engine: DataPlane;
let parties: Party[] = [];
let streamIds: number[] = [];

const rule = (partial: Partial<StreamRule>): StreamRule => streamRule(partial, 'off');

beforeEach(() => {
  engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 1 << 20 });
});

afterEach(async () => {
  for (const id of streamIds) engine.removeStream(id);
  engine.close();
  await Promise.all(parties.map((p) => p.close()));
  parties = [];
  streamIds = [];
});

describe('packet path: refused sends', () => {
  it('counts every packet of a run the kernel refuses as dropped, and still forwards the other way', async () => {
    const a = await Party.open(LO);
    const b = await Party.open(LO);
    parties.push(a, b);
    const port = await relayPorts.take(4, LO);
    // Stream 2's party is at port 0: what A sends (forwarded out of stream 2's socket) is refused by the kernel.
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, rule({ expected: ep(a), sink: 2 }));
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ expected: { family: 'IPv4', address: LO, port: 0 }, sink: 1 }));
    streamIds.push(1, 2);
    const before = engine.totals().dropped;
    // A burst, so the relay reads several packets in one batch and sends them as one run.
    const total = 40;
    for (let i = 0; i < total; ++i) a.sendNoWait(rtpPacket({ seq: i, ssrc: 0xa1 }), port, LO);
    expect(await waitUntil(() => engine.readCounters([1]).get(1)!.packets === total, 3000)).toBe(true);
    expect(await waitUntil(() => engine.totals().dropped - before === total, 2000)).toBe(true);
    await sleep(50);
    expect(engine.totals().dropped - before).toBe(total);
    // B -> A is unaffected.
    for (let i = 0; i < 5; ++i) await b.send(rtpPacket({ seq: i, ssrc: 0xb1 }), port + 2, LO);
    expect(await waitUntil(() => a.received.length === 5, 3000)).toBe(true);
    expect(engine.totals().dropped - before).toBe(total);
  });
});
