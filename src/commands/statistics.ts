/** The `statistics` reply: rtpengine's groups (current, total, control) filled with ngrelay's real figures. */
import type { NgDict, NgValue } from '../ng/types';
import { ngDict } from '../ng/dict';
import type { CommandContext } from './handler';

export interface ControlStats {
  /** Per command name: how many were handled and their total duration in seconds. */
  commands: Record<string, { count: number; durationSeconds: number }>;
  errors: number;
}


const fixed = (n: number): string => n.toFixed(6);

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
    // No MOS yet: ngrelay does not compute call quality from RTCP (rtpengine's group is kept for parsers).
    [
      'mos',
      ngDict([
        ['mos_total', fixed(0)],
        ['mos_samples_total', 0],
        ['mos_average', fixed(0)],
      ]),
    ],
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
    // ngrelay's own (rtpengine has no such group): --state-dir writes and restores.
    ...(ctx.stateStats ? ([['statedir', ctx.stateStats()]] as Array<[string, NgValue]>) : []),
  ]);
}
