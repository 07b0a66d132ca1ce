/** The `statistics` reply: rtpengine's groups (current, total, control) filled with ngrelay's real figures. */
import type { NgDict, NgValue } from '../ng/types';
import { ngDict } from '../ng/dict';
import type { CommandContext } from './context';
import type { MosTotals } from '../dataplane/types';
import { mediaStreamKinds, trafficSplit, type TrafficSplit } from '../call/kernel-split';
import { sessionCounts } from '../call/session-counts';

const fixed = (n: number): string => n.toFixed(6);

export interface ControlStats {
  /** Per command name: how many were handled and their total duration in seconds. */
  commands: Record<string, { count: number; durationSeconds: number }>;
  errors: number;
  /** The ng reply cache's size (absent before the server exists). */
  cache?: { entries: number; bytes: number };
}

/**
 * rtpengine's ng command names. Only these get their own `<name>count`/`<name>duration` keys; every other
 * name a client sent is summed under `othercount`/`otherduration`, so the reply never echoes what a client
 * made up (a 40 kB command name, or thousands of distinct ones, would make it outgrow a datagram).
 */
export const NG_COMMAND_NAMES: ReadonlySet<string> = new Set([
  'ping', 'offer', 'answer', 'delete', 'query', 'list', 'statistics',
  'start recording', 'stop recording', 'pause recording', 'start forwarding', 'stop forwarding',
  'block DTMF', 'unblock DTMF', 'block media', 'unblock media', 'silence media', 'unsilence media',
  'play media', 'stop media', 'play DTMF', 'publish', 'subscribe request', 'subscribe answer',
  'unsubscribe', 'connect',
]);
const OTHER_KEY = 'other';

/** Per-command count/duration keys: known names as rtpengine spells them, all others in one bucket. */
function commandEntries(commands: ControlStats['commands']): { entries: Array<[string, NgValue]>; total: number } {
  const known: Array<[string, { count: number; durationSeconds: number }]> = [];
  const other = { count: 0, durationSeconds: 0 };
  for (const [name, c] of Object.entries(commands)) {
    if (NG_COMMAND_NAMES.has(name)) known.push([name.replace(/ /g, ''), c]);
    else {
      other.count += c.count;
      other.durationSeconds += c.durationSeconds;
    }
  }
  if (other.count > 0) known.push([OTHER_KEY, other]);
  const entries: Array<[string, NgValue]> = [];
  let total = 0;
  for (const [key, c] of known) {
    entries.push([`${key}count`, c.count], [`${key}duration`, fixed(c.durationSeconds)]);
    total += c.count;
  }
  return { entries, total };
}



/** rtpengine's `mos` group: every MOS computed from RTCP since start, as sums, average and deviation. */
function mosGroup(t: MosTotals): NgDict {
  const n = t.samples;
  const total = t.mosX10Sum / 10;
  const squares = t.mosX10SquareSum / 100;
  const average = n ? total / n : 0;
  const variance = n ? Math.max(0, squares / n - average * average) : 0;
  return ngDict([
    ['mos_total', fixed(total)],
    ['mos2_total', fixed(squares)],
    ['mos_samples_total', n],
    ['mos_average', fixed(average)],
    ['mos_stddev', fixed(Math.sqrt(variance))],
  ]);
}

const NO_RATES: TrafficSplit = trafficSplit({ packets: 0, bytes: 0, errors: 0, malformed: 0, dropped: 0 });

export function statisticsReply(ctx: CommandContext): NgDict {
  const t = ctx.manager.totals;
  const engine = ctx.dataPlane.totals();
  const relayed = trafficSplit(engine);
  const rates = ctx.rates?.() ?? NO_RATES;
  const media = mediaStreamKinds(ctx.manager, ctx.dataPlane);
  const sessions = sessionCounts(ctx.manager.calls.keys(), ctx.isForeign);
  const control = ctx.controlStats();
  const avgDuration = t.endedCalls ? t.totalCallDurationMs / t.endedCalls / 1000 : 0;
  const { entries: perCommand, total } = commandEntries(control.commands);
  return ngDict([
    [
      'currentstatistics',
      ngDict([
        ['sessionsown', sessions.own],
        ['sessionsforeign', sessions.foreign],
        ['sessionstotal', sessions.total],
        ['transcodedmedia', 0],
        // rtpengine's split: userspace, the kernel (here the eBPF fast path, --table), both.
        ['packetrate_user', rates.userspace.packets],
        ['byterate_user', rates.userspace.bytes],
        ['errorrate_user', rates.userspace.errors],
        ['packetrate_kernel', rates.kernel.packets],
        ['byterate_kernel', rates.kernel.bytes],
        ['errorrate_kernel', rates.kernel.errors],
        ['packetrate', rates.total.packets],
        ['byterate', rates.total.bytes],
        ['errorrate', rates.total.errors],
        ['media_userspace', media.userspace],
        ['media_kernel', media.kernel],
        ['media_mixed', media.mixed],
      ]),
    ],
    [
      'totalstatistics',
      ngDict([
        ['uptime', String(Math.floor((Date.now() - ctx.startedMs) / 1000))],
        ['managedsessions', t.managedSessions],
        ['rejectedsessions', t.rejectedSessions],
        ['timeoutsessions', t.timeoutSessions],
        ['silenttimeoutsessions', t.silentTimeoutSessions],
        ['finaltimeoutsessions', t.finalTimeoutSessions],
        ['offertimeoutsessions', t.offerTimeoutSessions],
        ['regularterminatedsessions', t.regularTerminatedSessions],
        ['forcedterminatedsessions', t.forcedTerminatedSessions],
        ['relayedpackets_user', relayed.userspace.packets],
        ['relayedpacketerrors_user', relayed.userspace.errors],
        ['relayedbytes_user', relayed.userspace.bytes],
        ['relayedpackets_kernel', relayed.kernel.packets],
        ['relayedpacketerrors_kernel', relayed.kernel.errors],
        ['relayedbytes_kernel', relayed.kernel.bytes],
        ['relayedpackets', relayed.total.packets],
        ['relayedpacketerrors', relayed.total.errors],
        ['relayedbytes', relayed.total.bytes],
        ['malformedpackets', engine.malformed],
        ['droppedpackets', engine.dropped],
        ['avgcallduration', fixed(avgDuration)],
        ['totalcallsduration', fixed(t.totalCallDurationMs / 1000)],
      ]),
    ],
    [
      'intervalstatistics',
      ngDict([
        ['totalcallsduration', fixed(t.totalCallDurationMs / 1000)],
        ['minmanagedsessions', sessions.total],
        ['maxmanagedsessions', sessions.total],
      ]),
    ],
    ['mos', mosGroup(ctx.dataPlane.mosTotals())],
    [
      'controlstatistics',
      ngDict([
        ['proxies', [ngDict([['proxy', 'all'], ...perCommand, ['errorcount', control.errors]])]],
        ['totalcount', total],
        // ngrelay's own: the retransmit reply cache's size (bounded by --ng-cache-max-entries/-bytes).
        ['replycacheentries', control.cache?.entries ?? 0],
        ['replycachebytes', control.cache?.bytes ?? 0],
      ]),
    ],
    ['interfaces', ctx.interfaces()],
    // ngrelay does not transcode.
    ['transcoders', []],
    // ngrelay's own (rtpengine has no such group): --state-dir writes and restores.
    ...(ctx.stateStats ? ([['statedir', ctx.stateStats()]] as Array<[string, NgValue]>) : []),
  ]);
}
