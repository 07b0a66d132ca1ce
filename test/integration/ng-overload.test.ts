/**
 * The real ngrelay binary past its capacity: a bounded burst of offers at 3× the rate it completes them.
 * Every request gets an answer while the proxy still waits for it (a call or rtpengine's load-limit reply,
 * never silence), the relay answers ping right afterwards, and once the calls are deleted every port of
 * its range can be bound again. Without admission (src/ng/admission.ts) the backlog waits in the socket
 * for seconds and the replies come after the proxy gave up.
 *
 * Also: rule changes are batched and asynchronous in the engine, yet media forwards the moment the answer
 * reply is out (the reply waits for the I/O threads: DataPlane.settled).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dgram from 'node:dgram';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { DEFAULT_ADMISSION } from '../../src/ng/admission';
import { NgRawClient, textOf } from '../support/ng-client';
import { startNgrelay } from '../support/ngrelay';
import type { RelayUnderTest } from '../support/relay';
import { calleeAudio, callerAudio, mediaPorts } from '../support/sdp-fixtures';

// The ng port lies above the media range (20000..39999), so it never counts as a held media port.
const NG_PORT = 40_000 + Math.floor(Math.random() * 10_000);
const PORT_MIN = 20_000 + 2 * Math.floor(Math.random() * 6_000);
const PORT_MAX = PORT_MIN + 7_999;
/** Kamailio's defaults: resend after 500 ms, give up after about 1 s more. */
const RETRANSMIT_MS = 500;
const GIVE_UP_MS = 1500;

/**
 * UDP ports of the range that process `pid` holds a socket of, in any thread's descriptor table (the I/O
 * threads have private ones). Other test files of a parallel run may bind ports of the range too: only the
 * relay's own count.
 */
function portsHeldBy(pid: number): number[] {
  const inodes = new Set<string>();
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${pid}/task/${task}/fd`);
    } catch {
      continue; // the thread ended meanwhile
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/task/${task}/fd/${fd}`));
        if (m) inodes.add(m[1]!);
      } catch {
        // closed meanwhile
      }
    }
  }
  const held: number[] = [];
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 10 || !inodes.has(cols[9]!)) continue;
    const port = parseInt(cols[1]!.split(':')[1]!, 16);
    if (port >= PORT_MIN && port <= PORT_MAX) held.push(port);
  }
  return held.sort((a, b) => a - b);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('ngrelay under a burst of 3x its capacity', () => {
  let relay: RelayUnderTest;
  let ng: NgRawClient;
  /**
   * The burst's proxy sockets, used in turn (as Kamailio's worker processes each have their own). One socket
   * of the test process, which shares the two cores with the relay, cannot read 7,000 replies a second
   * through a stall: its 4 MB buffer overflowed, and replies the relay had sent were lost in the test.
   */
  let proxies: NgRawClient[] = [];
  let turn = 0;
  const proxy = () => proxies[turn++ % proxies.length]!;

  beforeAll(async () => {
    relay = await startNgrelay({
      ngPort: NG_PORT,
      portMin: PORT_MIN,
      portMax: PORT_MAX,
      deleteDelay: 0,
      extraArgs: ['--log-level=4', '--num-threads=2'],
    });
    ng = await NgRawClient.open(NG_PORT, '127.0.0.1', 4 << 20);
    proxies = await Promise.all(Array.from({ length: 8 }, () => NgRawClient.open(NG_PORT, '127.0.0.1', 4 << 20)));
  });

  afterAll(async () => {
    ng?.close();
    for (const p of proxies) p.close();
    await relay?.stop();
  });

  let seq = 0;
  const offer = (callId: string) =>
    proxy().request(
      { command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(40000), supports: ['load limit'] },
      { retransmitMs: RETRANSMIT_MS, deadlineMs: GIVE_UP_MS },
    );
  const remove = (callId: string) =>
    proxy().request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' }, { retransmitMs: RETRANSMIT_MS, deadlineMs: 5000 });

  /** Offers+deletes completed per second with `parallel` in flight: what the relay sustains here, now. */
  async function capacity(cycles: number, parallel: number): Promise<number> {
    const started = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: parallel }, async () => {
        while (next < cycles) {
          next++;
          const id = `cal-${seq++}`;
          const r = await offer(id);
          // A loaded machine may already refuse some (load limit): they count all the same.
          if (textOf(r.dict, 'result') === 'ok') await remove(id);
        }
      }),
    );
    return cycles / ((performance.now() - started) / 1000);
  }

  it('answers every offer in time (a call or load limit), stays responsive, and frees every port', async () => {
    // The port check sees a call's ports (so it can fail), and sees them go.
    const probe = await offer('probe');
    const probePort = mediaPorts(textOf(probe.dict, 'sdp') ?? '')[0]!;
    expect(portsHeldBy(relay.process.pid)).toContain(probePort);
    await remove('probe');
    // Removed sockets close once their fence passed, a few ms after the reply (see Engine::fence).
    for (let i = 0; i < 50 && portsHeldBy(relay.process.pid).includes(probePort); i++) await sleep(20);
    expect(portsHeldBy(relay.process.pid)).not.toContain(probePort);

    await capacity(300, 50); // warm-up
    // Other test files may share the CPU during one calibration and not during the burst: take the better.
    const sustained = Math.max(await capacity(1000, 100), await capacity(1000, 100));
    const rate = Math.ceil(3 * sustained);
    const burstSeconds = 2;
    const total = rate * burstSeconds;

    const outcomes = { ok: 0, shed: 0, error: 0, silent: 0 };
    const errorReasons = new Set<string>();
    const slowest = { ms: 0 };
    const work: Promise<void>[] = [];
    const started = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      for (; sent < due; sent++) {
        const id = `burst-${sent}`;
        const sentAt = performance.now();
        work.push(
          offer(id).then(
            async (r) => {
              slowest.ms = Math.max(slowest.ms, performance.now() - sentAt);
              const result = textOf(r.dict, 'result');
              if (result === 'ok') {
                outcomes.ok++;
                await remove(id);
              } else if (result === 'load limit') outcomes.shed++;
              else {
                outcomes.error++;
                errorReasons.add(textOf(r.dict, 'error-reason') ?? String(result));
              }
            },
            async () => {
              outcomes.silent++;
              await remove(id).catch(() => undefined); // the call may exist: its reply was what got lost
            },
          ),
        );
      }
      await sleep(5);
    }
    // "Afterwards the relay still answers ping at once": once the burst's requests are answered. (A ping sent
    // while thousands of datagrams still wait in the socket's kernel buffer waits behind them there; on a
    // machine shared with other work that took over 2 s.)
    await Promise.all(work);
    const burstEnd = performance.now();
    const ping = await ng.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 2000 });
    const pingMs = performance.now() - burstEnd;

    const summary = {
      rate, sustained: Math.round(sustained), total, ...outcomes, errorReasons: [...errorReasons],
      slowestMs: Math.round(slowest.ms), pingMs: Math.round(pingMs),
    };
    expect(textOf(ping.dict, 'result'), JSON.stringify(summary)).toBe('pong');
    // No request went unanswered, and past capacity the relay refused rather than fell behind.
    expect(outcomes.silent, JSON.stringify(summary)).toBe(0);
    // The only acceptable error: every port in use (calls in flight at 3x capacity, and the other test files
    // of a parallel run hold ports of the range too). It is an answer, and a true one.
    expect([...errorReasons].filter((r) => r !== 'Ran out of ports'), JSON.stringify(summary)).toEqual([]);
    // Every offer was answered before the proxy gave up (silent = 0 above); when replies were slow, the
    // relay was past capacity and must have refused offers rather than run them all late (without
    // admission: none refused, the last answered after about 1.5 s).
    if (slowest.ms > DEFAULT_ADMISSION.maxWaitMs + 200) expect(outcomes.shed, JSON.stringify(summary)).toBeGreaterThan(0);
    expect(outcomes.ok + outcomes.shed + outcomes.error).toBe(total);
    // Throughput held up: at least 30 % of what it sustains unloaded (the generator shares the 2 cores) went through during the burst.
    expect(outcomes.ok, JSON.stringify(summary)).toBeGreaterThan(0.3 * sustained * burstSeconds);
    expect(pingMs, JSON.stringify(summary)).toBeLessThan(1000);

    const quiet = performance.now();
    await ng.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 1000 });
    expect(performance.now() - quiet).toBeLessThan(100);

    // Every call was deleted: every port comes back (removed sockets close when their fence passed).
    let held = portsHeldBy(relay.process.pid);
    for (let i = 0; i < 20 && held.length > 0; i++) {
      await sleep(250);
      held = portsHeldBy(relay.process.pid);
    }
    const list = held.length ? JSON.stringify((await ng.request({ command: 'list', limit: 10 })).plain) : '';
    expect(held, `${JSON.stringify(summary)} ${list}`).toEqual([]);
  }, 120_000);

  it('forwards media the moment the answer reply is out (rule changes are batched, the reply waits for them)', async () => {
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    await new Promise<void>((r) => a.bind(0, '127.0.0.41', r));
    await new Promise<void>((r) => b.bind(0, '127.0.0.42', r));
    let atB = 0;
    b.on('message', () => atB++);
    const packet = Buffer.alloc(172);
    packet[0] = 0x80;
    try {
      const calls = 40;
      for (let i = 0; i < calls; i++) {
        const callId = `media-${i}`;
        await ng.request({ command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: callerAudio(a.address().port) });
        const answer = await ng.request({
          command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: calleeAudio(b.address().port),
        });
        // A sends to its relay port at once: B's endpoint became known with this answer.
        const portForA = mediaPorts(textOf(answer.dict, 'sdp') ?? '')[0]!;
        packet.writeUInt16BE(i, 2);
        a.send(packet, portForA, '127.0.0.1');
        const deadline = Date.now() + 2000;
        while (atB < i + 1 && Date.now() < deadline) await sleep(1);
        expect(atB, `call ${i}: the first packet after the answer reply was not forwarded`).toBe(i + 1);
        await ng.request({ command: 'delete', 'call-id': callId, 'from-tag': 'a' });
      }
    } finally {
      a.close();
      b.close();
    }
  });
});
