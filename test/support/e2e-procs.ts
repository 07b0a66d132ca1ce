/**
 * Processes of the Kamailio end-to-end test, each started inside a network namespace with
 * `ip netns exec NS CMD...` (which execs CMD, so the PID we hold is CMD's own), with its output in a log
 * file, and stopped only by that PID. Every one is registered so afterAll can stop what
 * is still running, also after a failure.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';

export interface NsProcess {
  name: string;
  pid: number;
  logFile: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited: () => boolean;
}

const running = new Set<NsProcess>();

/** Starts `command args` in namespace `ns`, stdout and stderr to `logFile`. */
export function startInNs(name: string, ns: string, command: string, args: string[], logFile: string, cwd?: string): NsProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, command, ...args], { stdio: ['ignore', fd, fd], cwd });
  closeSync(fd);
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.once('error', () => {
      done = true;
      resolve({ code: null, signal: null });
    });
  });
  const proc: NsProcess = { name, pid: child.pid ?? -1, logFile, child, exited, hasExited: () => done || child.pid === undefined };
  if (proc.pid > 0) {
    running.add(proc);
    void exited.then(() => running.delete(proc));
  }
  return proc;
}

export function signal(proc: NsProcess, sig: NodeJS.Signals): void {
  if (proc.hasExited()) return;
  try {
    process.kill(proc.pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM by PID (resuming it first in case it is stopped), SIGKILL after graceMs. */
export async function stop(proc: NsProcess, graceMs = 3000): Promise<void> {
  if (proc.hasExited()) return;
  signal(proc, 'SIGCONT');
  signal(proc, 'SIGTERM');
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
  if ((await Promise.race([proc.exited, timer])) === 'timeout') {
    signal(proc, 'SIGKILL');
    await proc.exited;
  }
}

/** Stops everything this module started and that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((proc) => stop(proc)));
}

// Last resort if the worker exits without afterAll: nothing asynchronous runs there any more.
process.once('exit', () => {
  for (const proc of running) {
    try {
      process.kill(proc.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

export function readLog(proc: NsProcess): string {
  try {
    return readFileSync(proc.logFile, 'utf8');
  } catch {
    return '';
  }
}

/** Waits for the process to exit by itself; kills it (by PID) and fails after timeoutMs. */
export async function waitExit(proc: NsProcess, timeoutMs: number): Promise<number | null> {
  const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
  const result = await Promise.race([proc.exited, timer]);
  if (result === 'timeout') {
    await stop(proc, 1000);
    throw new Error(`${proc.name} did not finish within ${timeoutMs} ms; its log:\n${tail(readLog(proc), 60)}`);
  }
  return result.code;
}

export function tail(text: string, lines: number): string {
  const all = text.split('\n');
  return all.slice(Math.max(0, all.length - lines)).join('\n');
}

/**
 * A classic pcap (Ethernet, IPv4/UDP from port 6000) with `count` PCMA RTP packets 20 ms apart: the callee
 * plays it once so its NAT opens a binding towards the relay, as a real phone's first packets would.
 */
export function writePrimerPcap(file: string, count = 2): void {
  const records: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const rtp = Buffer.alloc(12 + 160, 0xd5);
    rtp.writeUInt8(0x80, 0);
    rtp.writeUInt8(8, 1); // PT 8 = PCMA
    rtp.writeUInt16BE(i + 1, 2);
    rtp.writeUInt32BE((i + 1) * 160, 4);
    rtp.writeUInt32BE(0x5eed0001, 8);
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(6000, 0);
    udp.writeUInt16BE(6000, 2);
    udp.writeUInt16BE(8 + rtp.length, 4);
    const ip = Buffer.alloc(20);
    ip.writeUInt8(0x45, 0);
    ip.writeUInt16BE(20 + 8 + rtp.length, 2);
    ip.writeUInt8(64, 8);
    ip.writeUInt8(17, 9);
    Buffer.from([10, 0, 0, 1]).copy(ip, 12);
    Buffer.from([10, 0, 0, 2]).copy(ip, 16);
    const eth = Buffer.alloc(14);
    eth.writeUInt16BE(0x0800, 12);
    const frame = Buffer.concat([eth, ip, udp, rtp]);
    const header = Buffer.alloc(16);
    header.writeUInt32LE(1000, 0);
    header.writeUInt32LE(i * 20_000, 4);
    header.writeUInt32LE(frame.length, 8);
    header.writeUInt32LE(frame.length, 12);
    records.push(header, frame);
  }
  const global = Buffer.alloc(24);
  global.writeUInt32LE(0xa1b2c3d4, 0);
  global.writeUInt16LE(2, 4);
  global.writeUInt16LE(4, 6);
  global.writeUInt32LE(65535, 16);
  global.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  writeFileSync(file, Buffer.concat([global, ...records]));
}

/** The last value sipp printed for a counter line such as "  638 Total RTP pckts sent". */
export function sippCounter(output: string, label: string): number | undefined {
  let last: number | undefined;
  for (const line of output.split('\n')) {
    const match = new RegExp(`^\\s*(\\d+) ${label}`).exec(line);
    if (match) last = Number(match[1]);
  }
  return last;
}

/** "Successful call" / "Failed call" cumulative values from sipp's final statistics screen. */
export function sippCalls(output: string): { successful: number; failed: number } {
  const value = (label: string): number => {
    let last = -1;
    for (const line of output.split('\n')) {
      const match = new RegExp(`^\\s*${label}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`).exec(line);
      if (match) last = Number(match[1]);
    }
    return last;
  };
  return { successful: value('Successful call'), failed: value('Failed call') };
}

/**
 * One e2e run at a time on this machine: the namespaces have fixed names, so a second run (another
 * engineer's `npm test`) waits here for the first to finish instead of tearing its topology down.
 * The lock file holds the owner's PID; a lock whose owner is gone is taken over.
 */
export async function acquireRunLock(file: string, waitMs: number): Promise<() => void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (readFileSync(file, 'utf8') === String(process.pid)) unlinkSync(file);
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(file, 'utf8'));
    } catch {
      continue; // removed between our attempts: try again at once
    }
    if (!Number.isInteger(owner) || owner <= 0 || !isAlive(owner)) {
      try {
        unlinkSync(file);
      } catch {
        // someone else took it over first
      }
      continue;
    }
    if (Date.now() > deadline) {
      throw new Error(`another e2e run (pid ${owner}) still holds ${file} after ${waitMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
