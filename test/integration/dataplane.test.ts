/**
 * The native data plane on real loopback sockets: forwarding, counters, learning, rtcp-mux, validation,
 * overload recovery. Relay streams use ports 36000-37999; test parties use ephemeral ports.
 */
import * as dgram from 'node:dgram';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import {
  BindError,
  type DataPlane,
  type Endpoint,
  type EngineEvent,
  type StreamCounters,
  type StreamRule,
} from '../../src/dataplane/types';
import { Party, rtcpPacket, rtpPacket, sleep, waitUntil } from '../support/rtp-packets';

const LO = '127.0.0.1';
let nextPort = 36000;

async function portFree(port: number, address: string): Promise<boolean> {
  const s = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.bind(port, address, () => resolve(true));
  });
  await new Promise<void>((r) => s.close(() => r()));
  return ok;
}

/**
 * `count` consecutive free ports (even base) in 36000-37999. Probed, because other relays on this machine
 * (rtpengine for comparison) take ports from a shuffled 30000-40000 range on loopback too.
 */
async function allocPorts(count: number, address = LO): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const base = nextPort;
    nextPort += count + (count % 2);
    if (nextPort > 37990) nextPort = 36000;
    let free = true;
    for (let i = 0; i < count && free; i++) free = await portFree(base + i, address);
    if (free) return base;
  }
  throw new Error('no free relay ports in 36000-37999');
}

function ep(party: { address: string; port: number }): Endpoint {
  return { family: party.address.includes(':') ? 'IPv6' : 'IPv4', address: party.address, port: party.port };
}

function rule(partial: Partial<StreamRule>): StreamRule {
  return {
    expected: null,
    learning: 'heuristic',
    strictSource: false,
    mediaHandover: false,
    asymmetric: false,
    sink: null,
    signalGeneration: 1,
    ...partial,
  };
}

let engine: DataPlane;
let parties: Party[] = [];
let streamIds: number[] = [];
let events: EngineEvent[] = [];

async function party(address = LO): Promise<Party> {
  const p = await Party.open(address);
  parties.push(p);
  return p;
}

function counters(id: number): StreamCounters {
  const c = engine.readCounters([id]).get(id);
  if (!c) throw new Error(`no counters for stream ${id}`);
  return c;
}

function add(id: number, port: number, r: StreamRule, opts: { component?: 'rtp' | 'rtcp'; muxedWith?: number; address?: string } = {}): void {
  engine.addStream(
    { id, component: opts.component ?? 'rtp', localAddress: opts.address ?? LO, localPort: port, muxedWith: opts.muxedWith },
    r,
  );
  streamIds.push(id);
}

/** Two parties A and B with relay streams 1 (A's side) and 2 (B's side). */
async function basicCall(ruleA: Partial<StreamRule> = {}, ruleB: Partial<StreamRule> = {}, address = LO) {
  const a = await party(address);
  const b = await party(address);
  const port = await allocPorts(4, address);
  add(1, port, rule({ expected: ep(a), sink: 2, ...ruleA }), { address });
  add(2, port + 2, rule({ expected: ep(b), sink: 1, ...ruleB }), { address });
  return { a, b, portA: port, portB: port + 2 };
}

async function sendRtp(from: Party, count: number, port: number, address: string, ssrc: number, firstSeq = 0, payloadBytes = 160): Promise<void> {
  for (let i = 0; i < count; i++) await from.send(rtpPacket({ seq: firstSeq + i, ssrc, payloadBytes }), port, address);
}

beforeEach(() => {
  engine = createNativeDataPlane({ threads: 2, receiveBufferBytes: 1 << 20 });
  engine.onEvents((batch) => events.push(...batch));
});

afterEach(async () => {
  for (const id of streamIds) engine.removeStream(id);
  engine.close();
  await Promise.all(parties.map((p) => p.close()));
  parties = [];
  streamIds = [];
  events = [];
});

describe('native data plane: forwarding and counters', () => {
  it('forwards RTP both ways with exact packet and byte counts, out of the sink stream socket', async () => {
    const { a, b, portA, portB } = await basicCall();
    await sendRtp(a, 50, portA, LO, 0x1111);
    expect(await waitUntil(() => b.received.length === 50)).toBe(true);
    await sendRtp(b, 30, portB, LO, 0x2222, 1000, 100);
    expect(await waitUntil(() => a.received.length === 30)).toBe(true);

    // Replies come from the socket the receiving party was given, so NATs see the address they sent to.
    expect(b.received.every((r) => r.port === portB && r.address === LO)).toBe(true);
    expect(a.received.every((r) => r.port === portA)).toBe(true);
    expect(b.received[49]?.data.readUInt16BE(2)).toBe(49);

    const c1 = counters(1);
    const c2 = counters(2);
    expect(c1.packets).toBe(50);
    expect(c1.bytes).toBe(50 * 172);
    expect(c1.errors).toBe(0);
    expect(c1.ssrc).toBe(0x1111);
    expect(c1.lastSeq).toBe(49);
    expect(c1.lastPacketMs).toBeGreaterThan(Date.now() - 10_000);
    expect(c1.endpoint).toEqual(ep(a));
    expect(c1.confirmed).toBe(true); // exact SDP match confirms at once under heuristic learning
    expect(c2.packets).toBe(30);
    expect(c2.bytes).toBe(30 * 112);
    expect(c2.ssrc).toBe(0x2222);
    expect(c2.lastSeq).toBe(1029);

    const t = engine.totals();
    expect(t.packets).toBe(80);
    expect(t.bytes).toBe(50 * 172 + 30 * 112);
    expect(t.malformed).toBe(0);
    expect(t.dropped).toBe(0);
  });

  it('counts but forwards nothing when the sink is null, and knows no unknown ids', async () => {
    const a = await party();
    const port = await allocPorts(2);
    add(7, port, rule({ expected: ep(a), sink: null }));
    await sendRtp(a, 5, port, LO, 7);
    expect(await waitUntil(() => counters(7).packets === 5)).toBe(true);
    expect(engine.readCounters([7, 99999]).has(99999)).toBe(false);
    expect(counters(7).lastPacketMs).toBeGreaterThan(0);
    expect(counters(7).ssrc).toBe(7);
  });

  it('sends nothing to a party whose endpoint is unknown until it is set by a rule update', async () => {
    const a = await party();
    const b = await party();
    const port = await allocPorts(2);
    add(1, port, rule({ expected: ep(a), sink: 2 }));
    add(2, port + 2, rule({ expected: null, learning: 'off', sink: 1 }));
    await sendRtp(a, 5, port, LO, 1);
    expect(await waitUntil(() => counters(1).packets === 5)).toBe(true);
    expect(counters(2).endpoint).toBeNull();
    engine.updateStream(2, rule({ expected: ep(b), learning: 'off', sink: 1, signalGeneration: 2 }));
    await sendRtp(a, 5, port, LO, 1, 5);
    expect(await waitUntil(() => b.received.length === 5)).toBe(true);
    expect(b.received[0]?.data.readUInt16BE(2)).toBe(5);
  });

  it('removeStream closes the socket so the port can be bound again at once', async () => {
    const { portA, portB } = await basicCall();
    engine.removeStream(1);
    engine.removeStream(2);
    streamIds = [];
    for (const port of [portA, portB]) {
      const s = dgram.createSocket('udp4');
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(port, LO, () => resolve());
      });
      await new Promise<void>((r) => s.close(() => r()));
    }
    expect(engine.readCounters([1, 2]).size).toBe(0);
  });

  it('throws BindError with EADDRINUSE when the port is taken', async () => {
    const port = await allocPorts(2);
    const s = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => s.bind(port, LO, () => resolve()));
    try {
      let caught: unknown;
      try {
        engine.addStream({ id: 5, component: 'rtp', localAddress: LO, localPort: port }, rule({}));
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(BindError);
      expect((caught as BindError).code).toBe('EADDRINUSE');
      expect((caught as BindError).port).toBe(port);
      expect(engine.readCounters([5]).size).toBe(0);
    } finally {
      await new Promise<void>((r) => s.close(() => r()));
    }
  });

  it('refuses a wildcard bind address', () => {
    expect(() =>
      engine.addStream({ id: 6, component: 'rtp', localAddress: '0.0.0.0', localPort: 36000 }, rule({})),
    ).toThrow(BindError);
  });
});
