/**
 * Child processes for integration tests: start one, wait until its ng port answers `ping`, keep the tail of
 * its output for failure messages, and stop it by its PID (SIGTERM, then SIGKILL after a grace period).
 * Nothing here ever signals a process by name; only the PIDs this module spawned are touched.
 */
import { ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { NgRawClient, textOf } from './ng-client';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartProcessOptions {
  /** A short name for messages, e.g. "rtpengine" or "ngrelay". */
  name: string;
  command: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Keeps only the last `limit` characters of a stream, so a chatty process cannot eat memory. */
class OutputTail {
  private text = '';
  constructor(private readonly limit = 64 * 1024) {}
  append(chunk: Buffer): void {
    this.text += chunk.toString('utf8');
    if (this.text.length > this.limit) this.text = this.text.slice(this.text.length - this.limit);
  }
  lastLines(count: number): string {
    const lines = this.text.split('\n');
    return lines.slice(Math.max(0, lines.length - count - 1)).join('\n');
  }
  get all(): string {
    return this.text;
  }
}

/** Every process this module started and has not yet seen exit: the last-resort cleanup works from here. */
const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // If the test worker goes away without afterAll having run, do not leave relays holding ports.
  process.once('exit', () => {
    for (const proc of live) proc.killNow();
  });
}

export class ManagedProcess {
  readonly name: string;
  readonly commandLine: string;
  readonly pid: number;
  readonly exited: Promise<ExitInfo>;
  private readonly child: ChildProcess;
  private readonly stdout = new OutputTail();
  private readonly stderr = new OutputTail();
  private exitInfo: ExitInfo | undefined;

  constructor(options: StartProcessOptions) {
    this.name = options.name;
    this.commandLine = [options.command, ...options.args].join(' ');
    const child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stdout?.on('data', (chunk: Buffer) => this.stdout.append(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.stderr.append(chunk));
    this.exited = new Promise<ExitInfo>((resolve) => {
      // 'close', not 'exit': by then stdout/stderr are drained, so a failure message has the last words.
      child.once('close', (code, signal) => {
        this.exitInfo = { code, signal };
        live.delete(this);
        resolve(this.exitInfo);
      });
      child.once('error', (err) => {
        this.stderr.append(Buffer.from(`\n[spawn error] ${err.message}\n`));
        this.exitInfo = { code: null, signal: null };
        live.delete(this);
        resolve(this.exitInfo);
      });
    });
    // spawn() reports a missing executable asynchronously; pid is undefined then.
    this.pid = child.pid ?? -1;
    if (this.pid > 0) {
      live.add(this);
      installExitHook();
    }
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined || this.pid <= 0;
  }

  get stderrText(): string {
    return this.stderr.all;
  }

  get stdoutText(): string {
    return this.stdout.all;
  }

  /** A paragraph for failure messages: what ran, how it ended, and the last lines it wrote. */
  describe(lines = 30): string {
    const status = this.exitInfo
      ? `exited with code ${String(this.exitInfo.code)} signal ${String(this.exitInfo.signal)}`
      : `running as pid ${this.pid}`;
    return [
      `${this.name}: ${status}`,
      `  command: ${this.commandLine}`,
      `  last stderr:\n${indent(this.stderr.lastLines(lines))}`,
      `  last stdout:\n${indent(this.stdout.lastLines(10))}`,
    ].join('\n');
  }

  /** SIGTERM by PID; SIGKILL if it has not exited after `graceMs`. Resolves once it is gone. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.hasExited) return this.exitInfo ?? { code: null, signal: null };
    this.signal('SIGTERM');
    const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), graceMs).unref());
    const first = await Promise.race([this.exited, timer]);
    if (first !== 'timeout') return first;
    this.signal('SIGKILL');
    return this.exited;
  }

  /** Synchronous SIGKILL for the process-exit hook, where nothing asynchronous runs any more. */
  killNow(): void {
    if (!this.hasExited) this.signal('SIGKILL');
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      process.kill(this.pid, sig);
    } catch (err) {
      // ESRCH: it is already gone, which is what we wanted.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

export function startProcess(options: StartProcessOptions): ManagedProcess {
  return new ManagedProcess(options);
}

/**
 * Fails when something already answers on the UDP port: then a `ping` reply would prove nothing about the
 * process we are about to start (a relay left over from an earlier run would answer instead).
 */
export async function assertUdpPortFree(host: string, port: number): Promise<void> {
  const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, host, () => resolve());
    });
  } catch (err) {
    throw new Error(
      `UDP ${host}:${port} is already in use (${(err as Error).message}); a relay from an earlier run may still be ` +
        `running — find it with \`ss -ulpn | grep ${port}\` and stop it by its PID`,
    );
  } finally {
    try {
      socket.close();
    } catch {
      // never bound: nothing to close
    }
  }
}

export interface PingWaitOptions {
  host: string;
  port: number;
  /** Overall deadline for the process to start answering. */
  deadlineMs?: number;
}

/**
 * Polls `ping` until `result: pong` comes back, the process exits, or the deadline passes. Failures carry
 * the process's stderr tail, so a relay that refuses its command line says why.
 */
export async function waitForNgPing(proc: ManagedProcess, options: PingWaitOptions): Promise<void> {
  const deadline = Date.now() + (options.deadlineMs ?? 15_000);
  const client = await NgRawClient.open(options.port, options.host);
  let lastProblem = 'no reply yet';
  try {
    while (Date.now() < deadline) {
      if (proc.hasExited) {
        throw new Error(`${proc.name} exited before answering ping on ${options.host}:${options.port}\n${proc.describe()}`);
      }
      try {
        const reply = await client.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 250 });
        const result = textOf(reply.dict, 'result');
        if (result === 'pong') return;
        lastProblem = `ping answered ${JSON.stringify(reply.plain)}`;
      } catch (err) {
        lastProblem = (err as Error).message;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(
      `${proc.name} did not answer ping on ${options.host}:${options.port} in time (${lastProblem})\n${proc.describe()}`,
    );
  } finally {
    client.close();
  }
}

/** Starts a process and waits for its ng ping; on any failure the process is stopped before the error goes up. */
export async function startNgProcess(options: StartProcessOptions, ng: PingWaitOptions): Promise<ManagedProcess> {
  await assertUdpPortFree(ng.host, ng.port);
  const proc = startProcess(options);
  try {
    await waitForNgPing(proc, ng);
    return proc;
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

export interface RunResult extends ExitInfo {
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a command to completion (killed by PID after `timeoutMs`) and returns its status and output. */
export async function runToExit(
  options: StartProcessOptions & { timeoutMs?: number },
): Promise<RunResult> {
  const proc = startProcess(options);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.stop(1000);
  }, options.timeoutMs ?? 15_000);
  const exit = await proc.exited;
  clearTimeout(timer);
  return { ...exit, stdout: proc.stdoutText, stderr: proc.stderrText, timedOut };
}
