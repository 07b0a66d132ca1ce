/**
 * A throwaway Debian `redis-server` (scripts/install-test-deps.sh installs it) on 127.0.0.1 and a random
 * port, with its own temporary dir, keyspace notifications on (what `--subscribe-keyspace` follows), no
 * persistence of its own. Stopped by its PID; `kill9`, `pause`/`resume` (SIGSTOP/SIGCONT) and `restart`
 * for the Redis-trouble tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import { startProcess, type ManagedProcess } from './process';
import { sleep } from './rtp-packets';
import { freeTcpPort } from './free-ports';

export const REDIS_SERVER = '/usr/bin/redis-server';

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export class TestRedis {
  private proc: ManagedProcess | null = null;
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-redis-'));

  private constructor(readonly port: number) {}

  /** On a TCP port the kernel hands out as free now. */
  static async start(): Promise<TestRedis> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = await freeTcpPort();
      const r = new TestRedis(port);
      try {
        await r.launch();
        return r;
      } catch {
        await r.stop();
      }
    }
    throw new Error('no free port for redis-server');
  }

  private async launch(): Promise<void> {
    this.proc = startProcess({
      name: 'redis-server',
      command: REDIS_SERVER,
      args: [
        '--bind', '127.0.0.1',
        '--port', String(this.port),
        '--dir', this.dir,
        '--save', '',
        '--appendonly', 'no',
        '--daemonize', 'no',
        '--notify-keyspace-events', 'KA',
        '--databases', '16',
      ],
    });
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (this.proc.hasExited) throw new Error(this.proc.describe());
      if (await portAnswers(this.port)) return;
      await sleep(20);
    }
    throw new Error(`redis-server did not listen on ${this.port}`);
  }

  /** `--redis` value for database `db`. */
  url(db: number): string {
    return `127.0.0.1:${this.port}/${db}`;
  }

  client(db: number): Redis {
    return new Redis({ host: '127.0.0.1', port: this.port, db, lazyConnect: false, maxRetriesPerRequest: 1 });
  }

  async kill9(): Promise<void> {
    if (!this.proc) return;
    this.proc.killNow();
    await this.proc.exited;
    this.proc = null;
  }

  /** Same port again (empty: it keeps nothing on disk). */
  async restart(): Promise<void> {
    await this.kill9();
    await this.launch();
  }

  pause(): void {
    if (this.proc) process.kill(this.proc.pid, 'SIGSTOP');
  }

  resume(): void {
    if (this.proc) process.kill(this.proc.pid, 'SIGCONT');
  }

  async stop(): Promise<void> {
    if (this.proc) {
      this.resume();
      await this.proc.stop();
      this.proc = null;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
