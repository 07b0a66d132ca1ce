/**
 * Turns the command line (and the config file it names) into a RelayConfig, the way rtpengine does:
 * long options `--opt=value` or `--opt value`, rtpengine's short letters (`-i ADDR`, `-iADDR`, grouped flags
 * `-fE`), config file keys named like the long options, the command line overriding the file per option.
 * Every problem is a ConfigError with a one-line message naming the option and value.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, networkInterfaces as osNetworkInterfaces } from 'node:os';
import { ConfigError } from '../errors';
import type { InterfaceConfig, ListenAddress, RelayConfig, ThreadScheduling } from './types';
import { parseIni, quote, splitList } from './ini';
import { optionByName, optionByShort, type OptionSpec } from './options';
import { DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES } from '../ng/cookie-cache';
import { REDIS_DEFAULTS, parseKeyspaceList, parseRedisEndpoint, type RedisConfig, type RedisEndpoint } from './redis-config';
import {
  BadValue,
  parseBoolean,
  parseInteger,
  parseInterface,
  parseListenAddress,
  type NetworkInterfaceMap,
} from './values';

/** What the parser may ask of the outside world; tests replace it. */
export interface ParseEnvironment {
  /** Reads the config file. Default: fs.readFileSync(path, 'utf8'). */
  readTextFile?: (path: string) => string;
  /** Default for --num-threads. Default: os.availableParallelism(). */
  cpuCount?: number;
  /** Resolves device names in --interface. Default: os.networkInterfaces(). */
  networkInterfaces?: () => NetworkInterfaceMap;
}

export type Invocation =
  | { action: 'help' }
  | { action: 'version' }
  /** `warnings`: one line each, e.g. rtpengine options that have no effect here; the CLI should log them. */
  | { action: 'run'; config: RelayConfig; warnings: string[] };

/** Sections read when --config-section is not given: rtpengine's, then ngrelay's on top of it. */
export const DEFAULT_SECTIONS = ['rtpengine', 'ngrelay'] as const;

export const DEFAULTS = {
  interface: '127.0.0.1',
  listenNg: { address: '127.0.0.1', port: 2223 },
  portMin: 30000,
  portMax: 40000,
  timeout: 60,
  silentTimeout: 3600,
  offerTimeout: 3600,
  finalTimeout: 0,
  deleteDelay: 30,
  logLevel: 6,
  table: -1,
  endpointLearning: 'heuristic',
  socketReceiveBuffer: 4 * 1024 * 1024,
} as const;

const INT32_MAX = 2147483647;
const INT32_MIN = -2147483648;
const MAX_THREADS = 1024;

/** One occurrence of an option with its raw text and where it came from (for error messages). */
interface Setting {
  option: OptionSpec;
  value: string;
  /** `--port-min` or `port-min (/etc/x.conf:3)`. */
  where: string;
}

/**
 * Parse `argv` (process.argv.slice(2)) into the relay's settings. --help and --version are accepted and
 * ignored here; use `parseInvocation` to act on them.
 */
export function parseCommandLine(argv: readonly string[], env: ParseEnvironment = {}): RelayConfig {
  const invocation = parseInvocation(argv, env, true);
  if (invocation.action !== 'run') throw new Error('unreachable: help/version not ignored');
  return invocation.config;
}

export function parseInvocation(argv: readonly string[], env: ParseEnvironment = {}, ignoreHelp = false): Invocation {
  const cli = scanCommandLine(argv);
  if (!ignoreHelp) {
    if (cli.some((s) => s.option.name === 'help')) return { action: 'help' };
    if (cli.some((s) => s.option.name === 'version')) return { action: 'version' };
  }
  const sources: Setting[][] = [...readConfigFile(cli, env), cli];
  const merged = mergeSources(sources);
  checkUnusedValues(merged);
  return { action: 'run', config: buildConfig(merged, env), warnings: startWarnings(merged) };
}

/** Options whose value nothing reads (rtpengine-only ones) are still checked, so `tos = abc` fails. */
function checkUnusedValues(merged: Map<string, Setting[]>): void {
  for (const list of merged.values()) {
    const check = list[0]!.option.check;
    if (check === undefined) continue;
    for (const s of list) {
      try {
        check(s.value);
      } catch (err) {
        throw badValue(s, err);
      }
    }
  }
}

/**
 * One line per rtpengine feature that is asked for and that ngrelay lacks, saying what it does instead. The
 * CLI logs them once at start. Values are already valid here (buildConfig ran).
 */
function startWarnings(merged: Map<string, Setting[]>): string[] {
  const warnings: string[] = [];
  for (const list of merged.values()) {
    const s = list[list.length - 1]!;
    if (s.option.noEffect !== undefined) warnings.push(`option ${s.where} has no effect: ngrelay ${s.option.noEffect}`);
    if (s.option.name === 'subscribe-keyspace' && !merged.has('redis') && !merged.has('redis-subscribe')) {
      warnings.push(`option ${s.where} has no effect without --redis or --redis-subscribe (the server to subscribe to)`);
    }
    if (s.option.name === 'recording-method' && s.value === 'proc') {
      warnings.push(
        `option ${s.where} (proc) has no effect: ngrelay has no recording daemon to hand packets to; a call that asks for recording is recorded as pcap under --recording-dir`,
      );
    }
  }
  return warnings;
}

function scanCommandLine(argv: readonly string[]): Setting[] {
  const settings: Setting[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ConfigError(`unexpected argument ${quote(argv[i + 1]!)}`);
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq >= 0 ? arg.slice(2, eq) : arg.slice(2);
      const option = optionByName(name);
      if (!option) throw new ConfigError(`unknown option --${name}`);
      const where = `--${option.name}`;
      if (option.kind === 'flag') {
        if (eq >= 0) throw new ConfigError(`option ${where} takes no value`);
        settings.push({ option, value: 'true', where });
      } else if (eq >= 0) {
        settings.push({ option, value: arg.slice(eq + 1), where });
      } else {
        // Like GLib, the next argument is the value even when it starts with '-' (--table -1).
        if (i + 1 >= argv.length) throw new ConfigError(`option ${where} needs a value`);
        settings.push({ option, value: argv[++i]!, where });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // -fE (grouped flags), -i VALUE, -iVALUE
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const option = optionByShort(letter);
        if (!option) throw new ConfigError(`unknown option -${letter}`);
        const where = `--${option.name}`;
        if (option.kind === 'flag') {
          settings.push({ option, value: 'true', where });
          continue;
        }
        if (j + 1 < arg.length) {
          settings.push({ option, value: arg.slice(j + 1), where });
        } else {
          if (i + 1 >= argv.length) throw new ConfigError(`option -${letter} (${where}) needs a value`);
          settings.push({ option, value: argv[++i]!, where });
        }
        break;
      }
      continue;
    }
    throw new ConfigError(`unexpected argument ${quote(arg)}`);
  }
  return settings;
}

function lastCommandLineValue(cli: Setting[], name: string): string | undefined {
  for (let i = cli.length - 1; i >= 0; i--) if (cli[i]!.option.name === name) return cli[i]!.value;
  return undefined;
}

/** The config file's settings, one array per section read, in override order. Empty without a file. */
function readConfigFile(cli: Setting[], env: ParseEnvironment): Setting[][] {
  const file = lastCommandLineValue(cli, 'config-file');
  const section = lastCommandLineValue(cli, 'config-section');
  if (file === undefined || file === 'none') return [];
  if (file === '') throw new ConfigError('invalid value \'\' for --config-file: empty file name');
  let text: string;
  try {
    text = (env.readTextFile ?? ((p: string) => readFileSync(p, 'utf8')))(file);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ConfigError(`cannot read config file ${quote(file)}: ${reason.split('\n')[0]}`);
  }
  const ini = parseIni(text, file);
  const wanted = section !== undefined ? [section] : [...DEFAULT_SECTIONS];
  const present = wanted.filter((s) => ini.has(s));
  if (present.length === 0) {
    throw new ConfigError(`config file ${quote(file)} has no ${wanted.map((s) => `[${s}]`).join(' or ')} section`);
  }
  return present.map((name) =>
    ini.get(name)!.flatMap((entry): Setting[] => {
      const where = `${entry.key} (${file}:${entry.line})`;
      const option = optionByName(entry.key);
      if (!option) throw new ConfigError(`unknown option ${quote(entry.key)} in ${file}:${entry.line}`);
      if (option.commandLineOnly) {
        throw new ConfigError(`option ${quote(entry.key)} in ${file}:${entry.line} is only valid on the command line`);
      }
      if (option.kind === 'list') return splitList(entry.value).map((value) => ({ option, value, where }));
      if (option.kind === 'flag') {
        try {
          return [{ option, value: String(parseBoolean(entry.value)), where }];
        } catch (err) {
          throw badValue({ option, value: entry.value, where }, err);
        }
      }
      return [{ option, value: entry.value, where }];
    }),
  );
}

/** Later sources replace earlier ones option by option; a list option repeated within a source accumulates. */
function mergeSources(sources: Setting[][]): Map<string, Setting[]> {
  const merged = new Map<string, Setting[]>();
  for (const source of sources) {
    const bySource = new Map<string, Setting[]>();
    for (const s of source) {
      const list = bySource.get(s.option.name) ?? [];
      list.push(s);
      bySource.set(s.option.name, list);
    }
    for (const [name, list] of bySource) merged.set(name, list);
  }
  return merged;
}

function badValue(s: Setting, err: unknown): ConfigError {
  if (!(err instanceof BadValue)) throw err;
  return new ConfigError(`invalid value ${quote(s.value)} for ${s.where}: ${err.message}`);
}

function buildConfig(merged: Map<string, Setting[]>, env: ParseEnvironment): RelayConfig {
  const last = (name: string): Setting | undefined => {
    const list = merged.get(name);
    return list?.[list.length - 1];
  };
  /** Convert the option's last value, or return the default when the option is absent. */
  const value = <T>(name: string, fallback: T, convert: (text: string) => T): T => {
    const s = last(name);
    if (s === undefined) return fallback;
    try {
      return convert(s.value);
    } catch (err) {
      throw badValue(s, err);
    }
  };
  const nonEmpty = (text: string): string => {
    if (text === '') throw new BadValue('empty value');
    return text;
  };
  const flag = (name: string): boolean => value(name, false, (t) => t === 'true');
  // rtpengine replaces a timeout of 0 by its default, so `timeout = 0` in an old config keeps working.
  const timeoutValue = (name: string, fallback: number): number =>
    value(name, fallback, (t) => parseInteger(t, 0, INT32_MAX) || fallback);

  // --scheduling/--priority and their --idle- twins: the priority's range depends on the policy.
  const threadScheduling = (policyOption: string, priorityOption: string): ThreadScheduling =>
    buildScheduling(
      value(policyOption, 'default' as ThreadScheduling['policy'], parseSchedulingPolicy),
      value<number | null>(priorityOption, null, (t) => parseInteger(t, INT32_MIN, INT32_MAX)),
      last(priorityOption)?.where ?? `--${priorityOption}`,
      last(policyOption)?.where ?? `--${policyOption}`,
    );

  const cpuCount = env.cpuCount ?? availableParallelism();
  const portMin = value('port-min', DEFAULTS.portMin, (t) => parseInteger(t, 1024, 65535));
  const portMax = value('port-max', DEFAULTS.portMax, (t) => parseInteger(t, 1024, 65535));
  checkPortRange(portMin, portMax, last('port-min')?.where ?? '--port-min', last('port-max')?.where ?? '--port-max');

  return {
    interfaces: buildInterfaces(merged.get('interface') ?? [], env.networkInterfaces ?? osNetworkInterfaces),
    listenNg: value('listen-ng', { ...DEFAULTS.listenNg }, parseListenAddress),
    portMin,
    portMax,
    timeout: timeoutValue('timeout', DEFAULTS.timeout),
    silentTimeout: timeoutValue('silent-timeout', DEFAULTS.silentTimeout),
    offerTimeout: timeoutValue('offer-timeout', DEFAULTS.offerTimeout),
    finalTimeout: value('final-timeout', DEFAULTS.finalTimeout, (t) => parseInteger(t, 0, INT32_MAX)),
    deleteDelay: value('delete-delay', DEFAULTS.deleteDelay, (t) => parseInteger(t, 0, INT32_MAX)),
    numThreads: value('num-threads', cpuCount, (t) => parseInteger(t, 0, MAX_THREADS) || cpuCount),
    logLevel: value('log-level', DEFAULTS.logLevel, (t) => parseInteger(t, 0, 7)),
    recordingDir: value<string | null>('recording-dir', null, nonEmpty),
    stateDir: value<string | null>('state-dir', null, nonEmpty),
    stateFsync: flag('state-fsync'),
    redis: buildRedisConfig(merged, value, flag),
    // rtpengine's proc method feeds its recording daemon; ngrelay records pcap for both (startWarnings says so).
    recordingMethod: value('recording-method', 'pcap' as const, (t) => {
      if (t !== 'pcap' && t !== 'proc') throw new BadValue('expected pcap or proc');
      return 'pcap' as const;
    }),
    recordingFormat: value('recording-format', 'raw' as RelayConfig['recordingFormat'], (t) => {
      if (t !== 'raw' && t !== 'eth') throw new BadValue('expected raw or eth');
      return t;
    }),
    recordEgress: flag('record-egress'),
    dtlsPassive: flag('dtls-passive'),
    dtlsCertificate: {
      cipher: value('dtls-cert-cipher', 'prime256v1' as const, (t): 'prime256v1' | 'rsa' => {
        const v = t.toLowerCase();
        if (v === 'prime256v1' || v === 'ec' || v === 'ecdsa') return 'prime256v1';
        if (v === 'rsa') return 'rsa';
        throw new BadValue('expected prime256v1 or RSA');
      }),
      rsaKeyBits: value('dtls-rsa-key-size', 2048, (t) => parseInteger(t, 1024, 8192)),
      signature: value('dtls-signature', 'sha-256' as const, (t): 'sha-256' | 'sha-1' => {
        const v = t.toLowerCase().replace(/^sha(\d)/, 'sha-$1');
        if (v === 'sha-256' || v === 'sha-1') return v;
        throw new BadValue('expected SHA-256 or SHA-1');
      }),
    },
    dtmfLogDest: value<{ address: string; port: number } | null>('dtmf-log-dest', null, parseListenAddress),
    dtmfLogNgTcp: flag('dtmf-log-ng-tcp'),
    foreground: flag('foreground'),
    logStderr: flag('log-stderr'),
    logTimestamps: !flag('no-log-timestamps'),
    table: value('table', DEFAULTS.table, (t) => parseInteger(t, INT32_MIN, INT32_MAX)),
    pidfile: value<string | null>('pidfile', null, nonEmpty),
    endpointLearning: value('endpoint-learning', DEFAULTS.endpointLearning, parseEndpointLearning),
    socketReceiveBuffer: value('socket-receive-buffer', DEFAULTS.socketReceiveBuffer, (t) =>
      parseInteger(t, 0, INT32_MAX),
    ),
    scheduling: threadScheduling('scheduling', 'priority'),
    idleScheduling: threadScheduling('idle-scheduling', 'idle-priority'),
    debugNgDelayMs: value('debug-ng-delay', 0, (t) => parseInteger(t, 0, 60_000)),
    // H4: control listeners and load limits.
    listenCli: value<ListenAddress | null>('listen-cli', null, parseListenAddress),
    listenTcpNg: value<ListenAddress | null>('listen-tcp-ng', null, parseListenAddress),
    listenHttp: value<ListenAddress | null>('listen-http', null, parseListenAddress),
    listenHttps: value<ListenAddress | null>('listen-https', null, parseListenAddress),
    httpsCert: value<string | null>('https-cert', null, nonEmpty),
    httpsKey: value<string | null>('https-key', null, nonEmpty),
    limits: {
      maxSessions: value('max-sessions', -1, (t) => parseInteger(t, -1, INT32_MAX)),
      maxLoad: value('max-load', 0, parseNonNegativeNumber),
      maxCpu: value('max-cpu', 0, parseNonNegativeNumber),
      maxBandwidth: value('max-bandwidth', 0, (t) => parseInteger(t, 0, Number.MAX_SAFE_INTEGER)),
    },
    ngCacheMaxEntries: value('ng-cache-max-entries', DEFAULT_MAX_ENTRIES, (t) => parseInteger(t, 0, INT32_MAX)),
    ngCacheMaxBytes: value('ng-cache-max-bytes', DEFAULT_MAX_BYTES, (t) => parseInteger(t, 0, Number.MAX_SAFE_INTEGER)),
  };
}

/** --max-load / --max-cpu: a decimal number >= 0. */
function parseNonNegativeNumber(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) throw new BadValue('expected a number >= 0');
  return Number(text);
}

function parseSchedulingPolicy(text: string): ThreadScheduling['policy'] {
  const v = text.toLowerCase();
  if (v === 'none') return 'default';
  if (v === 'default' || v === 'fifo' || v === 'rr' || v === 'other' || v === 'batch' || v === 'idle') return v;
  throw new BadValue('expected default, none, fifo, rr, other, batch or idle');
}

/** The priority's meaning depends on the policy (rtpengine's rules): realtime 1..99, otherwise nice -20..19. */
function buildScheduling(
  policy: ThreadScheduling['policy'],
  priority: number | null,
  priorityWhere: string,
  policyWhere: string,
): ThreadScheduling {
  const realtime = policy === 'fifo' || policy === 'rr';
  if (realtime) {
    if (priority === null) return { policy, priority: 1 };
    if (priority < 1 || priority > 99) {
      throw new ConfigError(`${priorityWhere} (${priority}) must be 1..99 with ${policyWhere}=${policy}`);
    }
  } else if (priority !== null && (priority < -20 || priority > 19)) {
    throw new ConfigError(`${priorityWhere} (${priority}) is a nice value here and must be -20..19`);
  }
  return { policy, priority };
}

function parseEndpointLearning(text: string): RelayConfig['endpointLearning'] {
  // rtpengine compares case-insensitively.
  const v = text.toLowerCase();
  if (v === 'off' || v === 'immediate' || v === 'delayed' || v === 'heuristic') return v;
  throw new BadValue('expected off, immediate, delayed or heuristic');
}

/** RTP wants an even port with RTP+1 free, so the range must hold at least one such pair. */
function checkPortRange(portMin: number, portMax: number, minWhere: string, maxWhere: string): void {
  if (portMin >= portMax) {
    throw new ConfigError(`${minWhere} (${portMin}) must be lower than ${maxWhere} (${portMax})`);
  }
  const firstEven = portMin + (portMin % 2);
  if (firstEven + 1 > portMax) {
    throw new ConfigError(`port range ${portMin}-${portMax} (${minWhere}, ${maxWhere}) holds no even/odd port pair`);
  }
}

/**
 * Interfaces in the order given: the first is the default, and within a name the first address of each
 * family is that family's primary one (the rest are extra ICE candidates in rtpengine). The same name may
 * carry both families; the same name and address twice is refused (they would share every port).
 */
function buildInterfaces(settings: Setting[], networkInterfaces: () => NetworkInterfaceMap): InterfaceConfig[] {
  if (settings.length === 0) {
    return [{ name: 'default', address: DEFAULTS.interface, advertised: DEFAULTS.interface, family: 'IPv4' }];
  }
  const result: InterfaceConfig[] = [];
  const seen = new Set<string>();
  for (const s of settings) {
    let parsed: InterfaceConfig[];
    try {
      parsed = parseInterface(s.value, networkInterfaces);
    } catch (err) {
      throw badValue(s, err);
    }
    for (const iface of parsed) {
      const key = `${iface.name}/${iface.address}`;
      if (seen.has(key)) {
        throw new ConfigError(`invalid value ${quote(s.value)} for ${s.where}: duplicate interface ${quote(key)}`);
      }
      seen.add(key);
      result.push(iface);
    }
  }
  return result;
}

/** The Redis options as one RedisConfig, or null when none of --redis, --redis-write, --subscribe-keyspace is set. */
function buildRedisConfig(
  merged: Map<string, Setting[]>,
  value: <T>(name: string, fallback: T, convert: (text: string) => T) => T,
  flag: (name: string) => boolean,
): RedisConfig | null {
  const read = value<RedisEndpoint | null>('redis', null, parseRedisEndpoint);
  const write = value<RedisEndpoint | null>('redis-write', null, parseRedisEndpoint) ?? read;
  const subscribe = value<RedisEndpoint | null>('redis-subscribe', null, parseRedisEndpoint) ?? read;
  const keyspaceSettings = merged.get('subscribe-keyspace') ?? [];
  let subscribeKeyspace: number[];
  try {
    subscribeKeyspace = parseKeyspaceList(keyspaceSettings.map((s) => s.value));
  } catch (err) {
    throw badValue(keyspaceSettings[0] as Setting, err);
  }
  // Every value is checked, also when no Redis is configured: a malformed one fails like any other.
  const tuning = {
    numThreads: value('redis-num-threads', REDIS_DEFAULTS.numThreads, (t) => parseInteger(t, 1, 256)),
    expiresS: value('redis-expires', REDIS_DEFAULTS.expiresS, (t) => parseInteger(t, 1, INT32_MAX)),
    allowedErrors: value('redis-allowed-errors', REDIS_DEFAULTS.allowedErrors, (t) => parseInteger(t, -1, INT32_MAX)),
    disableTimeS: value('redis-disable-time', REDIS_DEFAULTS.disableTimeS, (t) => parseInteger(t, 0, INT32_MAX)),
    cmdTimeoutMs: value('redis-cmd-timeout', REDIS_DEFAULTS.cmdTimeoutMs, (t) => parseInteger(t, 0, INT32_MAX)),
    connectTimeoutMs: value('redis-connect-timeout', REDIS_DEFAULTS.connectTimeoutMs, (t) => parseInteger(t, 0, INT32_MAX) || REDIS_DEFAULTS.connectTimeoutMs),
    required: !flag('no-redis-required'),
  };
  // --subscribe-keyspace without a server to subscribe to does nothing (startWarnings says so).
  const keyspaces = subscribe !== null ? subscribeKeyspace : [];
  if (read === null && write === null && keyspaces.length === 0) return null;
  // The server to subscribe to is kept without --subscribe-keyspace too: `rtpengine-ctl ksadd` subscribes at runtime.
  return { read, write, subscribe, subscribeKeyspace: keyspaces, ...tuning };
}
