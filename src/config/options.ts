/**
 * The option table: every name ngrelay accepts on the command line or in the config file, with rtpengine's
 * long names and short letters so an operator's existing command line carries over.
 */
import { RTPENGINE_ONLY_OPTIONS } from './rtpengine-only';

/** How an option takes its value. `list` options may repeat; the others keep the last value. */
export type OptionKind = 'flag' | 'int' | 'string' | 'list';

export interface OptionSpec {
  name: string;
  /** rtpengine's single-letter alias, where it has one. */
  short?: string;
  kind: OptionKind;
  /** Value placeholder in the help text. */
  arg?: string;
  /** Default as shown in the help text and README. */
  defaultText: string;
  help: string;
  /** Only meaningful on the command line (help, version, which config file to read). */
  commandLineOnly?: boolean;
  /**
   * An rtpengine option for a feature ngrelay lacks (syslog, Redis, kernel module, ...): what ngrelay does
   * instead, completing "ngrelay ...". Accepted so existing configs load; a start with it set logs one
   * warning naming it with this text.
   */
  noEffect?: string;
  /** Checks a value the config does not otherwise use (throws BadValue), so a malformed one still fails. */
  check?: (text: string) => void;
}

export const OPTIONS: readonly OptionSpec[] = [
  { name: 'help', short: 'h', kind: 'flag', defaultText: '', help: 'Print this help and exit', commandLineOnly: true },
  { name: 'version', short: 'v', kind: 'flag', defaultText: '', help: 'Print the version and exit', commandLineOnly: true },
  {
    name: 'config-file',
    kind: 'string',
    arg: 'FILE',
    defaultText: 'none',
    help: "ini file to read first (section [rtpengine], then [ngrelay]); 'none' = no file. Unlike rtpengine, no file is read unless given",
    commandLineOnly: true,
  },
  {
    name: 'config-section',
    kind: 'string',
    arg: 'NAME',
    defaultText: 'rtpengine + ngrelay',
    help: 'Read only this section of the config file',
    commandLineOnly: true,
  },
  {
    name: 'interface',
    short: 'i',
    kind: 'list',
    arg: '[NAME/]IP[!ADVERTISED]',
    defaultText: '127.0.0.1',
    help: 'Local media address (IPv4/IPv6 literal, network device name, or "any" = every non-loopback address), repeatable; NAME defaults to "default"',
  },
  {
    name: 'listen-ng',
    short: 'n',
    kind: 'string',
    arg: '[IP:]PORT',
    defaultText: '127.0.0.1:2223',
    help: 'UDP address of the ng control protocol; IPv6 as [::1]:PORT; a bare PORT listens on 0.0.0.0',
  },
  { name: 'port-min', short: 'm', kind: 'int', arg: 'INT', defaultText: '30000', help: 'Lowest local media port (1024..65535)' },
  { name: 'port-max', short: 'M', kind: 'int', arg: 'INT', defaultText: '40000', help: 'Highest local media port (1024..65535)' },
  { name: 'timeout', short: 'o', kind: 'int', arg: 'SECS', defaultText: '60', help: 'End a call after this long without media on receiving streams (0 = default)' },
  { name: 'silent-timeout', short: 's', kind: 'int', arg: 'SECS', defaultText: '3600', help: 'Same for calls on hold / non-receiving streams (0 = default)' },
  { name: 'offer-timeout', kind: 'int', arg: 'SECS', defaultText: '3600', help: 'End a call offered but never answered after this long (0 = default)' },
  { name: 'final-timeout', short: 'a', kind: 'int', arg: 'SECS', defaultText: '0', help: 'End every call at this age regardless of traffic (0 = off)' },
  { name: 'delete-delay', short: 'd', kind: 'int', arg: 'SECS', defaultText: '30', help: 'Keep a deleted call this long for queries (0 = delete at once)' },
  { name: 'num-threads', kind: 'int', arg: 'INT', defaultText: 'CPU count', help: 'Forwarding threads of the data plane (0 = default)' },
  { name: 'log-level', short: 'L', kind: 'int', arg: 'INT', defaultText: '6', help: 'syslog level 0 (emerg) .. 7 (debug) of the JSON log' },
  {
    name: 'no-log-timestamps',
    kind: 'flag',
    defaultText: 'off',
    help: 'Leave the "time" field out of log lines (for journald, which stamps them itself)',
  },
  { name: 'log-stderr', short: 'E', kind: 'flag', defaultText: 'off', help: 'Log to stderr instead of stdout' },
  { name: 'foreground', short: 'f', kind: 'flag', defaultText: 'off', help: "Don't detach (ngrelay never forks; kept for rtpengine command lines)" },
  { name: 'pidfile', short: 'p', kind: 'string', arg: 'FILE', defaultText: 'none', help: 'Write the process id to this file' },
  { name: 'table', short: 't', kind: 'int', arg: 'INT', defaultText: '-1', help: 'Kernel fast path: >= 0 hands confirmed streams to an eBPF tc program (README "Kernel fast path"), -1 = userspace only' },
  { name: 'recording-dir', kind: 'string', arg: 'DIR', defaultText: 'none', help: 'Spool directory for call recordings (pcaps/ and metadata/)' },
  // Call state (src/state/): ngrelay's own, rtpengine keeps its calls in Redis instead.
  {
    name: 'state-dir',
    kind: 'string',
    arg: 'DIR',
    defaultText: 'none (off)',
    help: "ngrelay: keep every call's state in DIR, written before each ng reply; calls are restored from it at start (same ports, keys, learned endpoints)",
  },
  {
    name: 'state-fsync',
    kind: 'flag',
    defaultText: 'off',
    help: 'ngrelay: fsync each state file before its rename (survives a power loss, not only a crash; slower offers)',
  },
  // Redis (src/state/redis-*.ts): rtpengine's options and meanings; see README "Redis and active/standby".
  { name: 'redis', short: 'r', kind: 'string', arg: '[PW@]IP:PORT/INT', defaultText: 'none', help: 'Redis database: calls restored from it at start, and written to it after each ng command that changes them' },
  { name: 'redis-write', short: 'w', kind: 'string', arg: '[PW@]IP:PORT/INT', defaultText: '--redis', help: 'Write calls to this Redis database instead of --redis' },
  { name: 'redis-subscribe', kind: 'string', arg: '[PW@]IP:PORT/INT', defaultText: '--redis', help: 'Redis server whose keyspace notifications --subscribe-keyspace follows' },
  { name: 'subscribe-keyspace', short: 'k', kind: 'list', arg: 'INT INT ...', defaultText: 'none', help: "Hold the calls of these Redis databases as foreign calls (standby for the relays writing them); an ng command takes one over" },
  { name: 'redis-num-threads', kind: 'int', arg: 'INT', defaultText: '4', help: 'Batches of Redis keys read at once when restoring' },
  { name: 'redis-expires', kind: 'int', arg: 'INT', defaultText: '86400', help: "TTL in seconds of each call's Redis key" },
  { name: 'no-redis-required', short: 'q', kind: 'flag', defaultText: 'off', help: 'Start even when Redis cannot be reached (nothing is restored; writes follow once it is up)' },
  { name: 'redis-allowed-errors', kind: 'int', arg: 'INT', defaultText: '-1', help: 'Redis errors in a row before writing pauses for --redis-disable-time (-1 = never)' },
  { name: 'redis-disable-time', kind: 'int', arg: 'INT', defaultText: '10', help: 'Seconds Redis writing pauses after --redis-allowed-errors errors (missed writes follow)' },
  { name: 'redis-cmd-timeout', kind: 'int', arg: 'INT', defaultText: '0 (none)', help: 'Timeout in milliseconds for each Redis command' },
  { name: 'redis-connect-timeout', kind: 'int', arg: 'INT', defaultText: '1000', help: 'Timeout in milliseconds for a Redis connection attempt' },
  {
    name: 'recording-method',
    kind: 'string',
    arg: 'pcap|proc',
    defaultText: 'pcap',
    help: 'Recording method; proc (a recording daemon) is accepted with a warning and records pcap like pcap',
  },
  {
    name: 'recording-format',
    kind: 'string',
    arg: 'raw|eth',
    defaultText: 'raw',
    help: 'pcap link type: raw = IP packets (LINKTYPE_RAW 101), eth = with a fake Ethernet header (LINKTYPE_ETHERNET 1)',
  },
  {
    name: 'record-egress',
    kind: 'flag',
    defaultText: 'off',
    help: 'Also record each packet as sent by the relay (relay -> party), not only as received (party -> relay)',
  },
  {
    name: 'dtls-passive',
    kind: 'flag',
    defaultText: 'off (active)',
    help: 'Take the passive DTLS role (a=setup:passive) when a party leaves the choice to the relay (ng DTLS/DTLS-reverse override it)',
  },
  {
    name: 'dtls-cert-cipher',
    kind: 'string',
    arg: 'prime256v1|RSA',
    defaultText: 'prime256v1',
    help: 'Key of the DTLS certificate made at start: ECDSA on P-256 (prime256v1, also EC) or RSA',
  },
  {
    name: 'dtls-rsa-key-size',
    kind: 'int',
    arg: 'INT',
    defaultText: '2048',
    help: 'RSA key size in bits of the DTLS certificate (with --dtls-cert-cipher=RSA)',
  },
  {
    name: 'dtls-signature',
    kind: 'string',
    arg: 'SHA-256|SHA-1',
    defaultText: 'SHA-256',
    help: 'Signature hash of the DTLS certificate',
  },
  {
    name: 'dtmf-log-dest',
    kind: 'string',
    arg: 'IP:PORT',
    defaultText: 'none',
    help: 'Send each DTMF event (RFC 4733) detected in a call to IP:PORT over UDP, as rtpengine\'s JSON',
  },
  {
    name: 'dtmf-log-ng-tcp',
    kind: 'flag',
    defaultText: 'off',
    help: 'Send each DTMF event to every client connected to --listen-tcp-ng, as an ng "notify": "onDTMF" message',
  },
  {
    name: 'endpoint-learning',
    kind: 'string',
    arg: 'off|immediate|delayed|heuristic',
    defaultText: 'heuristic',
    help: 'How the remote media endpoint is learned from traffic',
  },
  {
    name: 'socket-receive-buffer',
    kind: 'int',
    arg: 'BYTES',
    defaultText: '4194304',
    help: "SO_RCVBUF of each media socket (0 = system default); ngrelay's own option",
  },
  {
    name: 'scheduling',
    kind: 'string',
    arg: 'default|none|fifo|rr|other|batch|idle',
    defaultText: 'default',
    help: 'Scheduling policy of the I/O threads (fifo/rr: realtime, need CAP_SYS_NICE)',
  },
  {
    name: 'priority',
    kind: 'int',
    arg: 'INT',
    defaultText: 'none',
    help: 'I/O thread priority: 1..99 under fifo/rr, otherwise the nice value -20..19',
  },
  {
    name: 'idle-scheduling',
    kind: 'string',
    arg: 'default|none|fifo|rr|other|batch|idle',
    defaultText: 'default',
    help: 'Scheduling policy of the background threads (pcap writer, event delivery)',
  },
  {
    name: 'idle-priority',
    kind: 'int',
    arg: 'INT',
    defaultText: 'none',
    help: 'Background thread priority, with the same rules as --priority',
  },
  {
    name: 'debug-ng-delay',
    kind: 'int',
    arg: 'MS',
    defaultText: '0',
    help: 'Testing aid: hold every ng reply this long after the command ran (shows proxy retransmits); 0 = off',
  },
  // H4: control listeners besides listen-ng, and the load limits on new offers (kept together).
  { name: 'listen-cli', short: 'c', kind: 'string', arg: '[IP:]PORT', defaultText: 'none', help: "TCP address of rtpengine's text CLI (rtpengine-ctl)" },
  { name: 'listen-tcp-ng', short: 'N', kind: 'string', arg: '[IP:]PORT', defaultText: 'none', help: 'TCP address of the ng protocol (bencode, <cookie> <dict> back to back)' },
  { name: 'listen-http', kind: 'string', arg: '[IP:]PORT', defaultText: 'none', help: 'HTTP and WebSocket address: /metrics, /ping, /cli/CMD, POST /ng and /ng-plain, ng over WebSocket' },
  { name: 'listen-https', kind: 'string', arg: '[IP:]PORT', defaultText: 'none', help: 'The same over HTTPS and WSS (needs --https-cert and --https-key)' },
  { name: 'https-cert', kind: 'string', arg: 'FILE', defaultText: 'none', help: 'PEM certificate (chain) for --listen-https' },
  { name: 'https-key', kind: 'string', arg: 'FILE', defaultText: 'none', help: 'PEM private key for --listen-https' },
  { name: 'max-sessions', kind: 'int', arg: 'INT', defaultText: '-1', help: 'Refuse new offers while this many calls run (-1 = no limit, 0 = refuse all)' },
  { name: 'max-load', kind: 'string', arg: 'FLOAT', defaultText: '0', help: 'Refuse new offers while the 1-minute load average is at least this (0 = off)' },
  { name: 'max-cpu', kind: 'string', arg: 'FLOAT', defaultText: '0', help: 'Refuse new offers while CPU usage in percent of all cores is at least this (0 = off)' },
  { name: 'max-bandwidth', kind: 'int', arg: 'INT', defaultText: '0', help: 'Refuse new offers while relayed bytes per second are at least this (0 = off)' },
  // ngrelay's own bounds on the ng reply cache (rtpengine bounds it by time only).
  {
    name: 'ng-cache-max-entries',
    kind: 'int',
    arg: 'INT',
    defaultText: '100000',
    help: 'Most ng replies kept for retransmits (oldest dropped first); they also expire after 30-60 s',
  },
  {
    name: 'ng-cache-max-bytes',
    kind: 'int',
    arg: 'BYTES',
    defaultText: '67108864',
    help: 'Most bytes of ng replies kept for retransmits (oldest dropped first)',
  },
  // rtpengine options without effect in ngrelay (see OptionSpec.noEffect).
  ...RTPENGINE_ONLY_OPTIONS,
];

const BY_NAME = new Map(OPTIONS.map((o) => [o.name, o]));
const BY_SHORT = new Map(OPTIONS.filter((o) => o.short !== undefined).map((o) => [o.short!, o]));

export function optionByName(name: string): OptionSpec | undefined {
  return BY_NAME.get(name);
}

export function optionByShort(letter: string): OptionSpec | undefined {
  return BY_SHORT.get(letter);
}
