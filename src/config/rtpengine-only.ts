/**
 * rtpengine 10.5 options for features ngrelay does not have (Redis, syslog, transcoding, MQTT, ...). They
 * are accepted with rtpengine's spellings, short letters and value types, so an operator's command line and
 * config file load unchanged; a malformed value is still an error. Each one that is set is logged once at
 * start with what ngrelay does instead (the `instead` text below). The list was taken from
 * `rtpengine --help` of Debian's 10.5 package; test/unit/rtpengine-options.test.ts checks that it stays
 * complete against the installed binary.
 */
import type { OptionKind, OptionSpec } from './options';
import { BadValue, parseInteger } from './values';

interface RtpengineOnly {
  name: string;
  short?: string;
  /** rtpengine's value type; `float` is a GLib double, checked and then stored as text. */
  kind: OptionKind | 'float';
  arg?: string;
  /** What ngrelay does instead, completing "ngrelay ...". */
  instead: string;
}

const NO_REDIS = 'has no Redis; calls live in this process only';
const NO_SYSLOG = 'logs JSON lines to stdout/stderr, not to syslog';
const ONE_LOG_LEVEL = 'has one log level for everything (--log-level, SIGUSR1/SIGUSR2)';
const NO_TRANSCODING = 'does not transcode, so it has no DTX, silence or comfort-noise handling';
const NO_MQTT = 'does not publish to MQTT; use the ng "statistics" and "query" commands';
const NO_MYSQL = 'has no media playback from a database';
const NO_DTMF = 'does not detect DTMF; DTMF packets are forwarded like any RTP';

const LIST: readonly RtpengineOnly[] = [
  ...[
    'core',
    'spandsp',
    'ffmpeg',
    'transcoding',
    'codec',
    'rtcp',
    'ice',
    'crypto',
    'srtp',
    'internals',
    'http',
    'control',
    'dtx',
  ].map((s): RtpengineOnly => ({ name: `log-level-${s}`, kind: 'int', arg: 'INT', instead: ONE_LOG_LEVEL })),
  { name: 'log-facility', kind: 'string', arg: 'NAME', instead: NO_SYSLOG },
  { name: 'log-facility-cdr', kind: 'string', arg: 'NAME', instead: NO_SYSLOG },
  { name: 'log-facility-rtcp', kind: 'string', arg: 'NAME', instead: NO_SYSLOG },
  { name: 'log-facility-dtmf', kind: 'string', arg: 'NAME', instead: NO_SYSLOG },
  { name: 'log-format', kind: 'string', arg: 'default|parsable', instead: 'logs JSON lines, one object per line' },
  { name: 'split-logs', kind: 'flag', instead: 'logs every message as one JSON line' },
  { name: 'max-log-line-length', kind: 'int', arg: 'INT', instead: 'logs every message as one JSON line, unbroken' },
  { name: 'log-mark-prefix', kind: 'string', arg: 'STRING', instead: 'does not mark sensitive values in its logs' },
  { name: 'log-mark-suffix', kind: 'string', arg: 'STRING', instead: 'does not mark sensitive values in its logs' },
  { name: 'log-srtp-keys', kind: 'flag', instead: 'never logs SRTP keys' },
  { name: 'debug-srtp', kind: 'flag', instead: 'never logs SRTP key material' },
  { name: 'thread-stack', kind: 'int', arg: 'INT', instead: "starts its threads with the system's default stack size" },
  { name: 'no-fallback', short: 'F', kind: 'flag', instead: 'has no kernel module; it always forwards in its own engine' },
  {
    name: 'save-interface-ports',
    short: 'S',
    kind: 'flag',
    instead: 'binds each stream on the first address of its family of the chosen interface',
  },
  { name: 'listen-tcp', short: 'l', kind: 'string', arg: '[IP:]PORT', instead: 'speaks only the ng protocol, not the legacy TCP one' },
  { name: 'listen-udp', short: 'u', kind: 'string', arg: '[IP:]PORT', instead: 'speaks only the ng protocol, not the legacy UDP one' },
  { name: 'graphite', short: 'g', kind: 'string', arg: 'IP:PORT', instead: 'sends nothing to Graphite; use the ng "statistics" command' },
  { name: 'graphite-interval', short: 'G', kind: 'int', arg: 'INT', instead: 'sends nothing to Graphite' },
  { name: 'graphite-prefix', kind: 'string', arg: 'STRING', instead: 'sends nothing to Graphite' },
  { name: 'graphite-timeout', kind: 'int', arg: 'INT', instead: 'sends nothing to Graphite' },
  { name: 'tos', short: 'T', kind: 'int', arg: 'INT', instead: "sends media with the system's default TOS (0)" },
  { name: 'control-tos', kind: 'int', arg: 'INT', instead: "sends ng replies with the system's default TOS (0)" },
  { name: 'redis-delete-async', short: 'y', kind: 'int', arg: 'INT', instead: NO_REDIS },
  { name: 'redis-delete-async-interval', kind: 'int', arg: 'INT', instead: NO_REDIS },
  { name: 'active-switchover', kind: 'flag', instead: 'has no standby mode; every call is active' },
  { name: 'b2b-url', short: 'b', kind: 'string', arg: 'URL', instead: 'sends no XMLRPC; a timed-out call is closed and logged' },
  { name: 'xmlrpc-format', short: 'x', kind: 'int', arg: 'INT', instead: 'sends no XMLRPC; a timed-out call is closed and logged' },
  { name: 'dtmf-no-suppress', kind: 'flag', instead: NO_DTMF },
  { name: 'dtmf-digit-delay', kind: 'int', arg: 'MS', instead: NO_DTMF },
  { name: 'media-num-threads', kind: 'int', arg: 'INT', instead: 'has no media player; --num-threads sets its forwarding threads' },
  { name: 'sip-source', kind: 'flag', instead: 'sends media to the SDP address (and the learned endpoint, --endpoint-learning)' },
  { name: 'homer', kind: 'string', arg: 'IP:PORT', instead: 'sends nothing to Homer (HEP)' },
  { name: 'homer-protocol', kind: 'string', arg: 'udp|tcp', instead: 'sends nothing to Homer (HEP)' },
  { name: 'homer-id', kind: 'int', arg: 'INT', instead: 'sends nothing to Homer (HEP)' },
  { name: 'iptables-chain', kind: 'string', arg: 'STRING', instead: 'adds no firewall rules' },
  { name: 'codecs', kind: 'flag', instead: 'does not transcode and has no codec list; it starts as usual' },
  { name: 'mysql-host', kind: 'string', arg: 'HOST', instead: NO_MYSQL },
  { name: 'mysql-port', kind: 'int', arg: 'INT', instead: NO_MYSQL },
  { name: 'mysql-user', kind: 'string', arg: 'USERNAME', instead: NO_MYSQL },
  { name: 'mysql-pass', kind: 'string', arg: 'PASSWORD', instead: NO_MYSQL },
  { name: 'mysql-query', kind: 'string', arg: 'STRING', instead: NO_MYSQL },
  { name: 'jitter-buffer', kind: 'int', arg: 'INT', instead: 'has no jitter buffer; packets are forwarded as they arrive' },
  { name: 'jb-clock-drift', kind: 'flag', instead: 'has no jitter buffer; packets are forwarded as they arrive' },
  { name: 'reject-invalid-sdp', kind: 'flag', instead: 'always refuses SDP it cannot parse ("Failed to parse SDP")' },
  { name: 'dtls-mtu', kind: 'int', arg: 'INT', instead: 'sends DTLS flights in datagrams of at most 1200 bytes' },
  { name: 'dtls-ciphers', kind: 'string', arg: 'STRING', instead: "uses OpenSSL's default DTLS cipher list" },
  { name: 'http-threads', kind: 'int', arg: 'INT', instead: 'serves its control listeners from the main thread' },
  { name: 'software-id', kind: 'string', arg: 'STRING', instead: 'identifies itself as ngrelay' },
  { name: 'poller-per-thread', kind: 'flag', instead: 'gives each forwarding thread its own poller already' },
  { name: 'dtx-delay', kind: 'int', arg: 'INT', instead: NO_TRANSCODING },
  { name: 'max-dtx', kind: 'int', arg: 'INT', instead: NO_TRANSCODING },
  { name: 'dtx-buffer', kind: 'int', arg: 'INT', instead: NO_TRANSCODING },
  { name: 'dtx-lag', kind: 'int', arg: 'INT', instead: NO_TRANSCODING },
  { name: 'dtx-shift', kind: 'int', arg: 'INT', instead: NO_TRANSCODING },
  { name: 'dtx-cn-params', kind: 'list', arg: 'INT INT INT ...', instead: NO_TRANSCODING },
  { name: 'amr-dtx', kind: 'string', arg: 'native|CN', instead: NO_TRANSCODING },
  { name: 'silence-detect', kind: 'float', arg: 'FLOAT', instead: NO_TRANSCODING },
  { name: 'cn-payload', kind: 'list', arg: 'INT INT INT ...', instead: NO_TRANSCODING },
  ...['host', 'id', 'user', 'pass', 'cafile', 'capath', 'certfile', 'keyfile', 'publish-topic', 'publish-scope'].map(
    (s): RtpengineOnly => ({ name: `mqtt-${s}`, kind: 'string', arg: 'STRING', instead: NO_MQTT }),
  ),
  ...['port', 'keepalive', 'publish-qos', 'publish-interval'].map(
    (s): RtpengineOnly => ({ name: `mqtt-${s}`, kind: 'int', arg: 'INT', instead: NO_MQTT }),
  ),
  { name: 'mos', kind: 'string', arg: 'CQ|LQ', instead: 'computes no MOS values' },
  { name: 'socket-cpu-affinity', kind: 'int', arg: 'INT', instead: 'does not pin media sockets to CPUs' },
  { name: 'janus-secret', kind: 'string', arg: 'STRING', instead: 'does not speak the Janus protocol' },
];

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

/** GLib's strtod-based double: a decimal number, optionally with a fraction and exponent. */
function checkFloat(text: string): void {
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) throw new BadValue('expected a number');
}

function checkInt(text: string): void {
  parseInteger(text, INT32_MIN, INT32_MAX);
}

export const RTPENGINE_ONLY_OPTIONS: readonly OptionSpec[] = LIST.map((o): OptionSpec => {
  const spec: OptionSpec = {
    name: o.name,
    kind: o.kind === 'float' ? 'string' : o.kind,
    defaultText: '',
    help: `No effect: ngrelay ${o.instead}`,
    noEffect: o.instead,
  };
  if (o.short !== undefined) spec.short = o.short;
  if (o.arg !== undefined) spec.arg = o.arg;
  if (o.kind === 'float') spec.check = checkFloat;
  if (o.kind === 'int') spec.check = checkInt;
  return spec;
});
