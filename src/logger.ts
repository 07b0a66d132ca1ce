/**
 * Logging: pino JSON lines, one object per line. `--log-level` keeps rtpengine's syslog scale (0 emerg ..
 * 7 debug) and is mapped onto pino's levels:
 *
 *   syslog 0 emerg, 1 alert, 2 crit  -> fatal
 *   syslog 3 err                     -> error
 *   syslog 4 warning                 -> warn
 *   syslog 5 notice, 6 info          -> info   (6 is the default, as in rtpengine)
 *   syslog 7 debug                   -> debug
 *
 * A syslog level lets through everything at least as severe, so `--log-level=4` logs fatal, error and warn.
 * Call-related lines carry `call-id`, `from-tag` and `to-tag` fields, named as in the ng protocol.
 */
import pino from 'pino';

/**
 * The logging surface modules depend on: the subset of pino's Logger they call, so tests can pass a stub
 * and production passes a pino instance (or a child logger) unchanged.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
}

export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  /** pino's: whether a line at `level` would be written (absent on a stub: take it as yes). */
  isLevelEnabled?(level: string): boolean;
}

/**
 * Whether info lines are written. Per-command info lines build their fields only when they are (production
 * relays log warnings): those objects and strings would otherwise be garbage made for every command.
 */
export function infoEnabled(logger: Logger): boolean {
  return logger.isLevelEnabled?.('info') ?? true;
}

/** The pino instance createLogger makes: a Logger whose level can change at run time and that makes children. */
export type PinoLogger = pino.Logger;
export type PinoLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug';

export interface LoggerOptions {
  /** syslog level 0..7. */
  level: number;
  /** Write to stderr (`--log-stderr`); otherwise stdout. Ignored when `destination` is given. */
  stderr: boolean;
  /** false (`--no-log-timestamps`): no "time" field, for journald, which stamps each line. Default true. */
  timestamps?: boolean;
  /** Where the JSON lines go instead, e.g. a memory stream in tests. */
  destination?: pino.DestinationStream;
}

export interface CallLogFields {
  callId: string;
  fromTag?: string;
  toTag?: string;
}

export function syslogToPinoLevel(syslogLevel: number): PinoLevel {
  if (!Number.isInteger(syslogLevel) || syslogLevel < 0 || syslogLevel > 7) {
    throw new RangeError(`syslog level must be an integer 0..7, got ${syslogLevel}`);
  }
  if (syslogLevel <= 2) return 'fatal';
  if (syslogLevel === 3) return 'error';
  if (syslogLevel === 4) return 'warn';
  if (syslogLevel <= 6) return 'info';
  return 'debug';
}

export function createLogger(options: LoggerOptions): PinoLogger {
  // Synchronous writes: log volume is per call event, not per packet, and a crash must not lose the last
  // lines that explain it.
  const destination = options.destination ?? pino.destination({ fd: options.stderr ? 2 : 1, sync: true });
  return pino(
    {
      name: 'ngrelay',
      level: syslogToPinoLevel(options.level),
      timestamp: options.timestamps === false ? false : pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** Change the level at run time (e.g. a control command); takes the syslog scale like `--log-level`. */
export function setSyslogLevel(logger: PinoLogger, syslogLevel: number): void {
  logger.level = syslogToPinoLevel(syslogLevel);
}

/**
 * The relay's current syslog level, one holder for everything that changes it at run time (rtpengine-ctl
 * `set loglevel`, SIGUSR1/SIGUSR2), so each change starts from the level the last one left.
 */
export class SyslogLevel {
  constructor(
    private readonly logger: PinoLogger,
    private level: number,
  ) {}

  get(): number {
    return this.level;
  }

  set(level: number): void {
    setSyslogLevel(this.logger, level);
    this.level = level;
  }

  /** One step up (+1, more verbose) or down (-1), within 0..7; returns the new level. */
  shift(by: number): number {
    this.set(Math.min(7, Math.max(0, this.level + by)));
    return this.level;
  }
}

/** A child logger whose lines all carry the call's identifiers; absent tags are left out, not empty. */
export function callLogger(logger: PinoLogger, fields: CallLogFields): PinoLogger {
  const bindings: Record<string, string> = { 'call-id': fields.callId };
  if (fields.fromTag !== undefined) bindings['from-tag'] = fields.fromTag;
  if (fields.toTag !== undefined) bindings['to-tag'] = fields.toTag;
  return logger.child(bindings);
}
