/**
 * The transport-neutral ng message processor: decode -> cookie cache -> handler -> encode. UDP (server.ts),
 * TCP, HTTP and WebSocket all hand their messages to one NgProcessor, so the same request gets the
 * byte-identical reply on every transport, and a retransmit on one transport is answered from the cache
 * filled by another (one cache, like rtpengine's control_ng.c).
 *
 * Message: `<cookie><SP><dict>`; the reply is `<same cookie><SP><dict>` in the request's encoding
 * (bencode when the dict starts with 'd', JSON when it starts with '{').
 *
 * Rules, following rtpengine's control_ng.c:
 *  - no space, or a space at byte 0 (empty cookie): nothing to address a reply to -> logged, counted, dropped;
 *  - a cookie seen in the last 30-60 s gets the cached reply bytes and the command does not run again, also
 *    while the first copy is still being handled (see cookie-cache.ts). Error replies are cached too;
 *  - every other malformed input gets `result: error` with rtpengine's `error-reason`:
 *      empty body                   "Invalid data (no payload)"
 *      neither 'd' nor '{'          "Invalid NG data format"
 *      bad bencode                  "Could not decode bencode dictionary"
 *      bad JSON                     "Failed to parse JSON document"
 *      JSON that is no ng dict      "Could not decode bencode dictionary"
 *      no string `command`          `Dictionary contains no key "command"`
 *  - the handler's NgError becomes `{result: error, error-reason: <reason>}` (keys in that order, like
 *    rtpengine's wire bytes); any other exception becomes a generic error reply and a logged stack;
 *  - a handler reply without `result` gets `result: ok` appended last (where rtpengine puts it).
 */
import { NgError } from '../errors';
import { infoEnabled, type Logger } from '../logger';
import { BencodeError, decodeDict, encode } from './bencode';
import { CookieCache, type CookieCacheStats } from './cookie-cache';
import { getValue } from './request';
import { shedReply } from './admission';
import { JsonShapeError, JsonSyntaxError, decodeJsonDict, encodeJsonDict } from './json';
import type { NgDict, NgHandler, NgRequestContext } from './types';
import { ngDict } from './dict';

export const ERR_NO_PAYLOAD = 'Invalid data (no payload)';
export const ERR_BAD_FORMAT = 'Invalid NG data format';
export const ERR_BAD_BENCODE = 'Could not decode bencode dictionary';
export const ERR_BAD_JSON = 'Failed to parse JSON document';
export const ERR_NO_COMMAND = 'Dictionary contains no key "command"';
/** Reason sent when the handler throws something that is not an NgError (a bug); the stack goes to the log. */
export const ERR_INTERNAL = 'Internal error while processing command';

const SPACE = 0x20;
/** Distinct command names / proxies tracked in stats; more go into the "other" bucket (garbage floods). */
const MAX_TRACKED_NAMES = 64;
const MAX_TRACKED_PROXIES = 1024;
const OTHER = '(other)';

export interface NgCommandStats {
  count: number;
  /** Replies with result "error" among them. */
  errors: number;
  /** Sum of handler durations, seconds. */
  durationSeconds: number;
  minDurationSeconds: number;
  maxDurationSeconds: number;
}

export interface NgProxyStats {
  /** Commands handled per name for this source address. */
  commands: Record<string, number>;
  /** Handler time per command name for this source address, seconds (rtpengine_request_seconds_total). */
  seconds: Record<string, number>;
  errors: number;
}

export interface NgServerStats {
  /** Messages received (all transports). */
  received: number;
  /** Messages dropped without reply (no cookie). */
  dropped: number;
  /** Retransmits answered from the cookie cache or from the still-running first copy. */
  duplicates: number;
  /** Error replies sent (decode errors, handler errors, internal errors), duplicates not counted. */
  errors: number;
  /** Of those: undecodable bodies and missing `command`. */
  decodeErrors: number;
  /** Of those: non-NgError exceptions from the handler. */
  internalErrors: number;
  /** Per command name (as sent, e.g. "offer", "start recording"). */
  commands: Record<string, NgCommandStats>;
  /** Per proxy source address, like rtpengine's `controlstatistics`. */
  proxies: Record<string, NgProxyStats>;
  /** Size of the per-cookie reply cache. */
  cache: CookieCacheStats;
}

export interface NgProcessorOptions {
  handler: NgHandler;
  logger: Logger;
  /** Injectable for tests (clock); default: 30 s generations. */
  cookieCache?: CookieCache;
  /** When given, only these names get per-command stats; others are counted under "(other)". */
  knownCommands?: ReadonlySet<string>;
}


function errorDict(reason: string): NgDict {
  return ngDict([
    ['result', 'error'],
    ['error-reason', reason],
  ]);
}

function newCommandStats(): NgCommandStats {
  return { count: 0, errors: 0, durationSeconds: 0, minDurationSeconds: 0, maxDurationSeconds: 0 };
}

/** What processing one body produced, before it is framed with the cookie. */
interface Outcome {
  reply: NgDict;
  encoding: 'bencode' | 'json';
}

/** Where a message came from; `transport` only goes into log lines. */
export interface NgRemote {
  address: string;
  port: number;
  transport?: 'udp' | 'tcp' | 'http' | 'ws';
}

/** A dict in the request's encoding, behind `prefix` (the cookie and a space) when there is one. */
function encodeDict(dict: NgDict, encoding: 'bencode' | 'json', prefix: Buffer | undefined): Buffer {
  if (encoding === 'bencode') return encode(dict, prefix);
  return prefix ? Buffer.concat([prefix, encodeJsonDict(dict)]) : encodeJsonDict(dict);
}

interface CommandLogFields {
  'call-id': string | undefined;
  command: string;
  remote: string;
}

/** The fields of a command's log lines. */
function commandLogFields(request: NgDict, command: string, remote: NgRemote): CommandLogFields {
  const callIdValue = getValue(request, 'call-id');
  const callId = Buffer.isBuffer(callIdValue) || typeof callIdValue === 'string' ? callIdValue.toString() : undefined;
  return { 'call-id': callId, command, remote: remoteText(remote) };
}

function remoteText(remote: NgRemote): string {
  const where = `${remote.address}:${remote.port}`;
  return remote.transport && remote.transport !== 'udp' ? `${remote.transport}:${where}` : where;
}

export class NgProcessor {
  private readonly cache: CookieCache;
  private readonly logger: Logger;
  private readonly handler: NgHandler;
  private readonly knownCommands: ReadonlySet<string> | undefined;
  private readonly counters: Omit<NgServerStats, 'cache'> = {
    received: 0,
    dropped: 0,
    duplicates: 0,
    errors: 0,
    decodeErrors: 0,
    internalErrors: 0,
    commands: Object.create(null) as Record<string, NgCommandStats>,
    proxies: Object.create(null) as Record<string, NgProxyStats>,
  };

  constructor(options: NgProcessorOptions) {
    this.cache = options.cookieCache ?? new CookieCache();
    this.logger = options.logger;
    this.handler = options.handler;
    this.knownCommands = options.knownCommands;
  }

  /** A snapshot of the counters (for the `statistics` command and /metrics). */
  stats(): NgServerStats {
    return { ...structuredClone(this.counters), cache: this.cache.stats() };
  }

  /**
   * One `<cookie> <dict>` message in, the reply message out, or null when it has to be dropped (no cookie).
   * Never throws for bad input. `late`: it waited in the admission queue past its bound (admission.ts), so
   * a new offer is refused with the load-limit reply instead of being run.
   */
  async handleMessage(msg: Buffer, remote: NgRemote, late = false): Promise<Buffer | null> {
    this.counters.received++;
    const space = msg.indexOf(SPACE);
    if (space <= 0) {
      this.counters.dropped++;
      this.logger.warn(
        { remote: remoteText(remote), data: msg.subarray(0, 64).toString('latin1') },
        'received invalid ng data (no cookie), dropped',
      );
      return null;
    }
    const cookie = msg.subarray(0, space);
    const body = msg.subarray(space + 1);
    // latin1: a lossless byte -> char mapping, so distinct cookies stay distinct keys.
    const key = cookie.toString('latin1');
    // The reply is `<cookie> <dict>`: the cookie and its space as they came, encoded in front of the dict.
    const prefix = msg.subarray(0, space + 1);
    const { reply, outcome } = await this.cache.run(key, () => this.safeReply(body, remote, late, prefix));
    if (outcome !== 'computed') {
      this.counters.duplicates++;
      this.logger.info({ remote: remoteText(remote), cookie: key, outcome }, 'detected command as a duplicate');
    }
    return reply;
  }

  /**
   * A bare `<dict>` without cookie (HTTP POST /ng-plain): the reply dict, encoded; no retransmit detection
   * since there is no cookie to key it. Never throws for bad input.
   */
  async handlePlain(body: Buffer, remote: NgRemote): Promise<Buffer> {
    this.counters.received++;
    return this.safeReply(body, remote);
  }

  /** `prefix`: bytes the encoded reply starts with (the cookie and a space), none for a bare dict. */
  private async safeReply(body: Buffer, remote: NgRemote, late = false, prefix?: Buffer): Promise<Buffer> {
    let out: Outcome;
    try {
      out = await this.processBody(body, remote, late);
    } catch (err) {
      // A bug in decoding itself: still answer, never stay silent.
      this.counters.errors++;
      this.counters.internalErrors++;
      this.logger.error({ err, remote: remoteText(remote) }, 'ng message processing failed');
      out = { reply: errorDict(ERR_INTERNAL), encoding: body[0] === 0x7b ? 'json' : 'bencode' };
    }
    return this.encodeReply(out, prefix);
  }

  private encodeReply(out: Outcome, prefix: Buffer | undefined): Buffer {
    try {
      return encodeDict(out.reply, out.encoding, prefix);
    } catch (err) {
      // The handler produced something the wire format cannot carry: a bug, but the client still gets an answer.
      this.counters.internalErrors++;
      this.counters.errors++;
      this.logger.error({ err }, 'ng reply could not be encoded');
      return encodeDict(errorDict(ERR_INTERNAL), out.encoding, prefix);
    }
  }

  private decodeFailure(reason: string, remote: { address: string }, encoding: 'bencode' | 'json', detail: string): Outcome {
    this.counters.errors++;
    this.counters.decodeErrors++;
    this.proxyStats(remote.address).errors++;
    this.logger.warn({ remote: remote.address, reason, detail }, 'ng protocol error');
    return { reply: errorDict(reason), encoding };
  }

  private async processBody(body: Buffer, remote: NgRemote, late: boolean): Promise<Outcome> {
    if (body.length === 0) return this.decodeFailure(ERR_NO_PAYLOAD, remote, 'bencode', 'empty body');
    const first = body[0];
    let encoding: 'bencode' | 'json';
    let request: NgDict;
    if (first === 0x64 /* d */) {
      encoding = 'bencode';
      try {
        request = decodeDict(body);
      } catch (err) {
        if (!(err instanceof BencodeError)) throw err;
        return this.decodeFailure(ERR_BAD_BENCODE, remote, encoding, err.message);
      }
    } else if (first === 0x7b /* { */) {
      encoding = 'json';
      try {
        request = decodeJsonDict(body);
      } catch (err) {
        if (err instanceof JsonSyntaxError) return this.decodeFailure(ERR_BAD_JSON, remote, encoding, err.message);
        if (err instanceof JsonShapeError) return this.decodeFailure(ERR_BAD_BENCODE, remote, encoding, err.message);
        throw err;
      }
    } else {
      return this.decodeFailure(ERR_BAD_FORMAT, remote, 'bencode', `first byte 0x${first!.toString(16)}`);
    }

    const commandValue = request['command'];
    const command = Buffer.isBuffer(commandValue)
      ? commandValue.toString('utf8')
      : typeof commandValue === 'string'
        ? commandValue
        : null;
    if (command === null) return this.decodeFailure(ERR_NO_COMMAND, remote, encoding, 'no command key');

    const logFields = infoEnabled(this.logger) ? commandLogFields(request, command, remote) : null;
    if (logFields) this.logger.info(logFields, 'received ng command');

    const context: NgRequestContext = { remote: { address: remote.address, port: remote.port }, encoding };
    // performance.now(): a double, where hrtime.bigint() made two BigInts per command (sub-µs either way).
    const started = performance.now();
    let reply: NgDict;
    let failed = false;
    const shed = late ? shedReply(command, request) : null;
    try {
      if (shed) {
        failed = true;
        if (logFields) this.logger.info({ ...logFields }, 'ng command refused: it waited too long (overload)');
      }
      reply = shed ?? (await this.handler(request, context));
      if (!Object.prototype.hasOwnProperty.call(reply, 'result')) reply['result'] = 'ok';
      else if (reply['result'] === 'error' || (Buffer.isBuffer(reply['result']) && reply['result'].toString() === 'error')) failed = true;
    } catch (err) {
      failed = true;
      if (err instanceof NgError) {
        reply = errorDict(err.reason);
        this.logger.warn({ ...(logFields ?? commandLogFields(request, command, remote)), reason: err.reason }, 'ng command failed');
      } else {
        this.counters.internalErrors++;
        reply = errorDict(ERR_INTERNAL);
        this.logger.error({ ...(logFields ?? commandLogFields(request, command, remote)), err }, 'ng command threw an unexpected exception');
      }
    }
    const seconds = (performance.now() - started) / 1e3;
    this.record(command, remote.address, seconds, failed);
    if (logFields) this.logger.info({ ...logFields, elapsed: seconds, result: failed ? 'error' : 'ok' }, 'replying to ng command');
    return { reply, encoding };
  }

  private proxyStats(address: string): NgProxyStats {
    const proxies = this.counters.proxies;
    let p = proxies[address];
    if (!p) {
      const name = Object.keys(proxies).length >= MAX_TRACKED_PROXIES ? OTHER : address;
      p = proxies[name] ??= {
        commands: Object.create(null) as Record<string, number>,
        seconds: Object.create(null) as Record<string, number>,
        errors: 0,
      };
    }
    return p;
  }

  private record(command: string, address: string, seconds: number, failed: boolean): void {
    const commands = this.counters.commands;
    let name = command;
    if (this.knownCommands ? !this.knownCommands.has(name) : !commands[name] && Object.keys(commands).length >= MAX_TRACKED_NAMES) {
      name = OTHER;
    }
    const c = (commands[name] ??= newCommandStats());
    c.count++;
    c.durationSeconds += seconds;
    c.minDurationSeconds = c.count === 1 ? seconds : Math.min(c.minDurationSeconds, seconds);
    c.maxDurationSeconds = Math.max(c.maxDurationSeconds, seconds);
    const proxy = this.proxyStats(address);
    proxy.commands[name] = (proxy.commands[name] ?? 0) + 1;
    proxy.seconds[name] = (proxy.seconds[name] ?? 0) + seconds;
    if (failed) {
      c.errors++;
      proxy.errors++;
      this.counters.errors++;
    }
  }
}
