/** The `statistics` reply: rtpengine's groups (current, total, control) filled with ngrelay's real figures. */
import type { NgDict, NgValue } from '../ng/types';
import { ngDict } from '../ng/dict';
import type { CommandContext } from './handler';
import type { MosTotals } from '../dataplane/types';

export interface ControlStats {
  /** Per command name: how many were handled and their total duration in seconds. */
  commands: Record<string, { count: number; durationSeconds: number }>;
  errors: number;
}


const fixed = (n: number): string => n.toFixed(6);

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

export function statisticsReply(ctx: CommandContext): NgDict {
  const t = ctx.manager.totals;
  const engine = ctx.dataPlane.totals();
  const sessions = ctx.manager.calls.size;
  const control = ctx.controlStats();
  const avgDuration = t.endedCalls ? t.totalCallDurationMs / t.endedCalls / 1000 : 0;
  const commandEntries: Array<[string, NgValue]> = [];
  let total = 0;
  for (const [name, c] of Object.entries(control.commands)) {
    const key = name.replace(/ /g, '');
    commandEntries.push([`${key}count`, c.count], [`${key}duration`, fixed(c.durationSeconds)]);
    total += c.count;
  }
  return ngDict([
    [
      'currentstatistics',
      ngDict([
        ['sessionsown', sessions],
        ['sessionsforeign', 0],
        ['sessionstotal', sessions],
        ['transcodedmedia', 0],
        ['packetrate', 0],
        ['byterate', 0],
        ['errorrate', 0],
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
        ['forcedterminatedsessions', 0],
        ['relayedpackets', engine.packets],
        ['relayedpacketerrors', engine.errors],
        ['relayedbytes', engine.bytes],
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
        ['minmanagedsessions', sessions],
        ['maxmanagedsessions', sessions],
      ]),
    ],
    ['mos', mosGroup(ctx.dataPlane.mosTotals())],
    [
      'controlstatistics',
      ngDict([
        ['proxies', [ngDict([['proxy', 'all'], ...commandEntries, ['errorcount', control.errors]])]],
        ['totalcount', total],
      ]),
    ],
    ['interfaces', ctx.interfaces()],
    // ngrelay does not transcode.
    ['transcoders', []],
  ]);
}
