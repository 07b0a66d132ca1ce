/**
 * The relay's DTLS certificate in Redis (`--redis`): one key, DTLS_IDENTITY_KEY, in the write database,
 * holding the same record as the state dir's `dtls-identity.state`. rtpengine 10.5 has nothing like it: it
 * makes a new certificate at every start and keeps no DTLS state in Redis, so its restored DTLS calls fail.
 *
 * Relays that follow each other's databases (`--subscribe-keyspace`) share one identity: a relay with no
 * certificate of its own (state dir, own database) takes the one found first in its subscribed databases.
 * So a standby that takes over a DTLS call presents the certificate the party already has the a=fingerprint
 * of, without a certificate per call in the engine. The certificate is chosen once, at start, before any call
 * is restored; Redis down or a corrupt key only means a new certificate (one log line), never a lost call.
 */
import { newRedisClient } from './redis-client';
import type { RelayConfig } from '../config/types';
import type { RedisConfig, RedisEndpoint } from '../config/redis-config';
import { describeEndpoint } from '../config/redis-config';
import type { DtlsCertificateOptions, DtlsCertificatePem } from '../dataplane/types';
import type { Logger } from '../logger';
import { DEFAULT_DTLS_CERTIFICATE, decodeDtlsIdentity, dtlsOptionsWithSaved, encodeDtlsIdentity, type SavedIdentity } from './dtls-identity';
import { baseClientOptions, type RedisConnection } from './redis-connection';

/** Not a call: restore and keyspace notifications pass it by (call-ids are the other keys of the database). */
export const DTLS_IDENTITY_KEY = 'ngrelay-dtls-identity';

/** What one database holds under DTLS_IDENTITY_KEY. */
type RedisIdentity = SavedIdentity | { kind: 'unread'; why: string };

function fromValue(value: Buffer | null, options: DtlsCertificateOptions): RedisIdentity {
  return value === null ? { kind: 'none', why: null } : decodeDtlsIdentity(value, options);
}

async function readOwn(conn: RedisConnection, options: DtlsCertificateOptions): Promise<RedisIdentity> {
  if (!conn.isUp) return { kind: 'unread', why: 'not reachable' };
  try {
    return fromValue(await conn.client.getBuffer(DTLS_IDENTITY_KEY), options);
  } catch (err) {
    return { kind: 'unread', why: (err as Error).message };
  }
}

/** One GET in a subscribed database, on a connection of its own that is closed again (no retries). */
async function readOnce(endpoint: RedisEndpoint, config: RedisConfig, options: DtlsCertificateOptions): Promise<RedisIdentity> {
  const client = newRedisClient({
    ...baseClientOptions(endpoint, config),
    // Bounded even without --redis-cmd-timeout: the relay's start waits for it.
    commandTimeout: config.cmdTimeoutMs > 0 ? config.cmdTimeoutMs : config.connectTimeoutMs,
    retryStrategy: () => null,
  });
  client.on('error', () => undefined); // the failure is the result below
  try {
    await client.connect();
    return fromValue(await client.getBuffer(DTLS_IDENTITY_KEY), options);
  } catch (err) {
    return { kind: 'unread', why: (err as Error).message };
  } finally {
    client.disconnect();
  }
}

/**
 * The certificate options for the engine at start: the state dir's certificate, else the one of this
 * relay's Redis database, else the first of its subscribed databases, else none (the engine makes one).
 */
export async function dtlsOptionsAtStart(config: RelayConfig, write: RedisConnection | null, logger: Logger): Promise<DtlsCertificateOptions | undefined> {
  if (config.stateDir === null && !config.redis) return config.dtlsCertificate;
  const base = config.dtlsCertificate ?? DEFAULT_DTLS_CERTIFICATE;
  const fromDir = config.stateDir !== null ? dtlsOptionsWithSaved(config.stateDir, base, logger) : base;
  const redis = config.redis;
  if (!redis) return fromDir;
  let chosen: DtlsCertificatePem | null = fromDir.certificatePem !== undefined && fromDir.privateKeyPem !== undefined ? { certificatePem: fromDir.certificatePem, privateKeyPem: fromDir.privateKeyPem } : null;
  const unread: string[] = [];
  /** `subscribed`: another relay's database, whose certificate should be the one used here. */
  const consider = (where: string, found: RedisIdentity, subscribed: boolean): void => {
    if (found.kind === 'saved') {
      if (chosen === null) {
        chosen = found.pem;
        logger.info({ redis: where }, 'DTLS certificate taken from Redis');
      } else if (subscribed && chosen.certificatePem !== found.pem.certificatePem) {
        logger.warn({ redis: where }, 'this Redis database holds another DTLS certificate than the one used here: a DTLS call taken over from its relay keeps its keys, but a new handshake would show the party another a=fingerprint');
      }
    } else if (found.kind === 'unread') unread.push(`${where}: ${found.why}`);
    else if (found.why !== null) logger.error({ redis: where, key: DTLS_IDENTITY_KEY, reason: found.why }, 'DTLS certificate key in Redis skipped (left there, not used)');
  };
  if (write && redis.write) consider(describeEndpoint(redis.write), await readOwn(write, base), false);
  if (redis.subscribe) {
    for (const db of redis.subscribeKeyspace) {
      const endpoint = { ...redis.subscribe, db };
      consider(describeEndpoint(endpoint), await readOnce(endpoint, redis, base), true);
    }
  }
  if (unread.length > 0 && chosen === null) {
    logger.warn({ unread }, 'DTLS certificate not read from Redis (not reachable at start): a new one is made');
  }
  const pem: DtlsCertificatePem | null = chosen;
  return pem ? { ...base, ...pem } : base;
}

/**
 * The engine's certificate in this relay's database: written now and again on every reconnect (Redis down
 * at start, or back empty). No TTL: it lives as long as the calls that need it, and longer.
 */
export function keepRedisDtlsIdentity(conn: RedisConnection, options: DtlsCertificateOptions, pem: DtlsCertificatePem, logger: Logger): void {
  const bytes = encodeDtlsIdentity(options, pem);
  let failing = false;
  const write = (): void => {
    if (!conn.isUp) return; // onReady writes it
    conn.client.set(DTLS_IDENTITY_KEY, bytes).then(
      () => {
        failing = false;
      },
      (err: Error) => {
        if (!failing) logger.error({ redis: conn.where, err: err.message }, 'cannot write the DTLS certificate to Redis: a relay taking over would show another fingerprint');
        failing = true;
      },
    );
  };
  conn.onReady(write);
  write();
}
