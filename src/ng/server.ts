/**
 * The ng control transport over UDP (rtpengine's `listen-ng`).
 *
 * Datagram: `<cookie><SP><dict>`; the reply is `<same cookie><SP><dict>` in the request's encoding
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
import dgram from 'node:dgram';
import net from 'node:net';
import { NgError } from '../errors';
import type { Logger } from '../logger-types';
import { BencodeError, decodeDict, encode } from './bencode';
import { CookieCache } from './cookie-cache';
import { getValue } from './request';
import { JsonShapeError, JsonSyntaxError, decodeJsonDict, encodeJsonDict } from './json';
import type { NgDict, NgHandler, NgRequestContext } from './types';
import { ngDict } from './dict';
import {
  AdmissionQueue,
  DEFAULT_ADMISSION,
  NG_RECEIVE_BUFFER_BYTES,
  looksLikePing,
  shedReply,
  type AdmissionOptions,
  type AdmissionStats,
} from './admission';

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
  errors: number;
}

export interface NgServerStats {
  /** Datagrams received. */
  received: number;
  /** Datagrams dropped without reply (no cookie). */
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
}

export interface NgServerOptions {
  /** Listen address, IPv4 or IPv6 literal. */
  address: string;
  /** 0 = pick a free port (tests). */
  port: number;
  handler: NgHandler;
  logger: Logger;
  /** Injectable for tests (clock); default: 30 s generations. */
  cookieCache?: CookieCache;
  /** When given, only these names get per-command stats; others are counted under "(other)". */
  knownCommands?: ReadonlySet<string>;
  /** Overload shedding (admission.ts); default DEFAULT_ADMISSION. */
  admission?: AdmissionOptions;
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

export class NgServer {
  private readonly socket: dgram.Socket;
  private readonly cache: CookieCache;
  private readonly logger: Logger;
  private readonly handler: NgHandler;
  private readonly knownCommands: ReadonlySet<string> | undefined;
  private readonly counters: NgServerStats = {
    received: 0,
    dropped: 0,
    duplicates: 0,
    errors: 0,
    decodeErrors: 0,
    internalErrors: 0,
    commands: Object.create(null) as Record<string, NgCommandStats>,
    proxies: Object.create(null) as Record<string, NgProxyStats>,
  };
  private listening = false;
  private closed = false;
  private readonly admission: AdmissionQueue<{ msg: Buffer; rinfo: dgram.RemoteInfo }>;

  constructor(private readonly options: NgServerOptions) {
    if (net.isIP(options.address) === 0) throw new TypeError(`listen address is not an IP literal: ${options.address}`);
    this.cache = options.cookieCache ?? new CookieCache();
    this.logger = options.logger;
    this.handler = options.handler;
    this.knownCommands = options.knownCommands;
    this.socket = dgram.createSocket({
      type: net.isIPv6(options.address) ? 'udp6' : 'udp4',
      recvBufferSize: NG_RECEIVE_BUFFER_BYTES,
    });
    this.admission = new AdmissionQueue(options.admission ?? DEFAULT_ADMISSION, ({ msg, rinfo }, late) => {
      void this.onDatagram(msg, rinfo, late);
    });
    this.socket.on('message', (msg, rinfo) => this.admission.offer({ msg, rinfo }, looksLikePing(msg)));
    // A runtime socket error (e.g. ICMP-induced) must not crash the relay.
    this.socket.on('error', (err) => {
      this.logger.error({ err }, 'ng socket error');
    });
  }

  /** Binds the socket; resolves with the bound address (useful with port 0). */
  listen(): Promise<{ address: string; port: number }> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.socket.once('error', onError);
      this.socket.bind(this.options.port, this.options.address, () => {
        this.socket.off('error', onError);
        this.listening = true;
        const a = this.socket.address();
        this.logger.info({ address: a.address, port: a.port }, 'ng control listening');
        resolve({ address: a.address, port: a.port });
      });
    });
  }

  address(): { address: string; port: number } {
    const a = this.socket.address();
    return { address: a.address, port: a.port };
  }

  /** Releases the socket. Commands still running finish, but their replies are not sent. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (!this.listening) {
      this.socket.close();
      return Promise.resolve();
    }
    return new Promise((resolve) => this.socket.close(() => resolve()));
  }

  /** A snapshot of the counters (for the `statistics` command). */
  stats(): NgServerStats {
    return structuredClone(this.counters);
  }

  /** How long requests wait for their turn, and how many were late (see admission.ts). */
  admissionStats(): AdmissionStats {
    return this.admission.stats();
  }

  private async onDatagram(msg: Buffer, rinfo: dgram.RemoteInfo, late: boolean): Promise<void> {
    let reply: Buffer | null;
    try {
      reply = await this.handleDatagram(msg, { address: rinfo.address, port: rinfo.port }, late);
    } catch (err) {
      // handleDatagram already converts every failure into a reply; this is the last line of defence.
      this.logger.error({ err, remote: rinfo.address }, 'ng datagram handling failed');
      return;
    }
    if (!reply || this.closed) return;
    this.socket.send(reply, rinfo.port, rinfo.address, (err) => {
      if (err) this.logger.warn({ err, remote: `${rinfo.address}:${rinfo.port}` }, 'ng reply not sent');
    });
  }

  /**
   * Transport-independent core: one `<cookie> <dict>` message in, the reply message out, or null when it
   * has to be dropped (no cookie). Never throws for bad input. `late`: it waited too long (admission.ts).
   */
  async handleDatagram(msg: Buffer, remote: { address: string; port: number }, late = false): Promise<Buffer | null> {
    this.counters.received++;
    const space = msg.indexOf(SPACE);
    if (space <= 0) {
      this.counters.dropped++;
      this.logger.warn(
        { remote: `${remote.address}:${remote.port}`, data: msg.subarray(0, 64).toString('latin1') },
        'received invalid ng data (no cookie), dropped',
      );
      return null;
    }
    const cookie = msg.subarray(0, space);
    const body = msg.subarray(space + 1);
    // latin1: a lossless byte -> char mapping, so distinct cookies stay distinct keys.
    const key = cookie.toString('latin1');
    const { reply, outcome } = await this.cache.run(key, async () => {
      let out: Outcome;
      try {
        out = await this.processBody(body, remote, late);
      } catch (err) {
        // A bug in decoding itself: still answer, never stay silent.
        this.counters.errors++;
        this.counters.internalErrors++;
        this.logger.error({ err, remote: `${remote.address}:${remote.port}` }, 'ng message processing failed');
        out = { reply: errorDict(ERR_INTERNAL), encoding: body[0] === 0x7b ? 'json' : 'bencode' };
      }
      const encoded = this.encodeReply(out);
      return Buffer.concat([cookie, Buffer.from(' '), encoded]);
    });
    if (outcome !== 'computed') {
      this.counters.duplicates++;
      this.logger.info({ remote: `${remote.address}:${remote.port}`, cookie: key, outcome }, 'detected command as a duplicate');
    }
    return reply;
  }

  private encodeReply(out: Outcome): Buffer {
    try {
      return out.encoding === 'json' ? encodeJsonDict(out.reply) : encode(out.reply);
    } catch (err) {
      // The handler produced something the wire format cannot carry: a bug, but the client still gets an answer.
      this.counters.internalErrors++;
      this.counters.errors++;
      this.logger.error({ err }, 'ng reply could not be encoded');
      const fallback = errorDict(ERR_INTERNAL);
      return out.encoding === 'json' ? encodeJsonDict(fallback) : encode(fallback);
    }
  }

  private decodeFailure(reason: string, remote: { address: string }, encoding: 'bencode' | 'json', detail: string): Outcome {
    this.counters.errors++;
    this.counters.decodeErrors++;
    this.proxyStats(remote.address).errors++;
    this.logger.warn({ remote: remote.address, reason, detail }, 'ng protocol error');
    return { reply: errorDict(reason), encoding };
  }

  private async processBody(body: Buffer, remote: { address: string; port: number }, late: boolean): Promise<Outcome> {
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

    const callIdValue = getValue(request, 'call-id');
    const callId = Buffer.isBuffer(callIdValue) || typeof callIdValue === 'string' ? callIdValue.toString() : undefined;
    const logFields = { 'call-id': callId, command, remote: `${remote.address}:${remote.port}` };
    this.logger.info(logFields, 'received ng command');

    const context: NgRequestContext = { remote: { address: remote.address, port: remote.port }, encoding };
    const started = process.hrtime.bigint();
    let reply: NgDict;
    let failed = false;
    const shed = late ? shedReply(command, request) : null;
    try {
      if (shed) {
        failed = true;
        this.logger.info({ ...logFields }, 'ng command refused: it waited too long (overload)');
      }
      reply = shed ?? (await this.handler(request, context));
      if (!Object.prototype.hasOwnProperty.call(reply, 'result')) reply['result'] = 'ok';
      else if (reply['result'] === 'error' || (Buffer.isBuffer(reply['result']) && reply['result'].toString() === 'error')) failed = true;
    } catch (err) {
      failed = true;
      if (err instanceof NgError) {
        reply = errorDict(err.reason);
        this.logger.warn({ ...logFields, reason: err.reason }, 'ng command failed');
      } else {
        this.counters.internalErrors++;
        reply = errorDict(ERR_INTERNAL);
        this.logger.error({ ...logFields, err }, 'ng command threw an unexpected exception');
      }
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.record(command, remote.address, seconds, failed);
    this.logger.info({ ...logFields, elapsed: seconds, result: failed ? 'error' : 'ok' }, 'replying to ng command');
    return { reply, encoding };
  }

  private proxyStats(address: string): NgProxyStats {
    const proxies = this.counters.proxies;
    let p = proxies[address];
    if (!p) {
      const name = Object.keys(proxies).length >= MAX_TRACKED_PROXIES ? OTHER : address;
      p = proxies[name] ??= { commands: Object.create(null) as Record<string, number>, errors: 0 };
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
    if (failed) {
      c.errors++;
      proxy.errors++;
      this.counters.errors++;
    }
  }
}
