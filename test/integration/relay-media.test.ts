/**
 * The real `ngrelay` binary, driven over ng like Kamailio does, with real RTP/RTCP through the native engine:
 * offer/answer, packets both ways, NAT latching, query counters, media timeout and delete freeing the ports.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { NgRawClient } from '../support/ng-client';
import { portFree, portFreeWithin } from '../support/dataplane-fixtures';
import { isDict, toPlain, type BDict, type BValue } from '../support/bencode';

const NG_PORT = 22411;

interface Party {
  socket: dgram.Socket;
  address: string;
  port: number;
  received: Array<{ data: Buffer; from: string }>;
}

async function party(address: string): Promise<Party> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  const p: Party = { socket, address, port: socket.address().port, received: [] };
  socket.on('message', (data, rinfo) => p.received.push({ data, from: `${rinfo.address}:${rinfo.port}` }));
  return p;
}

function rtp(seq: number, ssrc: number): Buffer {
  const b = Buffer.alloc(172);
  b[0] = 0x80;
  b[1] = 0;
  b.writeUInt16BE(seq & 0xffff, 2);
  b.writeUInt32BE(seq * 160, 4);
  b.writeUInt32BE(ssrc, 8);
  return b;
}

/** RTCP receiver report with no report blocks (8 bytes). */
function rtcp(ssrc: number): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 0x80;
  b[1] = 201;
  b.writeUInt16BE(1, 2);
  b.writeUInt32BE(ssrc, 4);
  return b;
}

function sdp(address: string, port: number, extra: string[] = []): string {
  return ['v=0', `o=- 1 1 IN IP4 ${address}`, 's=-', `c=IN IP4 ${address}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ...extra, ''].join('\r\n');
}

function mPort(reply: BDict): number {
  if (!reply['sdp']) throw new Error(`offer/answer failed: ${JSON.stringify(toPlain(reply))}`);
  const body = (reply['sdp'] as Buffer).toString('latin1');
  const m = /m=audio (\d+) /.exec(body);
  if (!m) throw new Error(`no m= line in ${body}`);
  return Number(m[1]);
}

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function get(v: BValue | undefined, ...path: Array<string | number>): BValue | undefined {
  let cur = v;
  for (const key of path) {
    if (cur === undefined) return undefined;
    if (typeof key === 'number') cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = isDict(cur) ? cur[key] : undefined;
  }
  return cur;
}

describe('ngrelay forwards real media set up over ng', () => {
  let relay: RelayUnderTest;
  let ng: NgRawClient;

  beforeAll(async () => {
    relay = await startNgrelay({
      ngPort: NG_PORT,
      portMin: 42000,
      portMax: 42999,
      extraArgs: ['--timeout=2', '--offer-timeout=2', '--num-threads=2'],
    });
    ng = await NgRawClient.open(NG_PORT);
  });

  afterAll(async () => {
    ng?.close();
    await relay?.stop();
  });

  it('RTP and RTCP both ways with exact counts, from the port each side was given', async () => {
    const a = await party('127.0.0.11');
    const b = await party('127.0.0.12');
    const offer = await ng.request({ command: 'offer', 'call-id': 'media-1', 'from-tag': 'A', sdp: sdp(a.address, a.port) });
    const portForB = mPort(offer.dict);
    const answer = await ng.request({
      command: 'answer', 'call-id': 'media-1', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.address, b.port),
    });
    const portForA = mPort(answer.dict);
    for (let i = 0; i < 50; i++) {
      a.socket.send(rtp(i, 0x1111), portForA, '127.0.0.1');
      b.socket.send(rtp(i, 0x2222), portForB, '127.0.0.1');
    }
    await until(() => a.received.length >= 50 && b.received.length >= 50);
    expect(b.received.every((r) => r.from === `127.0.0.1:${portForB}`)).toBe(true);
    expect(a.received.every((r) => r.from === `127.0.0.1:${portForA}`)).toBe(true);
    // RTCP goes to the SDP port + 1 of each side: open those.
    const aRtcp = dgram.createSocket('udp4');
    const bRtcp = dgram.createSocket('udp4');
    const gotA: Buffer[] = [];
    const gotB: Buffer[] = [];
    aRtcp.on('message', (m) => gotA.push(m));
    bRtcp.on('message', (m) => gotB.push(m));
    await new Promise<void>((r) => aRtcp.bind(a.port + 1, a.address, r));
    await new Promise<void>((r) => bRtcp.bind(b.port + 1, b.address, r));
    for (let i = 0; i < 5; i++) {
      aRtcp.send(rtcp(0x1111), portForA + 1, '127.0.0.1');
      bRtcp.send(rtcp(0x2222), portForB + 1, '127.0.0.1');
    }
    await until(() => gotA.length >= 5 && gotB.length >= 5);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.received).toHaveLength(50);
    expect(b.received).toHaveLength(50);

    const q = toPlain((await ng.request({ command: 'query', 'call-id': 'media-1' })).dict) as Record<string, never>;
    expect(get(q as never, 'totals', 'RTP', 'packets')).toBe(100);
    expect(get(q as never, 'totals', 'RTP', 'bytes')).toBe(100 * 172);
    expect(get(q as never, 'totals', 'RTCP', 'packets')).toBe(10);
    expect(get(q as never, 'tags', 'A', 'medias', 0, 'streams', 0, 'stats', 'packets')).toBe(50);
    expect(get(q as never, 'tags', 'A', 'medias', 0, 'streams', 0, 'SSRC')).toBe(0x1111);
    expect(get(q as never, 'tags', 'B', 'medias', 0, 'streams', 0, 'local port')).toBe(portForB);

    const del = await ng.request({ command: 'delete', 'call-id': 'media-1', 'from-tag': 'A', 'delete-delay': 0 });
    expect(del.dict['result']?.toString()).toBe('ok');
    // The engine's event thread closes removed sockets on its next 2 ms tick (EventRelay::ticking_), so a port
    // is free shortly after the reply; the relay's own allocator waits for that close when it hands one out.
    for (const port of [portForA, portForA + 1, portForB, portForB + 1]) expect(await portFreeWithin(port, '127.0.0.1', 500)).toBe(true);
    for (const s of [a.socket, b.socket, aRtcp, bRtcp]) s.close();
  });

  it('learns a NATed party from its packets: the SDP address is private, media comes from elsewhere', async () => {
    const a = await party('127.0.0.21');
    const b = await party('127.0.0.22');
    // A's SDP names a private address that does not exist here; its packets come from 127.0.0.21.
    const offer = await ng.request({
      command: 'offer', 'call-id': 'nat-1', 'from-tag': 'A', sdp: sdp('10.99.0.5', 4000),
      flags: ['SIP-source-address'], 'received-from': ['IP4', '127.0.0.21'], replace: ['origin', 'session-connection'],
    });
    const portForB = mPort(offer.dict);
    const answer = await ng.request({
      command: 'answer', 'call-id': 'nat-1', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp(b.address, b.port),
    });
    const portForA = mPort(answer.dict);
    for (let i = 0; i < 20; i++) a.socket.send(rtp(i, 0x3333), portForA, '127.0.0.1');
    await until(() => b.received.length >= 20);
    for (let i = 0; i < 20; i++) b.socket.send(rtp(i, 0x4444), portForB, '127.0.0.1');
    await until(() => a.received.length >= 20);
    const q = (await ng.request({ command: 'query', 'call-id': 'nat-1' })).dict;
    expect(toPlain(get(q, 'tags', 'A', 'medias', 0, 'streams', 0, 'endpoint') as BValue)).toEqual({
      family: 'IPv4', address: '127.0.0.21', port: a.port,
    });
    // As rtpengine shows it: the SDP endpoint after SIP-source-address translation (received-from + SDP port).
    expect(toPlain(get(q, 'tags', 'A', 'medias', 0, 'streams', 0, 'advertised endpoint') as BValue)).toEqual({
      family: 'IPv4', address: '127.0.0.21', port: 4000,
    });
    await ng.request({ command: 'delete', 'call-id': 'nat-1', 'delete-delay': 0 });
    a.socket.close();
    b.socket.close();
  });

  it('a call without media ends after --timeout and its ports are free again', async () => {
    const offer = await ng.request({ command: 'offer', 'call-id': 'idle-1', 'from-tag': 'A', sdp: sdp('127.0.0.31', 5000) });
    const portForB = mPort(offer.dict);
    await ng.request({ command: 'answer', 'call-id': 'idle-1', 'from-tag': 'A', 'to-tag': 'B', sdp: sdp('127.0.0.32', 5002) });
    expect(await portFree(portForB, '127.0.0.1')).toBe(false);
    const deadline = Date.now() + 8000;
    let gone = false;
    while (Date.now() < deadline && !gone) {
      await new Promise((r) => setTimeout(r, 250));
      const q = await ng.request({ command: 'query', 'call-id': 'idle-1' });
      gone = q.dict['result']?.toString() === 'error';
    }
    expect(gone).toBe(true);
    // The removed sockets close once the I/O threads ran the removal's fence, later on a starved VM.
    expect(await portFreeWithin(portForB, '127.0.0.1')).toBe(true);
    const list = toPlain((await ng.request({ command: 'list' })).dict) as { calls: string[] };
    expect(list.calls).not.toContain('idle-1');
  });
});

describe('a slow reply and a proxy that retransmits the same cookie', () => {
  let relay: RelayUnderTest;
  let ng: NgRawClient;

  beforeAll(async () => {
    relay = await startNgrelay({ ngPort: NG_PORT + 1, portMin: 42500, portMax: 42599, extraArgs: ['--debug-ng-delay=700'] });
    ng = await NgRawClient.open(NG_PORT + 1);
  });

  afterAll(async () => {
    ng?.close();
    await relay?.stop();
  });

  it('runs the offer once: every copy gets the same reply and the call has one set of ports', async () => {
    const cookie = ng.newCookie();
    const datagram = NgRawClient.frame(cookie, {
      command: 'offer', 'call-id': 'slow-1', 'from-tag': 'A', sdp: sdp('127.0.0.41', 6000),
    });
    // Kamailio resends every rtpengine_tout_ms while no reply came: here 5 copies, 150 ms apart.
    const replies = [0, 1, 2, 3, 4].map(() => ng.nextReply(cookie, 5000));
    for (let i = 0; i < 5; i++) {
      ng.sendDatagram(datagram);
      await new Promise((r) => setTimeout(r, 150));
    }
    const got = await Promise.all(replies);
    for (const r of got) expect(r.datagram.equals(got[0]!.datagram)).toBe(true);
    expect(got[0]!.dict['result']?.toString()).toBe('ok');
    const q = (await ng.request({ command: 'query', 'call-id': 'slow-1' }, { deadlineMs: 5000, retransmitMs: 0 })).dict;
    const tags = get(q, 'tags') as BDict;
    // One offer ran: one monologue per side, each with one RTP and one RTCP socket.
    expect(Object.keys(tags)).toHaveLength(2);
    const stats = (await ng.request({ command: 'statistics' }, { deadlineMs: 5000, retransmitMs: 0 })).dict;
    expect(get(stats, 'statistics', 'totalstatistics', 'managedsessions')).toBe(1);
    const ports = get(stats, 'statistics', 'interfaces', 0, 'ports', 'used');
    expect(ports).toBe(4);
    expect(relay.process.stderrText).toMatch(/detected command as a duplicate/);
  });
});
