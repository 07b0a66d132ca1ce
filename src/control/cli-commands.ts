/**
 * rtpengine's text CLI (daemon/cli.c), the part rtpengine-ctl users rely on: one command line in, the text
 * rtpengine 10.5 prints out. Transport-free, so the TCP listener (cli-server.ts) and HTTP `GET /cli/<cmd>`
 * share it. Output shapes were taken from rtpengine 10.5 side by side (test/integration/cli.test.ts):
 *   list numsessions | sessions all|own|foreign|<call-id> | totals | maxsessions | maxload | maxcpu | maxbw
 *   list interfaces | timeout | silenttimeout | offertimeout | finaltimeout | deletedelay | help
 *   list loglevel (= get loglevel), set loglevel N, set maxsessions N, terminate <call-id>|all|own|foreign
 *   ksadd N | ksrm N | kslist | active | standby (Redis keyspace subscriptions and the relay's role)
 * Unknown commands get rtpengine's "Unknown or incomplete command::<word>".
 */
import type { CallManager } from '../call/call-manager';
import type { RelayConfig } from '../config/types';
import type { CallState, MonologueState, StreamState } from '../call/state';
import type { DataPlane, StreamCounters } from '../dataplane/types';
import type { NgServerStats } from '../ng/processor';
import { LimitValueError, type LoadLimits } from '../commands/load-limits';
import { mediaStreamKinds, trafficSplit, type TrafficSplit } from '../call/kernel-split';
import { sessionCounts } from '../call/session-counts';

export interface CliContext {
  manager: CallManager;
  config: Pick<RelayConfig, 'interfaces' | 'portMin' | 'portMax' | 'timeout' | 'silentTimeout' | 'offerTimeout' | 'finalTimeout' | 'deleteDelay'>;
  dataPlane: DataPlane;
  limits: LoadLimits;
  /** syslog scale 0..7, like --log-level. */
  logLevel: { get(): number; set(level: number): void };
  startedMs: number;
  controlStats: () => NgServerStats;
  /** Relayed packets/bytes/errors per second, userspace and kernel (absent: all 0). */
  rates?: () => TrafficSplit;
  /** "address:port" of the ng client whose offer created the call, when known. */
  callOrigin: (callId: string) => string | undefined;
  /** `--redis`: keyspace subscriptions and foreign calls (absent without Redis). */
  redis?: CliRedisControl;
  now?: () => number;
}

/** What `ksadd`/`ksrm`/`kslist`/`active`/`standby` act on (src/state/foreign-calls.ts under `--redis`). */
export interface CliRedisControl {
  /** This relay's own database (`--redis-write`, else `--redis`); -1 = none. */
  ownDb: number;
  /** Null: no server to subscribe to (`--redis` / `--redis-subscribe` not given). */
  foreign: {
    keyspaces(): number[];
    /** Starts following `db` (subscribe and read go on in the background); false when already followed. */
    add(db: number): boolean;
    /** Stops following `db` and drops its foreign calls; false when it was not followed. */
    remove(db: number): boolean;
    standby(ownDb: number): number;
    active(): number;
    keyspaceOf(callId: string): number | undefined;
    terminateAll(): void;
  } | null;
}

/** A Redis database number as rtpengine's CLI reads it (strtoul: leading digits, the rest ignored). */
const KEYSPACE_NUMBER = /^\d+/;
/** Redis database indexes are small; a larger number is refused rather than subscribed to in vain. */
const MAX_KEYSPACE = 65535;

/** rtpengine's log subsystems, each printed with the one level ngrelay has. */
const LOG_SUBSYSTEMS = ['core', 'spandsp', 'ffmpeg', 'transcoding', 'codec', 'rtcp', 'ice', 'crypto', 'srtp', 'internals', 'http', 'control', 'dtx'];

/** Command names in rtpengine's order for the per-command lines of `list totals` (and their table headers). */
const NG_COMMANDS: ReadonlyArray<[name: string, column: string]> = [
  ['ping', 'Ping'], ['offer', 'Offer'], ['answer', 'Answer'], ['delete', 'Delete'], ['query', 'Query'], ['list', 'List'],
  ['start recording', 'StartRec'], ['stop recording', 'StopRec'], ['start forwarding', 'StartFwd'], ['stop forwarding', 'StopFwd'],
  ['block DTMF', 'BlkDTMF'], ['unblock DTMF', 'UnblkDTMF'], ['block media', 'BlkMedia'], ['unblock media', 'UnblkMedia'],
  ['play media', 'PlayMedia'], ['stop media', 'StopMedia'], ['play DTMF', 'PlayDTMF'], ['statistics', 'Stats'],
  ['silence media', 'SlnMedia'], ['unsilence media', 'UnslnMedia'], ['publish', 'Pub'], ['subscribe request', 'SubReq'],
  ['subscribe answer', 'SubAns'], ['unsubscribe', 'Unsub'],
];

const f6 = (n: number): string => n.toFixed(6);
const epochSeconds = (ms: number): number => Math.floor(ms / 1000);
/** ` <label padded to 48>:<value>`, the layout of `list totals`. */
const stat = (label: string, value: string | number): string => ` ${label.padEnd(48)}:${value}`;

export class CliCommands {
  private readonly now: () => number;

  constructor(private readonly ctx: CliContext) {
    this.now = ctx.now ?? Date.now;
  }

  /** Runs one command line (words separated by blanks); returns the text to send back. */
  run(line: string): string {
    const words = line.trim().split(/\s+/).filter((w) => w !== '');
    const [verb, sub, ...rest] = words;
    switch (verb) {
      case 'list':
      case 'get':
        return this.list(sub, rest);
      case 'set':
        return this.set(sub, rest);
      case 'terminate':
        return this.terminate(sub);
      case 'ksadd':
      case 'ksrm':
        return this.keyspace(verb, [sub, ...rest]);
      case 'kslist':
        return `\nSubscribed-on keyspaces:\n${(this.ctx.redis?.foreign?.keyspaces() ?? []).map((db) => `${db} `).join('')}\n`;
      case 'active':
      case 'standby':
        return this.role(verb);
      case 'help':
        return help(['list', 'terminate', 'set', 'get', 'ksadd', 'ksrm', 'kslist', 'active', 'standby']);
      default:
        return unknown(verb);
    }
  }

  private list(sub: string | undefined, rest: string[]): string {
    const l = this.ctx.limits.current;
    switch (sub) {
      case 'numsessions':
        return this.numSessions();
      case 'sessions':
        return this.sessions(rest[0]);
      case 'totals':
        return this.totals();
      case 'maxsessions':
        return `Maximum sessions configured on rtpengine: ${l.maxSessions}\n`;
      case 'maxload':
        return `Maximum load average configured on rtpengine: ${l.maxLoad.toFixed(2)}\n`;
      case 'maxcpu':
        return `Maximum CPU usage configured on rtpengine: ${l.maxCpu.toFixed(1)}\n`;
      case 'maxbw':
        return `Maximum bandwidth configured on rtpengine: ${l.maxBandwidth}\n`;
      case 'timeout':
        return `TIMEOUT=${this.ctx.config.timeout}\n`;
      case 'silenttimeout':
        return `SILENT_TIMEOUT=${this.ctx.config.silentTimeout}\n`;
      case 'offertimeout':
        return `OFFER_TIMEOUT=${this.ctx.config.offerTimeout}\n`;
      case 'finaltimeout':
        return `FINAL_TIMEOUT=${this.ctx.config.finalTimeout}\n`;
      case 'deletedelay':
        return `${this.ctx.config.deleteDelay}\n`;
      case 'interfaces':
        return this.interfaces();
      case 'help':
        return help(LIST_COMMANDS);
      case 'loglevel':
      case 'loglevels': {
        const level = this.ctx.logLevel.get();
        return LOG_SUBSYSTEMS.map((s) => `${s} = ${level}\n`).join('');
      }
      default:
        return unknown(sub);
    }
  }

  private set(sub: string | undefined, rest: string[]): string {
    const value = rest[0];
    if (sub !== 'maxsessions' && sub !== 'loglevel') return unknown(sub);
    if (value === undefined) return 'More parameters required.\n';
    if (sub === 'maxsessions') {
      if (!/^-?\d+$/.test(value)) return `Fail setting maxsessions to ${value}; no digists found\n`;
      try {
        this.ctx.limits.setMaxSessions(Number(value));
      } catch (err) {
        if (err instanceof LimitValueError) return `Fail setting maxsessions to ${value}; ${err.message}\n`;
        throw err;
      }
      return Number(value) === -1
        ? 'Success setting maxsessions to -1; disable feature\n'
        : `Success setting maxsessions to ${Number(value)}\n`;
    }
    if (!/^\d+$/.test(value)) return 'More parameters required.\n';
    const level = Number(value);
    if (level > 7) return `Fail setting loglevel to ${value}; allowed values are 0..7\n`;
    this.ctx.logLevel.set(level);
    return `Success setting loglevel to ${level}\n`;
  }

  /** `ksadd N` / `ksrm N`: rtpengine 10.5's replies, word for word (its "digists" included). */
  private keyspace(verb: 'ksadd' | 'ksrm', words: Array<string | undefined>): string {
    const text = words.filter((w) => w !== undefined).join(' ');
    if (text === '') return 'More parameters required.\n';
    const adding = verb === 'ksadd';
    const digits = KEYSPACE_NUMBER.exec(text)?.[0];
    const db = digits === undefined ? NaN : Number(digits);
    if (!(db <= MAX_KEYSPACE)) {
      return `Fail ${adding ? 'adding' : 'removing'} keyspace ${text} to redis notifications; no digists found\n`;
    }
    const foreign = this.ctx.redis?.foreign;
    if (!foreign) return `Fail ${adding ? 'adding' : 'removing'} keyspace ${db} to redis notifications; no Redis to subscribe to (--redis, --redis-subscribe)\n`;
    if (adding) {
      return foreign.add(db)
        ? `Success adding keyspace ${db} to redis notifications.\n`
        : `Keyspace ${db} is already among redis notifications.\n`;
    }
    return foreign.remove(db)
      ? `Successfully unsubscribed from keyspace ${db}.\nSuccessfully removed all foreign calls for keyspace ${db}.\n`
      : `Keyspace ${db} is not among redis notifications.\n`;
  }

  /** `active` / `standby`: every call set own / foreign. */
  private role(verb: 'active' | 'standby'): string {
    const redis = this.ctx.redis;
    if (!redis?.foreign) return `Fail setting all calls ${verb === 'active' ? "to 'owned (active)'" : "to 'foreign (standby)'"}; no Redis (--redis)\n`;
    if (verb === 'active') {
      redis.foreign.active();
      return "Ok, all calls set to 'owned (active)'\n";
    }
    redis.foreign.standby(redis.ownDb);
    return "Ok, all calls set to 'foreign (standby)'\n";
  }

  private isForeign(callId: string): boolean {
    return this.ctx.redis?.foreign?.keyspaceOf(callId) !== undefined;
  }

  /** The database a call is kept in: the foreign call's, else this relay's own (0 without Redis). */
  private keyspaceOf(callId: string): number {
    return this.ctx.redis?.foreign?.keyspaceOf(callId) ?? Math.max(this.ctx.redis?.ownDb ?? 0, 0);
  }

  private terminate(target: string | undefined): string {
    const m = this.ctx.manager;
    if (target === undefined) return 'More parameters required.\n';
    if (target === 'all' || target === 'own') {
      for (const call of [...m.calls.values()]) if (target === 'all' || !this.isForeign(call.callId)) m.destroy(call, 'terminate');
      if (target === 'all') this.ctx.redis?.foreign?.terminateAll();
      return target === 'all' ? 'All calls terminated by operator.\n' : 'All own calls terminated by operator.\n';
    }
    if (target === 'foreign') {
      this.ctx.redis?.foreign?.terminateAll();
      return 'All foreign calls terminated by operator.\n';
    }
    const call = m.calls.get(target);
    if (!call) return `\nCall Id not found (${target}).\n\n`;
    m.destroy(call, 'terminate');
    return `\nCall Id (${target}) successfully terminated by operator.\n\n`;
  }

  /** Per interface: its port range and how much of it is in use, like rtpengine's `list interfaces`. */
  private interfaces(): string {
    const { config, manager } = this.ctx;
    const total = config.portMax - config.portMin + 1;
    return config.interfaces
      .map((iface) => {
        const used = manager.sockets.allocator(iface.address).counts().used;
        return (
          `Interface '${iface.name}' address '${iface.address}' (${iface.family})\n` +
          ` Port range: ${String(config.portMin).padStart(5)} - ${String(config.portMax).padStart(5)}\n` +
          ` Ports used: ${String(used).padStart(5)} / ${String(total).padStart(5)} (${((used * 100) / total).toFixed(1).padStart(5)}%)\n` +
          ` Last port used: ${String(this.lastPortUsed(iface.name, iface.address)).padStart(5)}\n`
        );
      })
      .join('');
  }

  /** The first port of the newest party on this interface (0 = none); rtpengine remembers its allocator's last. */
  private lastPortUsed(name: string, address: string): number {
    let newest: { at: number; port: number } = { at: -Infinity, port: 0 };
    for (const call of this.ctx.manager.calls.values()) {
      for (const mono of call.monologues) {
        const stream = mono.medias.map((m) => m.rtp).find((s) => s.interfaceName === name && s.localAddress === address);
        if (stream && mono.createdMs >= newest.at) newest = { at: mono.createdMs, port: stream.localPort };
      }
    }
    return newest.port;
  }

  private numSessions(): string {
    let v4 = 0;
    let v6 = 0;
    let mixed = 0;
    for (const call of this.ctx.manager.calls.values()) {
      const families = new Set<string>();
      for (const mono of call.monologues) for (const m of mono.medias) families.add(m.rtp.localAddress.includes(':') ? '6' : '4');
      if (families.size > 1) mixed++;
      else if (families.has('6')) v6++;
      else v4++;
    }
    const s = sessionCounts(this.ctx.manager.calls.keys(), (id) => this.isForeign(id));
    return [
      `Current sessions own: ${s.own}`,
      `Current sessions foreign: ${s.foreign}`,
      `Current sessions total: ${s.total}`,
      'Current transcoded media: 0',
      `Current sessions ipv4 only media: ${v4}`,
      `Current sessions ipv6 only media: ${v6}`,
      `Current sessions ip mixed  media: ${mixed}`,
      '',
    ].join('\n');
  }

  private sessions(which: string | undefined): string {
    const calls = this.ctx.manager.calls;
    if (which === undefined) return 'More parameters required.\n';
    if (which === 'all' || which === 'own' || which === 'foreign') {
      const shown = [...calls.values()].filter((c) => which === 'all' || (which === 'foreign') === this.isForeign(c.callId));
      if (shown.length === 0) return which === 'all' ? 'No sessions on this media relay.\n' : `No ${which} sessions on this media relay.\n`;
      return shown.map((c) => this.sessionLine(c)).join('');
    }
    const call = calls.get(which);
    if (!call) return `\nCall ID not found (${which}).\n\n`;
    return this.sessionDetail(call);
  }

  private sessionLine(call: CallState): string {
    return (
      `callid: ${call.callId.padStart(60)} | deletionmark:${(call.deleteAtMs !== null ? 'yes' : 'no').padStart(4)} | ` +
      `created:${String(epochSeconds(call.createdMs)).padStart(12)} | proxy:${this.ctx.callOrigin(call.callId) ?? ''} | ` +
      `redis_keyspace:${this.keyspaceOf(call.callId)} | foreign:${this.isForeign(call.callId) ? 'yes' : 'no'}\n`
    );
  }

  private sessionDetail(call: CallState): string {
    const out = [
      '',
      `callid: ${call.callId}`,
      `deletionmark: ${call.deleteAtMs !== null ? 'yes' : 'no'}`,
      `created: ${epochSeconds(call.createdMs)}`,
      `proxy: ${this.ctx.callOrigin(call.callId) ?? ''}`,
      'tos: 0',
      `last_signal: ${epochSeconds(call.lastSignalMs)}`,
      `redis_keyspace: ${this.keyspaceOf(call.callId)}`,
      `foreign: ${this.isForeign(call.callId) ? 'yes' : 'no'}`,
      '',
    ];
    const counters = this.ctx.dataPlane.readCounters(this.ctx.manager.streamIds(call));
    for (const mono of call.monologues) {
      out.push(
        `--- Tag '${mono.tag}', type: ${tagType(mono)}, label '${mono.label ?? ''}', branch '${mono.viaBranch ?? ''}', ` +
          `callduration ${f6((this.now() - mono.createdMs) / 1000)}`,
      );
      const peer = mono.peerKey === null ? undefined : call.monologues.find((p) => p.tag === mono.peerKey || p.key === mono.peerKey);
      if (peer) out.push(`---     subscribed to '${peer.tag}'`, `---     subscription of '${peer.tag}'`);
      for (const media of mono.medias) {
        out.push(`------ Media #${media.index} (${media.type} over ${media.protocol}) using ${media.codec ?? 'unknown codec'}`);
        out.push(portLine(media.rtp, counters.get(media.rtp.id), call, false));
        if (!media.rtcpMux) out.push(portLine(media.rtcp, counters.get(media.rtcp.id), call, true));
      }
    }
    out.push('', '');
    return out.join('\n');
  }

  private totals(): string {
    const t = this.ctx.manager.totals;
    const relayed = trafficSplit(this.ctx.dataPlane.totals());
    const rates = this.ctx.rates?.();
    const media = mediaStreamKinds(this.ctx.manager, this.ctx.dataPlane, this.now());
    const sessions = this.ctx.manager.calls.size;
    const foreign = [...this.ctx.manager.calls.keys()].filter((id) => this.isForeign(id)).length;
    const control = this.ctx.controlStats();
    const avg = t.endedCalls ? t.totalCallDurationMs / t.endedCalls / 1000 : 0;
    const uptime = Math.floor((this.now() - this.ctx.startedMs) / 1000);
    const lines = [
      '',
      'Statistics over currently running sessions:',
      '',
      stat('Owned sessions', sessions - foreign),
      stat('Foreign sessions', foreign),
      stat('Total sessions', sessions),
      stat('Transcoded media', 0),
      ...(['userspace', 'kernel', 'total'] as const).flatMap((k) => [
        stat(`Packets per second (${k})`, rates?.[k].packets ?? 0),
        stat(`Bytes per second (${k})`, rates?.[k].bytes ?? 0),
        stat(`Errors per second (${k})`, rates?.[k].errors ?? 0),
      ]),
      stat('Userspace-only media streams', media.userspace),
      stat('Kernel-only media streams', media.kernel),
      stat('Mixed kernel/userspace media streams', media.mixed),
      '',
      'Total statistics (does not include current running sessions):',
      '',
      stat('Uptime of rtpengine', `${uptime} seconds`),
      stat('Total managed sessions', t.managedSessions),
      stat('Total rejected sessions', t.rejectedSessions),
      stat('Total timed-out sessions via TIMEOUT', t.timeoutSessions),
      stat('Total timed-out sessions via SILENT_TIMEOUT', t.silentTimeoutSessions),
      stat('Total timed-out sessions via FINAL_TIMEOUT', t.finalTimeoutSessions),
      stat('Total timed-out sessions via OFFER_TIMEOUT', t.offerTimeoutSessions),
      stat('Total regular terminated sessions', t.regularTerminatedSessions),
      stat('Total forced terminated sessions', t.forcedTerminatedSessions),
      stat('Total relayed packets (userspace)', relayed.userspace.packets),
      stat('Total relayed packet errors (userspace)', relayed.userspace.errors),
      stat('Total relayed bytes (userspace)', relayed.userspace.bytes),
      stat('Total relayed packets (kernel)', relayed.kernel.packets),
      stat('Total relayed packet errors (kernel)', relayed.kernel.errors),
      stat('Total relayed bytes (kernel)', relayed.kernel.bytes),
      stat('Total relayed packets', relayed.total.packets),
      stat('Total relayed packet errors', relayed.total.errors),
      stat('Total relayed bytes', relayed.total.bytes),
      stat('Total number of streams with no relayed packets', 0),
      stat('Total number of 1-way streams', 0),
      stat('Average call duration', `${f6(avg)} seconds`),
      stat('Total calls duration', `${f6(t.totalCallDurationMs / 1000)} seconds`),
      stat('Total calls duration squared', `${f6(0)} seconds squared`),
      stat('Total calls duration standard deviation', `${f6(0)} seconds`),
      '',
      '',
      'Graphite interval statistics (last reported values to graphite):',
      stat('Total calls duration', `${f6(t.totalCallDurationMs / 1000)} seconds`),
      '',
      stat('Min managed sessions', sessions),
      stat('Max managed sessions', sessions),
      ...NG_COMMANDS.map(([name]) => {
        const c = control.commands[name];
        const avgCmd = c && c.count ? c.durationSeconds / c.count : 0;
        return stat(`Min/Max/Avg ${name} processing delay`, `${f6(c?.minDurationSeconds ?? 0)}/${f6(c?.maxDurationSeconds ?? 0)}/${f6(avgCmd)} sec`);
      }),
      ...NG_COMMANDS.map(([name]) => stat(`Min/Max/Avg ${name} requests per second`, '0/0/0 per sec')),
      '',
      '',
      'MOS statistics:',
      '',
      stat('Sum of all MOS values sampled', f6(0)),
      stat('Sum of all MOS square values sampled', f6(0)),
      stat('Total number of MOS samples', 0),
      stat('Average MOS', f6(0)),
      stat('MOS standard deviation', f6(0)),
      '',
      '',
      'Control statistics:',
      '',
      [`${'Proxy'.padStart(21)} `, ...NG_COMMANDS.map(([, column]) => ` ${column.padStart(10)} `)].join('|'),
      ...Object.entries(control.proxies).map(([address, p]) =>
        [`${address.padStart(21)} `, ...NG_COMMANDS.map(([name]) => ` ${String(p.commands[name] ?? 0).padStart(10)} `)].join('|'),
      ),
      '',
      '',
      '',
      '',
      '',
    ];
    return lines.join('\n');
  }
}

/** `list` sub-commands ngrelay answers, in rtpengine's order. */
const LIST_COMMANDS = [
  'numsessions', 'sessions', 'totals', 'maxsessions', 'maxcpu', 'maxload', 'maxbw', 'timeout', 'silenttimeout',
  'offertimeout', 'finaltimeout', 'loglevels', 'loglevel', 'deletedelay', 'interfaces',
];

function help(commands: readonly string[]): string {
  return `Available sub-commands at this level:\n${commands.map((c) => `\t${c}\n`).join('')}`;
}

function unknown(word: string | undefined): string {
  return `Unknown or incomplete command::${word ?? ''}\n`;
}

function tagType(mono: MonologueState): string {
  if (mono.tag === '') return 'UNKNOWN';
  return mono.isAnswerer ? 'TO_TAG' : 'FROM_TAG';
}

/** `-------- Port <local> <> <remote> [(RTCP)], SSRC .., N p, N b, N e, <last packet> ts` */
function portLine(stream: StreamState, c: StreamCounters | undefined, call: CallState, rtcp: boolean): string {
  const remote = c?.endpoint ?? stream.expected;
  const local = `${stream.localAddress.padStart(15)}:${String(stream.localPort).padEnd(5)}`;
  const peer = `${(remote?.address ?? '').padStart(15)}:${String(remote?.port ?? 0).padEnd(5)}`;
  const last = c && c.lastPacketMs > 0 ? c.lastPacketMs : call.createdMs;
  return (
    `-------- Port ${local} <> ${peer}${rtcp ? ' (RTCP)' : ''}, SSRC ${(c?.ssrc ?? 0).toString(16)}, ` +
    `${c?.packets ?? 0} p, ${c?.bytes ?? 0} b, ${c?.errors ?? 0} e, ${epochSeconds(last)} ts`
  );
}
