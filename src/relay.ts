/**
 * One running relay: the ng control socket, the call manager, the timeout sweep and the data plane, wired
 * together. This is also the embedding API for Node programs (see README "Embedding").
 */
import type { RelayConfig } from './config/types';
import type { DataPlane, DtlsCertificateOptions, EngineEvent } from './dataplane/types';
import { createNativeDataPlane } from './dataplane/native';
import { CallManager } from './call/call-manager';
import { DtmfLog } from './call/dtmf-log';
import { TimeoutSweeper } from './call/timeouts';
import { createCommandHandler } from './commands/handler';
import { interfaceStats } from './commands/interface-stats';
import { NgServer } from './ng/server';
import { NgProcessor } from './ng/processor';
import { CookieCache } from './ng/cookie-cache';
import { idFromWire } from './ng/byte-string';
import { raiseNofileLimit, type NofileRaise } from './dataplane/rlimit';
import type { NgHandler } from './ng/types';
import { SyslogLevel, type Logger, type PinoLogger } from './logger';
import { LoadLimits, SystemLoadProbe } from './commands/load-limits';
import { startControlListeners, type Listener } from './control/listeners';
import { CallRecorder } from './recording/call-recorder';
import { prepareRecordingDir } from './recording/recording-dir';
import { recoverSpool } from './recording/spool-recovery';
import { CallPersistence } from './state/persistence';
import { CallStore } from './state/call-store';
import { persistedCallId, wantsRedisUpdate } from './state/ng-hook';
import { RedisSide } from './state/redis-setup';
import { TrafficRates } from './call/kernel-split';
import { keepDtlsIdentity } from './state/dtls-identity';
import { dtlsOptionsAtStart } from './state/redis-dtls-identity';

export interface RelayDeps {
  /** A pino logger (createLogger): its level follows rtpengine-ctl `set loglevel` and SIGUSR1/SIGUSR2. */
  logger: PinoLogger;
  /** Defaults to the native engine. */
  dataPlane?: DataPlane;
}

export class Relay {
  private constructor(
    readonly config: RelayConfig,
    readonly manager: CallManager,
    readonly dataPlane: DataPlane,
    private readonly server: NgServer,
    /** --listen-cli, --listen-tcp-ng, --listen-http(s): closed with the relay. */
    private readonly listeners: Listener[],
    private readonly sweeper: TimeoutSweeper,
    /** Drops aged-out ng replies while no commands arrive (the cache otherwise rotates on access only). */
    private readonly cacheExpiry: NodeJS.Timeout,
    private readonly logger: PinoLogger,
    /** The run-time log level (rtpengine-ctl `set loglevel`, SIGUSR1/SIGUSR2 in cli.ts). */
    readonly logLevel: SyslogLevel,
    /** `--state-dir` and/or `--redis`; null when both are off. */
    readonly persistence: CallPersistence | null,
    /** `--redis`, `--subscribe-keyspace`; null when off. */
    readonly redis: RedisSide | null = null,
    /** statistics' packetrate_user/_kernel/...: sampled once a second while the relay runs. */
    private readonly rates: TrafficRates | null = null,
  ) {}

  static async start(config: RelayConfig, deps: RelayDeps): Promise<Relay> {
    const logger = deps.logger;
    // A recording dir that cannot be used stops the start, with one line naming it (cli.ts exits 1).
    const recordingDirs = config.recordingDir !== null ? prepareRecordingDir(config.recordingDir) : null;
    // Every media socket is a descriptor: use all the hard limit allows (rtpengine's packages set it high too).
    if (!deps.dataPlane) logNofileRaise(raiseNofileLimit(), logger);
    // --redis: connected first, so that the DTLS certificate can be read from it before the engine makes one.
    const redisWrite = config.redis ? await RedisSide.connectWrite(config.redis, logger) : null;
    // --state-dir / --redis: the DTLS certificate of the last run (or of the relay this one stands by for),
    // so restored and taken-over DTLS calls keep their a=fingerprint.
    let dtlsOptions: DtlsCertificateOptions | undefined;
    let dataPlane: DataPlane;
    try {
      dtlsOptions = await dtlsOptionsAtStart(config, redisWrite, logger);
      dataPlane =
        deps.dataPlane ??
        createNativeDataPlane({
          threads: config.numThreads,
          receiveBufferBytes: config.socketReceiveBuffer,
          scheduling: config.scheduling,
          idleScheduling: config.idleScheduling,
          batchChanges: true, // one I/O-thread round trip per ng command (the reply follows an await)
          table: config.table,
          kernelAddresses: config.interfaces.map((i) => i.address),
          ...(dtlsOptions ? { dtls: dtlsOptions } : {}),
        });
    } catch (err) {
      redisWrite?.close();
      throw err;
    }
    let recorder: CallRecorder | null = null;
    let persistence: CallPersistence | null = null;
    let redis: RedisSide | null = null;
    /** The ng client whose offer created each call (rtpengine-ctl shows it as "proxy"). */
    const callOrigins = new Map<string, string>();
    const manager = new CallManager(config, dataPlane, logger, {
      // delete, timeouts, shutdown: the recording's files move to their final names.
      callEnded: (call, reason) => {
        callOrigins.delete(call.callId);
        // A stop that keeps its calls (--state-dir) keeps their recordings going too, at the next start.
        if (reason === 'shutdown' && persistence) recorder?.detach(call);
        else if (reason === 'foreign-gone') recorder?.dropForeign(call);
        else recorder?.stop(call);
        persistence?.callEnded(call, reason);
        redis?.foreign?.forget(call.callId);
      },
    });
    const limits = new LoadLimits(config.limits, new SystemLoadProbe(() => dataPlane.totals().bytes));
    recorder = new CallRecorder(config, dataPlane, (call) => manager.streamIds(call), logger);
    if (config.stateDir !== null || config.redis) {
      const store = config.stateDir !== null ? new CallStore(config.stateDir, config.stateFsync) : null;
      persistence = new CallPersistence(store, manager, dataPlane, logger);
      try {
        persistence.load();
        const pem = dataPlane.dtlsCertificate?.();
        if (config.stateDir !== null && dtlsOptions && pem) keepDtlsIdentity(config.stateDir, dtlsOptions, pem, config.stateFsync, logger);
        // Redis calls join the state dir's (which wins for a call in both: see CallPersistence.addLoaded).
        if (config.redis) redis = await RedisSide.open(config.redis, redisWrite, persistence, manager, logger);
        if (redis && dtlsOptions && pem) redis.keepDtlsIdentity(dtlsOptions, pem, logger);
      } catch (err) {
        // Not open yet, or RedisSide.open failed (it closed it already; a second close does nothing).
        if (!redis) redisWrite?.close();
        dataPlane.close();
        throw err;
      }
    }
    if (config.stateDir === null && !config.redis) {
      logger.info('no --state-dir: calls do not survive a restart of ngrelay');
    }
    const activeRecorder = recorder;
    persistence?.restore((call) => activeRecorder.resume(call));
    // The restored rules are queued to the I/O threads (batchChanges) and in place within the fence that
    // every later ng reply waits for (DataPlane.settled); nothing needs to wait here.
    if (recordingDirs !== null) {
      // Restored calls go on recording into their spool pcaps; every other recording left there is finished.
      const continued = new Set([...manager.calls.values()].flatMap((c) => (c.recording ? [c.recording.pcapSpoolPath] : [])));
      for (const r of recoverSpool(recordingDirs, Date.now(), continued)) {
        logger.warn(r, 'finished a recording left in the spool by an earlier run');
      }
    }
    const sweeper = new TimeoutSweeper(manager, dataPlane, config);
    const foreign = redis?.foreign ?? null;
    if (foreign) sweeper.isForeign = (callId) => foreign.has(callId);
    if (foreign) foreign.continueRecording = (call) => activeRecorder.continueForeign(call);
    const startedMs = Date.now();
    const rates = new TrafficRates(() => dataPlane.totals());
    const handler = createCommandHandler({
      manager,
      dataPlane,
      recorder,
      logger,
      startedMs,
      // The processor is made below; this runs only once commands arrive through it.
      controlStats: () => processor.stats(),
      interfaces: () => interfaceStats(config, manager),
      rates: () => rates.rates(),
      limits,
      ...(persistence ? { stateStats: () => (persistence as CallPersistence).statistics() } : {}),
      ...(foreign ? { isForeign: (callId: string) => foreign.has(callId) } : {}),
    });
    // --subscribe-keyspace: a command naming a foreign call takes it over first (a query only binds it).
    const ownedHandler: NgHandler = foreign
      ? async (request, context) => {
          foreign.beforeCommand(request);
          return handler(request, context);
        }
      : handler;
    // --state-dir: the call's state is on disk before its reply leaves (also after an error: nothing is lost).
    const state = persistence;
    const persisted: NgHandler = state
      ? async (request, context) => {
          try {
            return await ownedHandler(request, context);
          } finally {
            const callId = persistedCallId(request);
            if (callId !== null) state.persist(callId, wantsRedisUpdate(request));
          }
        }
      : ownedHandler;
    // One async step per command after the handler (each layer more would cost every command a promise and a
    // frame): the reply describes media paths (batchChanges), so it leaves only once the I/O threads have them
    // in place; --debug-ng-delay then holds it back (the command ran at once, so a proxy retransmits meanwhile);
    // last, the ng client that created the call is noted (rtpengine-ctl's "proxy"). Pongs describe no media and
    // stay prompt, or a proxy would take the relay for dead.
    const delayMs = config.debugNgDelayMs;
    const replyWhenSettled: NgHandler = async (request, context) => {
      const reply = await persisted(request, context);
      if (reply['result'] !== 'pong') {
        // This command's changes are all made: fence them now, so the reply need not wait for the turn's end.
        await dataPlane.settled({ fenceNow: true });
        if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
      const callId = request['call-id'] ?? request['call id'];
      if (callId !== undefined && (Buffer.isBuffer(callId) || typeof callId === 'string')) {
        const id = idFromWire(callId);
        if (!callOrigins.has(id) && manager.calls.has(id)) callOrigins.set(id, `${context.remote.address}:${context.remote.port}`);
      }
      return reply;
    };
    // One processor (one cookie cache, one set of counters) behind every ng transport.
    const cookieCache = new CookieCache({ maxEntries: config.ngCacheMaxEntries, maxBytes: config.ngCacheMaxBytes });
    const processor = new NgProcessor({ handler: replyWhenSettled, logger, cookieCache });
    const server = new NgServer({ address: config.listenNg.address, port: config.listenNg.port, processor, logger });
    let listeners: Listener[];
    const logLevel = new SyslogLevel(logger, config.logLevel);
    try {
      await server.listen();
      listeners = await startControlListeners(config, {
        processor,
        logger,
        cli: {
          manager,
          config,
          dataPlane,
          limits,
          logLevel,
          startedMs,
          controlStats: () => processor.stats(),
          rates: () => rates.rates(),
          callOrigin: (callId) => callOrigins.get(callId),
          ...(config.redis ? { redis: { ownDb: config.redis.write?.db ?? -1, foreign } } : {}),
        },
        metrics: {
          manager,
          dataPlane,
          config,
          startedMs,
          controlStats: () => processor.stats(),
          ...(persistence ? { stateStats: () => (persistence as CallPersistence).snapshot() } : {}),
          ...(foreign ? { isForeign: (callId: string) => foreign.has(callId) } : {}),
        },
      });
    } catch (err) {
      await server.close();
      await redis?.close();
      dataPlane.close();
      throw err;
    }
    dataPlane.onEvents((events) => {
      logEngineEvents(events, manager, logger);
      // Several addresses per interface name: media to the party leaves from the socket ICE nominated, with
      // the keys of the handshake that completed last.
      for (const e of events) {
        const event = e.type === 'ice-selected' ? 'ice-selected' : e.type === 'dtls' && e.ok ? 'dtls-done' : null;
        const changed = event ? manager.socketEvent(e.id, event) : null;
        if (changed) persistence?.persist(changed.callId);
      }
      persistence?.onEvents(events);
    });
    // --dtmf-log-ng-tcp: like rtpengine, it reaches the clients of --listen-tcp-ng (without one, nobody).
    const tcpNg = config.dtmfLogNgTcp ? listeners.find((l) => l.kind === 'tcp-ng') : undefined;
    if (config.dtmfLogNgTcp && !tcpNg) logger.warn('--dtmf-log-ng-tcp without --listen-tcp-ng: DTMF events go to no ng client');
    const dtmfLog = new DtmfLog(manager, logger, {
      dest: config.dtmfLogDest ?? null,
      notifyNgClients: tcpNg?.notifyClients ?? null,
    });
    dataPlane.onEvents((events) => dtmfLog.onEvents(events));
    const { scheduling, idleScheduling, kernelPath } = dataPlane.info();
    // --table: one line either way; a kernel that refuses leaves everything in userspace, as with --table=-1.
    if (kernelPath?.active === true) {
      logger.info({ attach: kernelPath.attach, interfaces: kernelPath.interfaces }, 'kernel fast path on');
    } else if (kernelPath) {
      logger.warn({ table: config.table }, `kernel fast path unavailable: ${kernelPath.reason}; forwarding in userspace`);
    }
    // rtpengine carries on with default scheduling too; the operator learns why a setting did not apply.
    if (scheduling.error !== null) {
      logger.warn({ scheduling }, 'could not apply --scheduling/--priority to the I/O threads');
    }
    if (idleScheduling.error !== null) {
      logger.warn({ idleScheduling }, 'could not apply --idle-scheduling/--idle-priority to the background threads');
    }
    sweeper.start();
    persistence?.start();
    await redis?.startForeign();
    const cacheExpiry = setInterval(() => cookieCache.expire(), CACHE_EXPIRY_MS);
    cacheExpiry.unref();
    logger.info(
      {
        listenNg: `${config.listenNg.address}:${config.listenNg.port}`,
        interfaces: config.interfaces,
        dataPlane: dataPlane.info(),
      },
      'ngrelay started',
    );
    rates.start();
    return new Relay(config, manager, dataPlane, server, listeners, sweeper, cacheExpiry, logger, logLevel, persistence, redis, rates);
  }

  async close(): Promise<void> {
    this.sweeper.stop();
    this.rates?.stop();
    clearInterval(this.cacheExpiry);
    await this.server.close();
    await Promise.all(this.listeners.map((l) => l.close()));
    // A last write of media progress; the calls' files stay for the next start.
    this.persistence?.stop();
    await this.redis?.close();
    this.manager.destroyAll();
    this.dataPlane.close();
    this.logger.info('ngrelay stopped');
  }
}

/** How often idle replies are looked at: a reply outlives its 30–60 s at most by this much. */
const CACHE_EXPIRY_MS = 10_000;

/** Engine events as log lines with the call they belong to; first packets only at debug level. */
function logEngineEvents(events: EngineEvent[], manager: CallManager, logger: Logger): void {
  for (const e of events) {
    const fields = {
      'call-id': manager.callIdOfStream(e.id),
      stream: e.id,
      event: e.type,
      endpoint: 'from' in e ? `${e.from.address}:${e.from.port}` : 'endpoint' in e ? `${e.endpoint.address}:${e.endpoint.port}` : undefined,
    };
    if (e.type === 'dtmf') continue; // logged by DtmfLog, with its digit
    // A DTLS handshake: its profile, or why it failed (no media flows that way then).
    if (e.type === 'dtls') {
      if (e.ok) logger.info({ ...fields, profile: e.profile }, 'DTLS-SRTP handshake done');
      else logger.warn({ ...fields, error: e.error }, 'DTLS-SRTP handshake failed');
    } else if (e.type === 'ice-selected') logger.info(fields, 'ICE selected a pair');
    else if (e.type === 'first-packet') logger.debug(fields, 'media event');
    else logger.info(fields, 'media event');
  }
}

function logNofileRaise(r: NofileRaise, logger: Logger): void {
  const fields = { soft: r.soft, hard: r.hard, previous: r.previous };
  if (r.error !== null) logger.warn({ ...fields, error: r.error }, 'could not raise the descriptor limit (RLIMIT_NOFILE)');
  else logger.info(fields, `descriptor limit (RLIMIT_NOFILE): ${r.soft < 0 ? 'unlimited' : r.soft}`);
}
