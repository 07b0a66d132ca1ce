/**
 * `--dtmf-log-ng-tcp`, side by side with rtpengine 10.5: every client connected to `--listen-tcp-ng` gets one
 * unsolicited ng message per detected digit, `<16 hex cookie> <bencode {notify: "onDTMF", data: {...}}>`,
 * the same data as the `--dtmf-log-dest` JSON. The caller sends audio, then two RFC 4733 digits (End three
 * times each); both relays must send the same messages (keys in the same order), and still forward the events.
 */
import { describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import net from 'node:net';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { decode as decodeTest, toPlain, type PlainValue } from '../support/bencode';
import { bencodeLength } from '../../src/ng/bencode';
import { audio, event, sdp } from '../support/dtmf-traffic';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Notification {
  cookie: string;
  body: PlainValue;
  /** Dict keys in wire order, top level and of `data` (bencode dicts keep the sender's order). */
  keys: string[];
  dataKeys: string[];
}

/** Reads `<cookie> <bencode>` messages back to back off a TCP ng connection. */
class TcpNgReader {
  readonly messages: Notification[] = [];
  private pending = Buffer.alloc(0);
  constructor(socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      for (;;) {
        const space = this.pending.indexOf(0x20);
        if (space < 0) return;
        const length = bencodeLength(this.pending.subarray(space + 1));
        if (length === null) return;
        const raw = this.pending.subarray(space + 1, space + 1 + length);
        const value = decodeTest(Buffer.from(raw));
        const body = toPlain(value);
        const data = (body as Record<string, PlainValue>)['data'];
        this.messages.push({
          cookie: this.pending.subarray(0, space).toString(),
          body,
          keys: Object.keys(body as object),
          dataKeys: typeof data === 'object' && data !== null && !Array.isArray(data) ? Object.keys(data) : [],
        });
        this.pending = this.pending.subarray(space + 1 + length);
      }
    });
  }
}

async function connect(port: number): Promise<net.Socket> {
  for (let i = 0; ; ++i) {
    try {
      return await new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    } catch (err) {
      if (i >= 20) throw err;
      await sleep(100);
    }
  }
}

async function run(start: typeof startRtpengine, logNgTcp: boolean): Promise<{ notes: Notification[]; logs: Record<string, unknown>[]; forwardedEvents: number }> {
  const tcpPort = 30000 + Math.floor(Math.random() * 9000);
  // --dtmf-log-dest too: the JSON of a labelled party, compared as well (neither carries source_label).
  const log = dgram.createSocket('udp4');
  await new Promise<void>((r) => log.bind(0, '127.0.0.1', () => r()));
  const logs: Record<string, unknown>[] = [];
  log.on('message', (m) => logs.push(JSON.parse(m.toString()) as Record<string, unknown>));
  const relay = await startOnRandomPorts(start, [`--dtmf-log-dest=127.0.0.1:${log.address().port}`, `--listen-tcp-ng=127.0.0.1:${tcpPort}`, ...(logNgTcp ? ['--dtmf-log-ng-tcp'] : [])]);
  const ng = await NgRawClient.open(relay.ngPort);
  // Two connected clients: rtpengine notifies every one of them.
  const tcp = [await connect(tcpPort), await connect(tcpPort)];
  const readers = tcp.map((s) => new TcpNgReader(s));
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  let forwardedEvents = 0;
  b.on('message', (m) => {
    if ((m[1]! & 0x7f) === 101) forwardedEvents++;
  });
  try {
    await ng.request({ command: 'offer', 'call-id': 'dtmf-ng-1', 'from-tag': 'caller', sdp: sdp(a.address().port), label: 'alice' });
    const answer = await ng.request({ command: 'answer', 'call-id': 'dtmf-ng-1', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.address().port) });
    const toRelay = Number(/m=audio (\d+)/.exec(String((toPlain(answer.dict) as Record<string, unknown>)['sdp']))?.[1]);
    const send = (p: Buffer): void => a.send(p, toRelay, '127.0.0.1');
    let seq = 1;
    for (let i = 0; i < 10; ++i, await sleep(20)) send(audio(seq++));
    for (const [digit, packets] of [[7, 6], [11, 4]] as const) {
      const ts = seq * 160;
      for (let i = 1; i <= packets; ++i, await sleep(20)) send(event(seq++, ts, digit, i * 160, i === packets, i === 1));
      for (let i = 0; i < 2; ++i) send(event(seq++, ts, digit, packets * 160, true, false));
      for (let i = 0; i < 5; ++i, await sleep(20)) send(audio(seq++));
    }
    await sleep(300);
    // Both connections got the same messages.
    expect(readers[1]!.messages.map((m) => m.body)).toEqual(readers[0]!.messages.map((m) => m.body));
    return { notes: readers[0]!.messages, logs, forwardedEvents };
  } finally {
    for (const s of tcp) s.destroy();
    a.close();
    b.close();
    ng.close();
    await relay.stop();
    log.close();
  }
}

const stable = (n: Notification): PlainValue => {
  const body = n.body as { notify: string; data: Record<string, PlainValue> };
  return { ...body, data: { ...body.data, timestamp: 0 } };
};

describe('DTMF events to TCP ng clients (--dtmf-log-ng-tcp), side by side with rtpengine 10.5', () => {
  it('notifies every connected client once per digit, with the same message as rtpengine', async () => {
    const reference = await run(startRtpengine, true);
    const candidate = await run(startNgrelay, true);
    expect(reference.notes).toHaveLength(2);
    expect(candidate.notes.map(stable)).toEqual(reference.notes.map(stable));
    expect(candidate.notes.map((n) => [n.keys, n.dataKeys])).toEqual(reference.notes.map((n) => [n.keys, n.dataKeys]));
    for (const n of candidate.notes) expect(n.cookie).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(candidate.notes.map((n) => n.cookie)).size).toBe(2);
    expect(candidate.notes[0]!.body).toMatchObject({
      notify: 'onDTMF',
      data: { callid: 'dtmf-ng-1', source_tag: 'caller', type: 'DTMF', event: 7, duration: 120, volume: 10 },
    });
    const ts = Number((candidate.notes[0]!.body as { data: { timestamp: number } }).data.timestamp);
    expect(Math.abs(ts - Date.now() / 1000)).toBeLessThan(10);
    // The JSON datagrams of the labelled party match too (no source_label in rtpengine 10.5's either).
    const stableLog = (l: Record<string, unknown>) => ({ ...l, timestamp: 0 });
    expect(reference.logs).toHaveLength(2);
    expect(candidate.logs.map(stableLog)).toEqual(reference.logs.map(stableLog));
    expect(candidate.logs.map((l) => Object.keys(l))).toEqual(reference.logs.map((l) => Object.keys(l)));
    expect(candidate.forwardedEvents).toBe(reference.forwardedEvents);
    expect(candidate.forwardedEvents).toBe(14);
  }, 60_000);

  it('sends nothing to TCP ng clients without the option', async () => {
    const reference = await run(startRtpengine, false);
    const candidate = await run(startNgrelay, false);
    expect(reference.notes).toHaveLength(0);
    expect(candidate.notes).toHaveLength(0);
    expect(candidate.logs).toHaveLength(2); // detection and --dtmf-log-dest still work

  }, 60_000);
});
