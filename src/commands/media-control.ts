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
import { NgError } from '../errors';
import { ngDict } from '../ng/dict';
import type { CallManager } from '../call/call-manager';
import type { MonologueState } from '../call/state';

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
  const on = !command.startsWith('un');
  manager.setMediaControl(call, targets, control, on);
  return ngDict([['result', 'ok']]);
}
