/**
 * New ioredis clients, with ioredis loaded on the first one. Loading it costs ~20 MB of RSS (measured:
 * 41 -> 64 MB for a bare node), which a relay without `--redis` or `--subscribe-keyspace` should not pay:
 * the modules that talk to Redis import only its types, and construct clients here.
 */
import type Redis from 'ioredis';
import type { RedisOptions } from 'ioredis';

let RedisClass: typeof Redis | undefined;

export function newRedisClient(options: RedisOptions): Redis {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  RedisClass ??= (require('ioredis') as typeof import('ioredis')).default;
  return new RedisClass(options);
}
