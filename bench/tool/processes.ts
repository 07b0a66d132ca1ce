/**
 * The processes the benchmark starts (relays, generator): tracked so that only those PIDs are ever
 * signalled, also on Ctrl-C and on errors, and stopped politely (SIGTERM, then SIGKILL after 3 s).
 */
import { ChildProcess, spawn, SpawnOptions } from 'node:child_process';
import fs from 'node:fs';

const children = new Set<ChildProcess>();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.on('exit', () => children.delete(child));
  return child;
}

export function isRunning(child: ChildProcess): boolean {
  return children.has(child);
}

export function killAllChildren(): void {
  for (const child of children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Synchronous undo steps for what the run created besides processes (the veth topology's namespace). */
const cleanups = new Set<() => void>();

export function addExitCleanup(undo: () => void): void {
  cleanups.add(undo);
}

function runCleanups(): void {
  for (const undo of cleanups) undo();
  cleanups.clear();
}

let handlersInstalled = false;
/** On exit and on SIGINT/SIGTERM/SIGHUP: kill what this process started (by PID), nothing else; then the cleanups. */
export function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', () => {
    killAllChildren();
    runCleanups();
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nngrelay-bench: ${signal}, stopping the processes it started\n`);
      killAllChildren();
      process.exit(130);
    });
  }
}

export async function stopChild(child: ChildProcess, label: string): Promise<void> {
  if (!children.has(child) || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const outcome = await Promise.race([gone.then(() => 'exit' as const), sleep(3000).then(() => 'timeout' as const)]);
  if (outcome === 'timeout') {
    process.stderr.write(`ngrelay-bench: ${label} (pid ${child.pid}) ignored SIGTERM, sending SIGKILL\n`);
    try {
      process.kill(child.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    await Promise.race([gone, sleep(2000)]);
  }
}

/** Starts `cmd` under `taskset -c cores` with stdout+stderr in `logFile`. */
export function spawnPinned(cores: string, cmd: string, args: string[], logFile: string, options: SpawnOptions = {}): ChildProcess {
  const fd = fs.openSync(logFile, 'w');
  const child = spawn('taskset', ['-c', cores, cmd, ...args], { stdio: ['ignore', fd, fd], ...options });
  fs.closeSync(fd);
  return track(child);
}

/** The most telling lines of a forwarder's log: the first error line if any, else the last lines. */
export function logTail(file: string): string {
  try {
    const lines = fs.readFileSync(file, 'utf8').trim().split('\n');
    const err = lines.find((line) => /error|fatal|cannot|failed/i.test(line));
    return (err ? err.trim() : lines.slice(-3).join(' | ')).slice(0, 300);
  } catch {
    return '';
  }
}
