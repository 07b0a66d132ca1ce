/**
 * DTMF detection and `--dtmf-log-dest`, side by side with rtpengine 10.5: the caller sends audio, then two
 * RFC 4733 digits (each with its End packet three times, as RFC 4733 §2.5.1.4 asks); both relays must send
 * the same JSON datagrams to the log destination, one per digit, and still forward the events.
 */
import { describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { startRtpengine } from '../support/rtpengine';
import { startNgrelay } from '../support/ngrelay';
import { NgRawClient } from '../support/ng-client';
import { startOnRandomPorts } from '../support/random-relay';
import { toPlain } from '../support/bencode';
import { audio, event, sdp } from '../support/dtmf-traffic';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(start: typeof startRtpengine): Promise<{ logs: Record<string, unknown>[]; forwardedEvents: number }> {
  const log = dgram.createSocket('udp4');
  await new Promise<void>((r) => log.bind(0, '127.0.0.1', () => r()));
  const logs: Record<string, unknown>[] = [];
  log.on('message', (m) => logs.push(JSON.parse(m.toString()) as Record<string, unknown>));
  const relay = await startOnRandomPorts(start, [`--dtmf-log-dest=127.0.0.1:${log.address().port}`]);
  const ng = await NgRawClient.open(relay.ngPort);
  const a = dgram.createSocket('udp4');
  const b = dgram.createSocket('udp4');
  await Promise.all([a, b].map((s) => new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))));
  let forwardedEvents = 0;
  b.on('message', (m) => {
    if ((m[1]! & 0x7f) === 101) forwardedEvents++;
  });
  try {
    await ng.request({ command: 'offer', 'call-id': 'dtmf-1', 'from-tag': 'caller', sdp: sdp(a.address().port) });
    const answer = await ng.request({ command: 'answer', 'call-id': 'dtmf-1', 'from-tag': 'caller', 'to-tag': 'callee', sdp: sdp(b.address().port) });
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
    return { logs, forwardedEvents };
  } finally {
    a.close();
    b.close();
    ng.close();
    await relay.stop();
    log.close();
  }
}

describe('DTMF events to --dtmf-log-dest, side by side with rtpengine 10.5', () => {
  it('sends one JSON datagram per digit with the same keys and values as rtpengine', async () => {
    const reference = await run(startRtpengine);
    const candidate = await run(startNgrelay);
    const stable = (l: Record<string, unknown>) => ({ ...l, timestamp: 0 });
    expect(reference.logs).toHaveLength(2);
    expect(candidate.logs.map(stable)).toEqual(reference.logs.map(stable));
    expect(candidate.logs.map((l) => Object.keys(l))).toEqual(reference.logs.map((l) => Object.keys(l)));
    expect(candidate.logs[0]).toMatchObject({ callid: 'dtmf-1', source_tag: 'caller', type: 'DTMF', event: 7, duration: 120, volume: 10 });
    expect(candidate.logs[1]).toMatchObject({ event: 11, duration: 80 });
    expect(Math.abs(Number(candidate.logs[0]!['timestamp']) - Date.now() / 1000)).toBeLessThan(10);
    // Detection does not consume the events: the callee gets them all.
    expect(candidate.forwardedEvents).toBe(reference.forwardedEvents);
    expect(candidate.forwardedEvents).toBe(14);
  }, 60_000);
});
