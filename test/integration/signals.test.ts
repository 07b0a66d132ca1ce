/**
 * The signals operators and logrotate send, as rtpengine handles them, to the real binary with a live call:
 * SIGHUP keeps running, SIGUSR1/SIGUSR2 raise/lower the log level by one and log it. Through all three the
 * call keeps forwarding RTP both ways, the process stays up, and no new listening socket appears (Node's
 * inspector opens 127.0.0.1:9229 on SIGUSR1 unless the relay handles it).
 */
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { countingParty as party, plainAudioSdp as sdp, rtp172 as rtp, until, type CountingParty as Party } from '../support/counting-party';

const ngPort = 43000 + Math.floor(Math.random() * 2000);
const portMin = 53000 + 2 * Math.floor(Math.random() * 3000);


/** Every listening socket (TCP LISTEN, unconnected UDP) of the process, as `proto local-address:port`. */
function listeningSockets(pid: number): string[] {
  const out = execFileSync('ss', ['-H', '-l', '-n', '-p', '-t', '-u'], { encoding: 'utf8', maxBuffer: 64 << 20 }); // a busy machine lists many
  return out
    .split('\n')
    .filter((line) => line.includes(`pid=${pid},`))
    .map((line) => {
      const cols = line.trim().split(/\s+/);
      return `${cols[0]} ${cols[4]}`;
    })
    .sort();
}

let relay: RelayUnderTest;
let ng: NgRawClient;
let a: Party;
let b: Party;
let portForA = 0;
let portForB = 0;
let seq = 0;

beforeAll(async () => {
  relay = await startNgrelay({ ngPort, portMin, portMax: portMin + 99, extraArgs: ['--log-level=6'] });
  ng = await NgRawClient.open(ngPort);
  a = await party('127.0.0.21');
  b = await party('127.0.0.22');
  const offer = await ng.request({ command: 'offer', 'call-id': 'signals-1', 'from-tag': 'A', sdp: sdp('127.0.0.21', a.port) });
  portForB = Number(/m=audio (\d+)/.exec(textOf(offer.dict, 'sdp')!)![1]);
  const answer = await ng.request({
    command: 'answer',
    'call-id': 'signals-1',
    'from-tag': 'A',
    'to-tag': 'B',
    sdp: sdp('127.0.0.22', b.port),
  });
  portForA = Number(/m=audio (\d+)/.exec(textOf(answer.dict, 'sdp')!)![1]);
}, 30_000);

afterAll(async () => {
  a?.socket.close();
  b?.socket.close();
  ng?.close();
  await relay?.stop();
});

/** 20 packets each way; both sides must get all 20. */
async function forwardsBothWays(): Promise<void> {
  const before = { a: a.received, b: b.received };
  for (let i = 0; i < 20; i++, seq++) {
    a.socket.send(rtp(seq, 0x1111), portForA, '127.0.0.1');
    b.socket.send(rtp(seq, 0x2222), portForB, '127.0.0.1');
  }
  await until('20 packets each way', () => a.received - before.a >= 20 && b.received - before.b >= 20);
}

function logLevelChanges(): Array<{ signal: string; logLevel: number }> {
  return relay.process.stderrText
    .split('\n')
    .filter((l) => l.includes('"log level changed"'))
    .map((l) => JSON.parse(l) as { signal: string; logLevel: number });
}

describe('signals with a live call', () => {
  it('HUP, USR1, USR2: the call forwards, the relay runs on, no new listener, level changes logged', async () => {
    await forwardsBothWays();
    const listening = listeningSockets(relay.process.pid);
    expect(listening).toContain(`udp 127.0.0.1:${ngPort}`);

    for (const signal of ['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGUSR1', 'SIGHUP'] as const) {
      process.kill(relay.process.pid, signal);
      await new Promise((r) => setTimeout(r, 200));
      expect(relay.process.hasExited, `${signal} ended the relay\n${relay.process.describe()}`).toBe(false);
      await forwardsBothWays();
      expect(listeningSockets(relay.process.pid), `listeners after ${signal}`).toEqual(listening);
    }
    expect(logLevelChanges()).toEqual([
      expect.objectContaining({ signal: 'SIGUSR1', logLevel: 7 }),
      expect.objectContaining({ signal: 'SIGUSR2', logLevel: 6 }),
      expect.objectContaining({ signal: 'SIGUSR1', logLevel: 7 }),
    ]);
    expect(relay.process.stderrText).toContain('SIGHUP received; still running');
    const pong = await ng.request({ command: 'ping' });
    expect(textOf(pong.dict, 'result')).toBe('pong');
  }, 30_000);
});
