/** The relay's settings, after command line, config file and defaults are merged. */
import type { DtlsCertificateOptions, Family, ThreadScheduling } from '../dataplane/types';
import type { RedisConfig } from './redis-config';

export type { ThreadScheduling };

export interface InterfaceConfig {
  /** Logical name ("default" when none was given); named interfaces are chosen with `direction`. */
  name: string;
  /** Concrete local address the media sockets bind to. */
  address: string;
  /** Address written into SDP (the part after '!'); equals `address` when none was given. */
  advertised: string;
  family: Family;
}

export interface ListenAddress {
  address: string;
  port: number;
}

/** `--max-*`: a new offer is refused while one is reached; 0 (max-sessions: -1) = no limit. */
export interface LoadLimitConfig {
  /** Calls; -1 = no limit, 0 = refuse every new call (drain). */
  maxSessions: number;
  /** 1-minute load average. */
  maxLoad: number;
  /** CPU usage, percent of all cores. */
  maxCpu: number;
  /** Relayed bytes per second. */
  maxBandwidth: number;
}

export interface RelayConfig {
  interfaces: InterfaceConfig[];
  listenNg: { address: string; port: number };
  portMin: number;
  portMax: number;
  /** Seconds. */
  timeout: number;
  silentTimeout: number;
  offerTimeout: number;
  /** 0 = off. */
  finalTimeout: number;
  deleteDelay: number;
  numThreads: number;
  /** syslog level 0 (emerg) .. 7 (debug). */
  logLevel: number;
  recordingDir: string | null;
  /** `--state-dir`: where call state is kept across restarts (src/state/); null = off. */
  stateDir: string | null;
  /** `--state-fsync`: fsync every state file write. */
  stateFsync: boolean;
  /** `--redis` and its companions (src/config/redis-config.ts); absent/null = no Redis. */
  redis?: RedisConfig | null;
  recordingMethod: 'pcap';
  /** pcap link type (`--recording-format`): raw = LINKTYPE_RAW (101), eth = LINKTYPE_ETHERNET (1). */
  recordingFormat: 'raw' | 'eth';
  /** `--record-egress`: also record the relay -> party copy of each forwarded packet. */
  recordEgress: boolean;
  /** `--dtls-passive`: the DTLS role the relay prefers when a party offers a=setup:actpass. Optional (default active). */
  dtlsPassive?: boolean;
  /** `--dtls-cert-cipher`, `--dtls-rsa-key-size`, `--dtls-signature`: the certificate the engine makes at start. Optional (default ECDSA P-256, sha-256). */
  dtlsCertificate?: DtlsCertificateOptions;
  /** `--dtmf-log-dest`: where each detected DTMF event is sent as rtpengine's JSON (UDP); absent/null = nowhere. */
  dtmfLogDest?: { address: string; port: number } | null;
  /** `--dtmf-log-ng-tcp`: each detected DTMF event also goes to every --listen-tcp-ng client (ng notify). Optional (default off). */
  dtmfLogNgTcp?: boolean;
  foreground: boolean;
  logStderr: boolean;
  /** false with `--no-log-timestamps`: log lines carry no "time" field (journald stamps them). */
  logTimestamps: boolean;
  table: number;
  pidfile: string | null;
  /** Endpoint learning default (`--endpoint-learning`). */
  endpointLearning: 'off' | 'immediate' | 'delayed' | 'heuristic';
  /** SO_RCVBUF per media socket in bytes. */
  socketReceiveBuffer: number;
  /** `--scheduling` / `--priority` for the I/O threads, as rtpengine applies them to its media threads. */
  scheduling: ThreadScheduling;
  /** `--idle-scheduling` / `--idle-priority` for the background threads (pcap writer, event delivery). */
  idleScheduling: ThreadScheduling;
  /** Testing aid: milliseconds every ng reply is held back after its command ran (0 = off). */
  debugNgDelayMs: number;
  // H4: control listeners (null = not listening) and load limits.
  listenCli: ListenAddress | null;
  listenTcpNg: ListenAddress | null;
  listenHttp: ListenAddress | null;
  listenHttps: ListenAddress | null;
  /** PEM file paths for --listen-https. */
  httpsCert: string | null;
  httpsKey: string | null;
  limits: LoadLimitConfig;
  /** `--ng-cache-max-entries` / `--ng-cache-max-bytes`: bounds of the ng reply cache (src/ng/cookie-cache.ts). */
  ngCacheMaxEntries: number;
  ngCacheMaxBytes: number;
}
