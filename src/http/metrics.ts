/**
 * `GET /metrics`: Prometheus text format with rtpengine 10.5's metric names, types, help texts and labels
 * for every figure ngrelay has (sessions, closed sessions by reason, relayed packets/bytes/errors, call
 * durations, ng requests and their time per proxy and command, ports per interface), plus ngrelay's own
 * `ngrelay_*` (engine drops, malformed packets, ng retransmits, I/O threads and the CPU time of each) and
 * `process_cpu_seconds_total`. rtpengine's kernel figures are the eBPF fast path's (`--table`, 0 without it);
 * transcoding figures are left out, since ngrelay does not transcode.
 *
 * Values are read when scraped (prom-client `collect`), from the same counters as `list totals` and the
 * `statistics` command, so the three never disagree.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import type { CallManager } from '../call/call-manager';
import type { RelayConfig } from '../config/types';
import type { DataPlane } from '../dataplane/types';
import type { NgServerStats } from '../ng/processor';
import type { PersistenceStats } from '../state/persistence';
import { sessionCounts } from '../call/session-counts';
import { ioThreadCpu } from './thread-cpu';
import { mediaStreamKinds, trafficSplit } from '../call/kernel-split';

export interface MetricsContext {
  manager: CallManager;
  dataPlane: DataPlane;
  config: RelayConfig;
  startedMs: number;
  controlStats: () => NgServerStats;
  /** `--state-dir` figures; absent when it is off (then no ngrelay_state_* metrics are served). */
  stateStats?: () => PersistenceStats;
  /** `--redis`: whether a call is a foreign one (src/state/foreign-calls.ts); absent = none is. */
  isForeign?: (callId: string) => boolean;
  now?: () => number;
}

/** rtpengine lists every ng command per proxy, zero or not; these in its order, then any other seen. */
const NG_COMMAND_NAMES = [
  'ping', 'offer', 'answer', 'delete', 'query', 'list', 'start recording', 'stop recording', 'start forwarding',
  'stop forwarding', 'block DTMF', 'unblock DTMF', 'block media', 'unblock media', 'play media', 'stop media',
  'play DTMF', 'statistics', 'silence media', 'unsilence media', 'publish', 'subscribe request',
  'subscribe answer', 'unsubscribe',
];

/** A counter whose value is read from elsewhere at scrape time. */
function readCounter<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Array<[Partial<Record<L, string>>, number]>,
): void {
  new Counter<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.inc(labels, value);
    },
  });
}

function readGauge<L extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly L[],
  read: () => Array<[Partial<Record<L, string>>, number]>,
): void {
  new Gauge<L>({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, value] of read()) this.set(labels, value);
    },
  });
}

export function createMetricsRegistry(ctx: MetricsContext): Registry {
  const r = new Registry();
  const now = ctx.now ?? Date.now;
  const m = ctx.manager;
  const t = m.totals;
  const none = [] as const;

  readGauge(r, 'rtpengine_sessions', 'Owned sessions', ['type'], () => {
    const s = sessionCounts(m.calls.keys(), ctx.isForeign);
    return [
      [{ type: 'own' }, s.own],
      [{ type: 'foreign' }, s.foreign],
    ];
  });
  readGauge(r, 'rtpengine_transcoded_media', 'Transcoded media', none, () => [[{}, 0]]);
  readGauge(r, 'rtpengine_uptime_seconds', 'Uptime of rtpengine', none, () => [[{}, Math.floor((now() - ctx.startedMs) / 1000)]]);
  readCounter(r, 'rtpengine_sessions_total', 'Total managed sessions', none, () => [[{}, t.managedSessions]]);
  readCounter(r, 'rtpengine_closed_sessions_total', 'Total rejected sessions', ['reason'], () => [
    [{ reason: 'rejected' }, t.rejectedSessions],
    [{ reason: 'timeout' }, t.timeoutSessions],
    [{ reason: 'silent_timeout' }, t.silentTimeoutSessions],
    [{ reason: 'final_timeout' }, t.finalTimeoutSessions],
    [{ reason: 'offer_timeout' }, t.offerTimeoutSessions],
    [{ reason: 'terminated' }, t.regularTerminatedSessions],
    [{ reason: 'force_terminated' }, t.forcedTerminatedSessions],
  ]);
  // The kernel fast path (`--table`) is rtpengine's "kernel" side.
  const engine = (key: 'packets' | 'errors' | 'bytes') => (): Array<[{ type: string }, number]> => {
    const split = trafficSplit(ctx.dataPlane.totals());
    return [
      [{ type: 'userspace' }, split.userspace[key]],
      [{ type: 'kernel' }, split.kernel[key]],
    ];
  };
  readCounter(r, 'rtpengine_packets_total', 'Total relayed packets (userspace)', ['type'], engine('packets'));
  readCounter(r, 'rtpengine_packet_errors_total', 'Total relayed packet errors (userspace)', ['type'], engine('errors'));
  readCounter(r, 'rtpengine_bytes_total', 'Total relayed bytes (userspace)', ['type'], engine('bytes'));
  readGauge(r, 'rtpengine_mediastreams', 'Userspace-only media streams', ['type'], () => {
    const kinds = mediaStreamKinds(ctx.manager, ctx.dataPlane, now());
    return [
      [{ type: 'userspace' }, kinds.userspace],
      [{ type: 'kernel' }, kinds.kernel],
      [{ type: 'mixed' }, kinds.mixed],
    ];
  });
  readGauge(r, 'rtpengine_call_duration_avg', 'Average call duration', none, () => [
    [{}, t.endedCalls ? t.totalCallDurationMs / t.endedCalls / 1000 : 0],
  ]);
  readCounter(r, 'rtpengine_call_duration_total', 'Total calls duration', none, () => [[{}, t.totalCallDurationMs / 1000]]);

  // MOS samples of ended streams, as rtpengine sums them (MOS, not ×10; the statistics command's mos group).
  const mos = () => ctx.dataPlane.mosTotals();
  readCounter(r, 'rtpengine_mos_total', 'Sum of all MOS values sampled', none, () => [[{}, mos().mosX10Sum / 10]]);
  readCounter(r, 'rtpengine_mos2_total', 'Sum of all MOS square values sampled', none, () => [[{}, mos().mosX10SquareSum / 100]]);
  readCounter(r, 'rtpengine_mos_samples_total', 'Total number of MOS samples', none, () => [[{}, mos().samples]]);

  const perCommand = (read: (p: NgServerStats['proxies'][string], request: string) => number) => () => {
    const out: Array<[{ proxy: string; request: string }, number]> = [];
    for (const [proxy, p] of Object.entries(ctx.controlStats().proxies)) {
      const names = [...NG_COMMAND_NAMES, ...Object.keys(p.commands).filter((n) => !NG_COMMAND_NAMES.includes(n))];
      for (const request of names) out.push([{ proxy, request }, read(p, request)]);
    }
    return out;
  };
  readCounter(r, 'rtpengine_requests_total', 'ng requests handled', ['proxy', 'request'], perCommand((p, n) => p.commands[n] ?? 0));
  readCounter(r, 'rtpengine_request_seconds_total', 'Time spent handling ng requests', ['proxy', 'request'], perCommand((p, n) => p.seconds[n] ?? 0));
  readCounter(r, 'rtpengine_errors_total', 'ng requests answered with an error', ['proxy'], () =>
    Object.entries(ctx.controlStats().proxies).map(([proxy, p]) => [{ proxy }, p.errors]),
  );

  const ports = (read: (c: { used: number; free: number }, total: number) => number) => () =>
    ctx.config.interfaces.map((iface): [{ name: string; address: string }, number] => [
      { name: iface.name, address: iface.address },
      read(m.sockets.allocator(iface.address).counts(), ctx.config.portMax - ctx.config.portMin + 1),
    ]);
  readGauge(r, 'rtpengine_ports_used', 'Ports in use', ['name', 'address'], ports((c) => c.used));
  readGauge(r, 'rtpengine_ports_free', 'Ports free', ['name', 'address'], ports((c) => c.free));
  readGauge(r, 'rtpengine_ports', 'Ports in the range', ['name', 'address'], ports((_, total) => total));

  // ngrelay's own.
  readCounter(r, 'ngrelay_engine_dropped_packets_total', 'Packets the engine lost to overload (receive queue full, send failed)', none, () => [
    [{}, ctx.dataPlane.totals().dropped],
  ]);
  readCounter(r, 'ngrelay_engine_malformed_packets_total', 'Packets dropped as malformed RTP/RTCP', none, () => [
    [{}, ctx.dataPlane.totals().malformed],
  ]);
  const state = ctx.stateStats;
  if (state) {
    readCounter(r, 'ngrelay_state_writes_total', 'Call state files written (--state-dir)', none, () => [[{}, state().writes]]);
    readCounter(r, 'ngrelay_state_write_errors_total', 'Call state writes that failed (full disk, permissions)', none, () => [[{}, state().writeErrors]]);
    readGauge(r, 'ngrelay_state_last_write_seconds', 'Unix time of the last successful state write (0 = none yet)', none, () => [
      [{}, Math.floor(state().lastWriteMs / 1000)],
    ]);
    readGauge(r, 'ngrelay_state_restored_calls', 'Calls restored from the state dir at the last start', none, () => [[{}, state().restoredCalls]]);
    readGauge(r, 'ngrelay_state_failed_calls', 'Calls that could not be restored at the last start', none, () => [[{}, state().failedCalls]]);
    readGauge(r, 'ngrelay_state_skipped_files', 'State files skipped as unreadable at the last start', none, () => [[{}, state().skippedFiles]]);
    if (state().redis) {
      const redis = () => state().redis as NonNullable<PersistenceStats['redis']>;
      readGauge(r, 'ngrelay_redis_connected', 'Whether the Redis write connection is up (--redis, --redis-write)', none, () => [[{}, redis().connected ? 1 : 0]]);
      readCounter(r, 'ngrelay_redis_writes_total', 'Call keys written to or deleted from Redis', none, () => [[{}, redis().writes]]);
      readCounter(r, 'ngrelay_redis_write_errors_total', 'Call key writes that failed (kept and written again later)', none, () => [[{}, redis().writeErrors]]);
      readGauge(r, 'ngrelay_redis_pending_writes', 'Calls changed but not yet written to Redis', none, () => [[{}, redis().pending]]);
      readGauge(r, 'ngrelay_redis_last_write_seconds', 'Unix time of the last successful Redis write (0 = none yet)', none, () => [
        [{}, Math.floor(redis().lastWriteMs / 1000)],
      ]);
      readGauge(r, 'ngrelay_redis_restored_calls', 'Calls restored from Redis at the last start', none, () => [[{}, redis().restoredCalls]]);
      readGauge(r, 'ngrelay_redis_failed_calls', 'Calls read from Redis that could not be restored at the last start', none, () => [[{}, redis().failedCalls]]);
      readGauge(r, 'ngrelay_redis_skipped_keys', 'Redis keys skipped as unreadable at the last start', none, () => [[{}, redis().skippedKeys]]);
      readGauge(r, 'ngrelay_redis_foreign_calls', 'Foreign calls held for other relays (--subscribe-keyspace)', none, () => [[{}, redis().foreignCalls]]);
    }
  }
  readGauge(r, 'ngrelay_engine_threads', 'I/O threads of the forwarding engine', none, () => [[{}, ctx.dataPlane.info().threads]]);
  readCounter(r, 'ngrelay_io_thread_cpu_seconds_total', 'CPU time of each engine I/O thread (rate = its load, 1 = a core)', ['thread'], () =>
    ioThreadCpu().map(({ thread, seconds }) => [{ thread }, seconds]),
  );
  // Prometheus' standard process metric: the whole process (control plane, I/O threads, pcap writer), so a
  // benchmark that cannot read /proc/<pid> (ngrelay-bench --metrics) still gets the relay's CPU per packet.
  readCounter(r, 'process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.', none, () => {
    const { user, system } = process.cpuUsage();
    return [[{}, (user + system) / 1e6]];
  });
  readCounter(r, 'ngrelay_ng_retransmits_total', 'ng messages answered from the cookie cache (retransmits)', none, () => [
    [{}, ctx.controlStats().duplicates],
  ]);
  readCounter(r, 'ngrelay_ng_dropped_total', 'ng messages dropped without reply (no cookie)', none, () => [
    [{}, ctx.controlStats().dropped],
  ]);
  return r;
}
