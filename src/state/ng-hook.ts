/** Which ng commands change a call's stored state, and the call they name. */
import type { NgDict } from '../ng/types';

const CHANGING_COMMANDS = new Set(['offer', 'answer', 'delete', 'start recording', 'stop recording', 'pause recording']);

function text(v: NgDict[string] | undefined): string | null {
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'string') return v;
  return null;
}

/** The call-id to write after this request, or null when the command changes no call. */
export function persistedCallId(request: NgDict): string | null {
  const command = text(request['command']);
  if (command === null || !CHANGING_COMMANDS.has(command)) return null;
  return text(request['call-id']);
}
