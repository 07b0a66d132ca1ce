/**
 * The JavaScript cost of one offer+answer+delete cycle, in-process: a Relay started inside this process (real
 * native engine, real sockets for media) is handed ng datagrams directly through its processor, so no ng
 * socket, client or scheduler noise is in the figure. It prints CPU µs per cycle of this process (the JS
 * thread plus the idle I/O threads) and heap after the run. The figure to watch when making commands cheaper;
 * `npm run bench:control` stays the side-by-side measure against rtpengine.
 *
 * Bounded: `--cycles` (≤ 200,000), `--in-flight` commands at once (≤ 64). Loopback only.
 *
 *   npm run build:ts && npx tsc -p bench/tsconfig.json && \
 *     node --expose-gc --max-semi-space-size=4 bench/out/bench/control-inproc.js --cycles=20000 --in-flight=8
 */
import { encode } from '../test/support/bencode';
import { calleeAudio, callerAudio } from '../test/support/sdp-fixtures';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { NgProcessor } from '../src/ng/processor';
import { AllocationSampling } from './allocation-sampling';

/**
 * The relay as built (`dist/`, what bin/ngrelay runs), not this bench's own compiled copy of src/: the figure
 * is for the code that ships, and the addon is found beside dist/. `--root=DIR` measures another checkout's
 * build (an A/B of two commits, run alternately). This file runs as bench/out/bench/*.js.
 */
interface RelayModules {
  parseCommandLine: typeof import('../src/config').parseCommandLine;
  createLogger: typeof import('../src/logger').createLogger;
  Relay: typeof import('../src/relay').Relay;
}

function relayModules(root: string): RelayModules {
  const dist = path.join(root, 'dist');
  /* eslint-disable @typescript-eslint/no-require-imports */
  return {
    parseCommandLine: (require(path.join(dist, 'config')) as typeof import('../src/config')).parseCommandLine,
    createLogger: (require(path.join(dist, 'logger')) as typeof import('../src/logger')).createLogger,
    Relay: (require(path.join(dist, 'relay')) as typeof import('../src/relay')).Relay,
  };
  /* eslint-enable @typescript-eslint/no-require-imports */
}

interface Args {
  root: string;
  cycles: number;
  inFlight: number;
  warmup: number;
  /** Sample allocations while measuring (bench/allocation-sampling.ts); CPU figures are then not comparable. */
  allocation: boolean;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { root: path.resolve(__dirname, '..', '..', '..'), cycles: 20_000, inFlight: 8, warmup: 3000, allocation: false };
  for (const a of argv) {
    const [key, value = ''] = a.split('=', 2);
    if (key === '--root') args.root = path.resolve(value);
    else if (key === '--cycles') args.cycles = Math.min(200_000, Math.max(1, Math.round(Number(value))));
    else if (key === '--in-flight') args.inFlight = Math.min(64, Math.max(1, Math.round(Number(value))));
    else if (key === '--warmup') args.warmup = Math.min(50_000, Math.max(0, Math.round(Number(value))));
    else if (key === '--allocation') args.allocation = true;
    else throw new Error(`unknown option ${a}`);
  }
  return args;
}

/** sysconf(_SC_CLK_TCK) on Linux. */
const CLOCK_TICKS = 100;
const REMOTE = { address: '127.0.0.1', port: 9, family: 'IPv4' as const, transport: 'udp' as const };
const OFFER_SDP = callerAudio(40000);
const ANSWER_SDP = calleeAudio(40002);

function message(cookie: string, body: Record<string, string | string[]>): Buffer {
  return Buffer.concat([Buffer.from(`${cookie} `), encode(body)]);
}

/** CPU ms (user + system) of this process's main thread, the relay's JavaScript thread (Linux /proc). */
function jsThreadCpuMs(): number {
  const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), 12 and 13 after the name; in clock ticks (100 Hz here).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

async function cycle(processor: NgProcessor, n: number): Promise<void> {
  const callId = `inproc-${n}`;
  const bodies: Record<string, string | string[]>[] = [
    { command: 'offer', 'call-id': callId, 'from-tag': 'a', sdp: OFFER_SDP, supports: ['load limit'] },
    { command: 'answer', 'call-id': callId, 'from-tag': 'a', 'to-tag': 'b', sdp: ANSWER_SDP, supports: ['load limit'] },
    { command: 'delete', 'call-id': callId, 'from-tag': 'a', supports: ['load limit'] },
  ];
  for (let i = 0; i < bodies.length; i++) {
    // A datagram reaches the relay in an event-loop turn of its own; without one the fences' notifications
    // and the timers (the queued fences' wake-up) would never run, and what a delete retired never be freed.
    await nextTurn();
    const reply = await processor.handleMessage(message(`c${n}_${i}`, bodies[i]!), REMOTE);
    if (!reply || !reply.includes('6:result2:ok')) throw new Error(`cycle ${n} command ${i}: ${reply?.toString('latin1').slice(0, 200)}`);
  }
}

async function run(processor: NgProcessor, first: number, count: number, inFlight: number): Promise<void> {
  let next = first;
  const end = first + count;
  const worker = async (): Promise<void> => {
    while (next < end) await cycle(processor, next++);
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const { parseCommandLine, createLogger, Relay } = relayModules(args.root);
  const config = parseCommandLine([
    '--config-file=none',
    '--table=-1',
    '--interface=127.0.0.1',
    `--listen-ng=127.0.0.1:${20000 + Math.floor(Math.random() * 10000)}`,
    '--port-min=42000',
    '--port-max=51999',
    '--delete-delay=0',
    '--log-level=3',
  ]);
  const relay = await Relay.start(config, { logger: createLogger({ level: 3, stderr: true }) });
  const processor = relay['server']['processor'] as NgProcessor;
  try {
    await run(processor, 0, args.warmup, args.inFlight);
    global.gc?.();
    const sampling = args.allocation ? new AllocationSampling(path.join(args.root, 'dist')) : null;
    await sampling?.start();
    const cpu0 = process.cpuUsage();
    const js0 = jsThreadCpuMs();
    const t0 = performance.now();
    await run(processor, args.warmup, args.cycles, args.inFlight);
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const jsPerCycle = ((jsThreadCpuMs() - js0) * 1000) / args.cycles;
    const heap = process.memoryUsage();
    const allocation = sampling ? await sampling.stop(args.cycles) : [];
    const perCycle = (cpu.user + cpu.system) / args.cycles;
    process.stdout.write(
      `${args.cycles} cycles, ${args.inFlight} in flight: ${perCycle.toFixed(1)} µs CPU/cycle ` +
        `(user ${(cpu.user / args.cycles).toFixed(1)}, system ${(cpu.system / args.cycles).toFixed(1)}; ` +
        `JS thread ${jsPerCycle.toFixed(1)}), ` +
        `${((args.cycles / wallMs) * 1000).toFixed(0)} cycles/s, heap ${(heap.heapUsed / 1e6).toFixed(0)} MB, rss ${(heap.rss / 1e6).toFixed(0)} MB\n`,
    );
    for (const line of allocation) process.stdout.write(`${line}\n`);
  } finally {
    await relay.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
