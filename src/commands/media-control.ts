/**
 * `block media` / `unblock media`, `silence media` / `unsilence media` and `block DTMF` / `unblock DTMF`
 * (telephone-event packets dropped, audio untouched), scoped as rtpengine 10.5 scopes
 * them (seen side by side): a `from-tag` names the party whose *sent* media is dropped or muted (a to-tag
 * with it changes nothing in a two-party call); no from-tag (a to-tag alone included) or the `all` flag
 * means every party of the call. The call and its counters stay as they are; packets keep arriving and are
 * counted.
 */
import type { NgDict } from '../ng/types';
import type { NormalizedRequest } from '../ng/request';
import { getString, getValue } from '../ng/request';
import { NgError } from '../errors';
import { ngDict } from '../ng/dict';
import type { CallManager } from '../call/call-manager';
import type { MonologueState } from '../call/state';
import { dtmfCode } from './play-dtmf';

/** `DTMF-security` names no mode rtpengine 10.5 knows. */
export class UnknownDtmfSecurityError extends NgError {
  constructor(mode: string) {
    super(`Unknown DTMF-security mode '${mode}'`);
  }
}

/** What `block DTMF` does with a party's telephone-event packets, from its `DTMF-security` key. */
export interface DtmfSecurity {
  /** false: `off` (the block is lifted). */
  block: boolean;
  /** Forwarded with this digit (or a random one) instead of being dropped; null = dropped. */
  replace: number | 'random' | null;
  /** Set when the mode needs transcoding (`silence`, `tone`): the packets are dropped instead. */
  warning: string | null;
}

/**
 * rtpengine's modes: drop (the default), zero, DTMF (the `digit`/`code` key's digit), random and off need no
 * audio of the relay's own and are done on the RFC 4733 packets; silence and tone replace the event with
 * generated audio (transcoding), so here they drop the packets, with a warning saying so.
 */
export function dtmfSecurity(req: NormalizedRequest): DtmfSecurity {
  const mode = getString(req.raw, 'DTMF-security') ?? 'drop';
  switch (mode) {
    case 'drop':
      return { block: true, replace: null, warning: null };
    case 'off':
      return { block: false, replace: null, warning: null };
    case 'zero':
      return { block: true, replace: 0, warning: null };
    case 'random':
      return { block: true, replace: 'random', warning: null };
    case 'DTMF': {
      const digit = getValue(req.raw, 'digit') ?? getValue(req.raw, 'code');
      return { block: true, replace: digit === undefined ? 0 : dtmfCode(digit), warning: null };
    }
    case 'silence':
    case 'tone':
      return { block: true, replace: null, warning: `DTMF-security=${mode} needs transcoding: DTMF events are dropped instead` };
    default:
      throw new UnknownDtmfSecurityError(mode);
  }
}

export type MediaControlCommand =
  | 'block media'
  | 'unblock media'
  | 'silence media'
  | 'unsilence media'
  | 'block DTMF'
  | 'unblock DTMF';

export const MEDIA_CONTROL_COMMANDS: ReadonlySet<string> = new Set<MediaControlCommand>([
  'block media',
  'unblock media',
  'silence media',
  'unsilence media',
  'block DTMF',
  'unblock DTMF',
]);

export function mediaControlCommand(command: MediaControlCommand, req: NormalizedRequest, manager: CallManager): NgDict {
  if (!req.callId) throw new NgError('No call-id in message');
  const call = manager.calls.get(req.callId);
  if (!call) throw new NgError('Unknown call-ID');
  let targets: readonly MonologueState[] = call.monologues;
  if (req.fromTag && !req.flags.has('all')) {
    const mono = manager.findByTag(call, req.fromTag);
    if (!mono) throw new NgError('From-tag given, but no such tag exists');
    targets = [mono];
  }
  const control = command.endsWith('DTMF') ? 'dtmf-blocked' : command.includes('block') ? 'blocked' : 'silenced';
  if (command === 'block DTMF') {
    const security = dtmfSecurity(req);
    manager.setMediaControl(call, targets, control, security.block, security.replace);
    return security.warning === null ? ngDict([['result', 'ok']]) : ngDict([['warning', security.warning], ['result', 'ok']]);
  }
  const on = !command.startsWith('un');
  manager.setMediaControl(call, targets, control, on);
  return ngDict([['result', 'ok']]);
}
