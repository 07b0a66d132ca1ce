/** The Redis options as rtpengine spells them, and the ng `no-redis-update` flag. */
import { describe, expect, it } from 'vitest';
import { parseInvocation } from '../../src/config';
import { ConfigError } from '../../src/errors';
import { parseKeyspaceList, parseRedisEndpoint } from '../../src/config/redis-config';
import { BadValue } from '../../src/config/values';
import { wantsRedisUpdate } from '../../src/state/ng-hook';

const env = { cpuCount: 2 };
function redisOf(argv: string[]) {
  const inv = parseInvocation(argv, env);
  if (inv.action !== 'run') throw new Error('not run');
  return { redis: inv.config.redis, warnings: inv.warnings };
}

describe('Redis options', () => {
  it('[PW@]IP:PORT/DB, IPv6 in brackets; malformed ones are errors', () => {
    expect(parseRedisEndpoint('10.0.0.5:6379/2')).toEqual({ host: '10.0.0.5', port: 6379, db: 2, password: null });
    expect(parseRedisEndpoint('s3cr@t@127.0.0.1:7000/0')).toEqual({ host: '127.0.0.1', port: 7000, db: 0, password: 's3cr@t' });
    expect(parseRedisEndpoint('[::1]:6379/15')).toEqual({ host: '::1', port: 6379, db: 15, password: null });
    for (const bad of ['127.0.0.1:6379', '127.0.0.1/1', ':6379/1', '127.0.0.1:0/1', '127.0.0.1:6379/x']) {
      expect(() => parseRedisEndpoint(bad), bad).toThrow(BadValue);
    }
    expect(() => parseInvocation(['--redis=localhost'], env)).toThrow(ConfigError);
  });

  it('--redis alone: read and write there; --redis-write writes elsewhere; defaults as rtpengine', () => {
    expect(redisOf([]).redis).toBeNull();
    expect(redisOf(['--redis=127.0.0.1:6379/1']).redis).toEqual({
      read: { host: '127.0.0.1', port: 6379, db: 1, password: null },
      write: { host: '127.0.0.1', port: 6379, db: 1, password: null },
      subscribe: { host: '127.0.0.1', port: 6379, db: 1, password: null },
      subscribeKeyspace: [],
      numThreads: 4,
      expiresS: 86400,
      allowedErrors: -1,
      disableTimeS: 10,
      cmdTimeoutMs: 0,
      connectTimeoutMs: 1000,
      required: true,
    });
    const split = redisOf(['-r', '127.0.0.1:6379/1', '-w', '127.0.0.2:6380/3', '-q', '--redis-expires=60']).redis;
    expect(split).toMatchObject({ read: { db: 1 }, write: { host: '127.0.0.2', port: 6380, db: 3 }, expiresS: 60, required: false });
  });

  it('--subscribe-keyspace: several databases per value and repeated; needs a server, else one warning', () => {
    expect(parseKeyspaceList(['1 2', '3;4', '2'])).toEqual([1, 2, 3, 4]);
    expect(redisOf(['--redis=127.0.0.1:6379/1', '-k', '2', '--subscribe-keyspace=3']).redis).toMatchObject({
      subscribe: { db: 1 },
      subscribeKeyspace: [2, 3],
    });
    expect(redisOf(['--redis-subscribe=127.0.0.1:7000/0', '-k', '2']).redis).toMatchObject({ read: null, write: null, subscribe: { port: 7000 } });
    const none = redisOf(['-k', '2']);
    expect(none.redis).toBeNull();
    expect(none.warnings).toEqual(['option --subscribe-keyspace has no effect without --redis or --redis-subscribe (the server to subscribe to)']);
  });
});

describe('no-redis-update', () => {
  it('in flags or rtpp-flags, as text or bytes', () => {
    expect(wantsRedisUpdate({ command: 'offer' })).toBe(true);
    expect(wantsRedisUpdate({ command: 'offer', flags: ['trust-address'] })).toBe(true);
    expect(wantsRedisUpdate({ command: 'offer', flags: [Buffer.from('no-redis-update')] })).toBe(false);
    expect(wantsRedisUpdate({ command: 'offer', flags: ['no redis update'] })).toBe(false);
    expect(wantsRedisUpdate({ command: 'offer', 'rtpp-flags': 'replace-origin no-redis-update' })).toBe(false);
    expect(wantsRedisUpdate({ command: 'offer', 'rtpp-flags': 'no-redis-updates' })).toBe(true);
  });
});
