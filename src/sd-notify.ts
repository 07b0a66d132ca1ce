/**
 * systemd's `Type=notify` protocol (sd_notify(3)): when systemd starts ngrelay it sets $NOTIFY_SOCKET, an
 * AF_UNIX datagram socket, and waits for `READY=1` before it counts the service as started (units ordered
 * after it start only then); `STOPPING=1` says a stop is under way. Without $NOTIFY_SOCKET nothing is sent.
 * Node cannot send AF_UNIX datagrams, so the one sendto() lives in native/src/sd_notify.cpp.
 */
import { nativeAddonExport } from './dataplane/native';

type SendFn = (socketPath: string, message: string) => void;

/** $NOTIFY_SOCKET was set but the message could not be delivered; `code` is the errno name. */
export class SdNotifyError extends Error {
  override readonly name = 'SdNotifyError';
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

function nativeSend(): SendFn {
  const fn = nativeAddonExport('sdNotify');
  if (typeof fn !== 'function') throw new SdNotifyError('the native addon has no sdNotify (rebuild: npm run build:native)', undefined);
  return fn as SendFn;
}

/**
 * Sends `fields` (newline-separated `KEY=value` lines) to $NOTIFY_SOCKET. Returns false when not started by
 * systemd (no socket), true when sent; throws SdNotifyError when the socket is set but unreachable.
 */
export function sdNotify(fields: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const socketPath = env['NOTIFY_SOCKET'];
  if (socketPath === undefined || socketPath === '') return false;
  try {
    nativeSend()(socketPath, fields.join('\n'));
  } catch (err) {
    if (err instanceof SdNotifyError) throw err;
    const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
    throw new SdNotifyError(`cannot notify systemd at NOTIFY_SOCKET=${socketPath}: ${(err as Error).message}`, code);
  }
  return true;
}
