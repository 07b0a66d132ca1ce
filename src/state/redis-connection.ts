/**
 * One ioredis connection as the Redis options configure it: reconnects for ever with a capped backoff, never
 * queues commands while down (the writer keeps what is missing and writes it on reconnect), and logs one
 * line per change between up and down, not one per failed attempt.
 */
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';
import { newRedisClient } from './redis-client';
import type { RedisConfig, RedisEndpoint } from '../config/redis-config';
import { describeEndpoint } from '../config/redis-config';
import type { Logger } from '../logger';

/** Reconnect backoff: 100 ms doubling to 5 s. */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(attempt, 6), 5000);
}

/** A configured Redis could not be reached at start (and `--no-redis-required` is not set). */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  constructor(
    readonly where: string,
    detail: string,
  ) {
    super(`Redis ${where} cannot be reached: ${detail} (--no-redis-required starts without it)`);
  }
}

/**
 * The ioredis options every connection of the relay shares: the endpoint, connect on demand, no queue while
 * down, no retried commands. Callers add their retry strategy (and may tighten the command timeout).
 */
export function baseClientOptions(endpoint: RedisEndpoint, config: Pick<RedisConfig, 'cmdTimeoutMs' | 'connectTimeoutMs'>): RedisOptions {
  return {
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    ...(endpoint.password !== null ? { password: endpoint.password } : {}),
    lazyConnect: true,
    connectTimeout: config.connectTimeoutMs,
    ...(config.cmdTimeoutMs > 0 ? { commandTimeout: config.cmdTimeoutMs } : {}),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  };
}

export class RedisConnection {
  readonly client: Redis;
  readonly where: string;
  private up = false;
  private downLogged = false;
  private lastError = '';
  /** Closed on purpose (shutdown): the end of the connection is not news. */
  private closing = false;
  private readonly readyListeners: Array<() => void> = [];

  constructor(
    endpoint: RedisEndpoint,
    config: Pick<RedisConfig, 'cmdTimeoutMs' | 'connectTimeoutMs'>,
    private readonly logger: Logger,
    /** What this connection is for, in log lines ("write", "restore", "subscribe"). */
    readonly role: string,
  ) {
    this.where = describeEndpoint(endpoint);
    this.client = newRedisClient({
      ...baseClientOptions(endpoint, config),
      retryStrategy: (attempt: number) => reconnectDelayMs(attempt),
      // A key written while a SIGSTOPped server hangs must not wait for ever: the socket's keepalive and the
      // command timeout bound it.
      keepAlive: 1000,
    });
    this.client.on('ready', () => {
      if (!this.up) this.logger.info({ redis: this.where, role: this.role }, 'Redis connected');
      this.up = true;
      this.downLogged = false;
      for (const l of this.readyListeners) l();
    });
    this.client.on('error', (err: Error) => {
      this.lastError = err.message;
      this.markDown(err.message);
    });
    this.client.on('close', () => this.markDown(this.lastError || 'connection closed'));
  }

  get isUp(): boolean {
    return this.up && this.client.status === 'ready';
  }

  onReady(listener: () => void): void {
    this.readyListeners.push(listener);
  }

  private markDown(reason: string): void {
    if (this.closing) return;
    const wasUp = this.up;
    this.up = false;
    if (wasUp || !this.downLogged) {
      this.logger.error({ redis: this.where, role: this.role, reason }, 'Redis unreachable; retrying with backoff');
      this.downLogged = true;
    }
  }

  /** First connection; with `required`, a failure throws RedisUnavailableError, else retries go on quietly. */
  async connect(required: boolean): Promise<void> {
    try {
      await this.client.connect();
    } catch (err) {
      if (required) {
        this.client.disconnect();
        throw new RedisUnavailableError(this.where, (err as Error).message);
      }
      // ioredis keeps reconnecting by itself (retryStrategy) after a failed first connect.
    }
  }

  close(): void {
    this.closing = true;
    this.client.disconnect();
  }
}
