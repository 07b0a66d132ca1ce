/** Which ng commands change a call's stored state, and the call they name. */
import { idFromWire } from '../ng/byte-string';
import { getValue } from '../ng/request';
import type { NgDict } from '../ng/types';

const CHANGING_COMMANDS = new Set(['offer', 'answer', 'delete', 'start recording', 'stop recording', 'pause recording']);

/**
 * The call-id to write after this request, or null when the command changes no call. The id is the call
 * manager's key: its bytes one char per byte (byte-string.ts), under any of the key's spellings (`call id`).
 */
export function persistedCallId(request: NgDict): string | null {
  const command = getValue(request, 'command');
  const name = Buffer.isBuffer(command) ? command.toString('utf8') : command;
  if (typeof name !== 'string' || !CHANGING_COMMANDS.has(name)) return null;
  const callId = getValue(request, 'call-id');
  return Buffer.isBuffer(callId) || typeof callId === 'string' ? idFromWire(callId) : null;
}

/**
 * False when the request carries rtpengine's `no-redis-update` flag (in `flags` or `rtpp-flags`): the call's
 * state is not written to Redis after this command (the state dir still is: it is this relay's own).
 */
export function wantsRedisUpdate(request: NgDict): boolean {
  const flags = getValue(request, 'flags');
  if (Array.isArray(flags)) {
    for (const f of flags) {
      const text = Buffer.isBuffer(f) ? f.toString('latin1') : f;
      if (typeof text === 'string' && text.replace(/ /g, '-').toLowerCase() === 'no-redis-update') return false;
    }
  }
  const rtpp = getValue(request, 'rtpp-flags');
  const text = Buffer.isBuffer(rtpp) ? rtpp.toString('latin1') : rtpp;
  if (typeof text === 'string' && /(^|\s)no-redis-update(\s|$)/i.test(text)) return false;
  return true;
}
