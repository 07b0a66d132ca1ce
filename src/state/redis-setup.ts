/**
 * The Redis side of a relay, started in order: the write connection (calls written from now on), the read
 * connection and the calls it holds (restored with those of the state dir), then, once this relay's own
 * calls have their ports back, the foreign calls of `--subscribe-keyspace`.
 */
import type { CallManager } from '../call/call-manager';
import { describeEndpoint, type RedisConfig } from '../config/redis-config';
import type { Logger } from '../logger';
import type { CallPersistence } from './persistence';
import { ForeignCalls } from './foreign-calls';
import { RedisConnection } from './redis-connection';
import { RedisCallWriter, loadCalls } from './redis-store';
import { keepRedisDtlsIdentity } from './redis-dtls-identity';
import type { DtlsCertificateOptions, DtlsCertificatePem } from '../dataplane/types';

export class RedisSide {
  private constructor(
    readonly writer: RedisCallWriter | null,
    private readonly writeConn: RedisConnection | null,
    private readonly connections: RedisConnection[],
    readonly foreign: ForeignCalls | null,
  ) {}

  /**
   * The write connection, made before the data plane: the DTLS certificate is read through it before the
   * engine makes one (redis-dtls-identity.ts). Null without a write database. Given to open() next.
   */
  static async connectWrite(config: RedisConfig, logger: Logger): Promise<RedisConnection | null> {
    if (!config.write) return null;
    const writeConn = new RedisConnection(config.write, config, logger, 'write');
    await writeConn.connect(config.required);
    return writeConn;
  }

  /** Reads what `--redis` holds into `persistence` (restored by its restore()); `writeConn` from connectWrite(). */
  static async open(config: RedisConfig, writeConn: RedisConnection | null, persistence: CallPersistence, manager: CallManager, logger: Logger): Promise<RedisSide> {
    const connections: RedisConnection[] = writeConn ? [writeConn] : [];
    try {
      let writer: RedisCallWriter | null = null;
      if (writeConn) {
        writer = new RedisCallWriter(writeConn, config, logger);
        persistence.useRedis(writer);
      }
      if (config.read) {
        const same = writeConn !== null && config.write !== null && describeEndpoint(config.write) === describeEndpoint(config.read);
        const readConn = same && writeConn ? writeConn : new RedisConnection(config.read, config, logger, 'restore');
        if (readConn !== writeConn) {
          connections.push(readConn);
          await readConn.connect(config.required);
        }
        if (readConn.isUp) {
          const started = Date.now();
          const loaded = await loadCalls(readConn, config.numThreads);
          persistence.addLoaded(loaded);
          logger.info({ redis: readConn.where, calls: loaded.calls.length, skipped: loaded.skipped.length, ms: Date.now() - started }, 'calls read from Redis');
        } else {
          logger.warn({ redis: readConn.where }, 'Redis not reachable at start (--no-redis-required): no calls restored from it');
        }
        // Only the restore reads there: a separate read connection is not kept.
        if (readConn !== writeConn) {
          readConn.close();
          connections.splice(connections.indexOf(readConn), 1);
        }
      }
      // With a server to subscribe to, also without --subscribe-keyspace: `ksadd` may follow one at runtime.
      const foreign = config.subscribe ? new ForeignCalls(config, manager, persistence, logger) : null;
      if (foreign) persistence.foreignCount = () => foreign.stats.calls;
      return new RedisSide(writer, writeConn, connections, foreign);
    } catch (err) {
      for (const c of connections) c.close();
      throw err;
    }
  }

  /** The engine's certificate, kept in the write database (not without one). */
  keepDtlsIdentity(options: DtlsCertificateOptions, pem: DtlsCertificatePem, logger: Logger): void {
    if (this.writeConn) keepRedisDtlsIdentity(this.writeConn, options, pem, logger);
  }

  /** After the own calls are restored: follow the other relays' databases. */
  async startForeign(): Promise<void> {
    await this.foreign?.start();
  }

  /** A last bounded wait for pending writes, then everything closes. */
  async close(): Promise<void> {
    await this.writer?.drain(1000);
    this.writer?.close();
    this.foreign?.close();
    for (const c of this.connections) c.close();
  }
}
