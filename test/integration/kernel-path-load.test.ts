/**
 * Hand-over to the kernel fast path and take-back under a bounded 50k packets/s load (60 000 packets, 1.2 s):
 * every packet arrives, once, in order, while the stream goes down, comes back up for a rule change and goes
 * down again. Sender and receiver are a small C program (test/support/kernel-load.c). Loopback only; relay
 * ports 39000-39499.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNativeDataPlane } from '../../src/dataplane/native';
import type { DataPlane } from '../../src/dataplane/types';
import { sleep, waitUntil } from '../support/rtp-packets';
import { PortRuns, streamRule as rule } from '../support/dataplane-fixtures';

const LO = '127.0.0.1';
const COUNT = 60_000;
const PPS = 50_000;
const relayPorts = new PortRuns(39000, 39499);
let workDir = '';
let bin = '';

beforeAll(() => {
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ngrelay-kernel-load-'));
  bin = path.join(workDir, 'kernel-load');
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', bin, path.join(__dirname, '..', 'support', 'kernel-load.c')]);
});

afterAll(() => {
  fs.rmSync(workDir, { recursive: true, force: true });
});

interface Received {
  count: number;
  outOfOrder: number;
  duplicates: number;
  first: number;
  last: number;
}

/** Starts the receiver (it sends one packet to `relayPort` first); resolves its port, then its tally. */
function receiver(relayPort: number): { ready: Promise<number>; done: Promise<Received> } {
  const child = spawn(bin, ['recv', String(relayPort), String(COUNT), '20'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let readyResolve: (port: number) => void = () => {};
  const ready = new Promise<number>((resolve) => (readyResolve = resolve));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    const m = /ready (\d+)/.exec(out);
    if (m) readyResolve(Number(m[1]));
  });
  const done = new Promise<Received>((resolve, reject) => {
    child.on('exit', () => {
      const m = /count (\d+) outOfOrder (\d+) duplicates (\d+) first (-?\d+) last (-?\d+)/.exec(out);
      if (!m) return reject(new Error(`receiver said: ${out}`));
      resolve({ count: Number(m[1]), outOfOrder: Number(m[2]), duplicates: Number(m[3]), first: Number(m[4]), last: Number(m[5]) });
    });
  });
  return { ready, done };
}

function sender(relayPort: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['send', String(relayPort), String(COUNT), String(PPS), '0xa'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(Number(out.trim())) : reject(new Error(`sender exited ${code}`))));
  });
}

describe('kernel fast path under load', () => {
  let engine: DataPlane;
  afterAll(() => engine?.close());

  it('hand-over and take-back at 50k pps: exact count, in order, no duplicate', async () => {
    engine = createNativeDataPlane({ threads: 1, receiveBufferBytes: 8 << 20, table: 0, kernelAddresses: [LO] });
    expect(engine.info().kernelPath?.active).toBe(true);
    const port = await relayPorts.take(4);
    const plain = rule({ sink: 2 }, 'immediate');
    engine.addStream({ id: 1, component: 'rtp', localAddress: LO, localPort: port }, plain);
    engine.addStream({ id: 2, component: 'rtp', localAddress: LO, localPort: port + 2 }, rule({ sink: 1 }, 'immediate'));
    await engine.settled();
    const rx = receiver(port + 2);
    await rx.ready;
    expect(await waitUntil(() => engine.readCounters([2]).get(2)?.confirmed === true)).toBe(true);

    const phases: boolean[] = [];
    const sending = sender(port);
    // Down (first packets confirm A), up for a rule change that needs userspace (strict-source), down again.
    await sleep(300);
    phases.push(engine.readCounters([1]).get(1)?.inKernel === true);
    engine.updateStream(1, { ...plain, strictSource: true });
    await engine.settled();
    await sleep(300);
    phases.push(engine.readCounters([1]).get(1)?.inKernel === true);
    const kernelWhileUp = engine.readCounters([1]).get(1)!.kernelPackets!;
    await sleep(100);
    expect(engine.readCounters([1]).get(1)!.kernelPackets).toBe(kernelWhileUp);  // nothing in the kernel
    engine.updateStream(1, plain);
    await engine.settled();
    await sleep(200);
    phases.push(engine.readCounters([1]).get(1)?.inKernel === true);

    expect(await sending).toBe(COUNT);
    const got = await rx.done;
    expect(phases).toEqual([true, false, true]);
    expect(got).toEqual({ count: COUNT, outOfOrder: 0, duplicates: 0, first: 0, last: COUNT - 1 });
    const c = engine.readCounters([1]).get(1)!;
    expect(c.packets).toBe(COUNT);
    expect(c.kernelPackets).toBeGreaterThan(COUNT / 4);
    expect(c.kernelPackets).toBeLessThan(COUNT);
  });
});
