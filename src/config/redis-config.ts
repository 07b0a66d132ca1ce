/**
 * rtpengine's Redis options (`--redis`, `--redis-write`, `--subscribe-keyspace`, ...) turned into one
 * RedisConfig. Meanings as rtpengine 10.5 has them: `--redis` is read at start (restore) and written unless
 * `--redis-write` names another database; keyspace notifications of `--subscribe-keyspace`'s databases are
 * taken from `--redis-subscribe` (a later rtpengine's option), else from `--redis`.
 */
import { BadValue, parseInteger } from './values';

export interface RedisEndpoint {
  host: string;
  port: number;
  db: number;
  password: string | null;
}

export interface RedisConfig {
  /** `--redis`: restored from at start; null = nothing restored from Redis. */
  read: RedisEndpoint | null;
  /** `--redis-write`, else `--redis`: where this relay's own calls are written. */
  write: RedisEndpoint | null;
  /**
   * `--redis-subscribe`, else `--redis`: the server whose keyspace notifications are followed (also without
   * `--subscribe-keyspace`: `rtpengine-ctl ksadd` subscribes at runtime); null = neither option given.
   */
  subscribe: RedisEndpoint | null;
  /** `--subscribe-keyspace`: databases whose calls this relay holds as foreign calls (standby). */
  subscribeKeyspace: number[];
  /** `--redis-num-threads`: how many batches of keys are read at once when restoring. */
  numThreads: number;
  /** `--redis-expires`: TTL of each call's key, seconds. */
  expiresS: number;
  /** `--redis-allowed-errors`: errors in a row before writing pauses `disableTimeS`; -1 = never pause. */
  allowedErrors: number;
  /** `--redis-disable-time`: seconds writing pauses after `allowedErrors` errors. */
  disableTimeS: number;
  /** `--redis-cmd-timeout`: ms a command may take (0 = no limit). */
  cmdTimeoutMs: number;
  /** `--redis-connect-timeout`: ms a connection attempt may take. */
  connectTimeoutMs: number;
  /** Not `--no-redis-required`: the start fails when a configured Redis cannot be reached. */
  required: boolean;
}

export const REDIS_DEFAULTS = {
  numThreads: 4,
  expiresS: 86400,
  allowedErrors: -1,
  disableTimeS: 10,
  cmdTimeoutMs: 0,
  connectTimeoutMs: 1000,
} as const;

/** `[PW@]IP:PORT/DB` (IPv6 as `[addr]:port/db`). */
export function parseRedisEndpoint(text: string): RedisEndpoint {
  const at = text.lastIndexOf('@');
  const password = at >= 0 ? text.slice(0, at) : null;
  const rest = at >= 0 ? text.slice(at + 1) : text;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]]+)):(\d+)\/(\d+)$/.exec(rest);
  if (!m) throw new BadValue('expected [PASSWORD@]IP:PORT/DB');
  const host = m[1] ?? m[2] ?? '';
  return {
    host,
    port: parseInteger(m[3] ?? '', 1, 65535),
    db: parseInteger(m[4] ?? '', 0, 65535),
    password: password === '' ? null : password,
  };
}

/** `--subscribe-keyspace` values: each may hold several databases ("1 2" or "1;2"). */
export function parseKeyspaceList(values: readonly string[]): number[] {
  const dbs = values.flatMap((v) => v.split(/[\s;,]+/).filter((t) => t !== ''));
  return [...new Set(dbs.map((t) => parseInteger(t, 0, 65535)))];
}

export function describeEndpoint(e: RedisEndpoint): string {
  const host = e.host.includes(':') ? `[${e.host}]` : e.host;
  return `${host}:${e.port}/${e.db}`;
}
