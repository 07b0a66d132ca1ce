/**
 * A raw ng client over dgram for byte-exact and malformed cases: `<cookie><space><bencode>` out, the reply
 * datagram (and its decoded dict) back. Replies are matched by cookie; a request is retransmitted with the
 * same cookie until a reply arrives or its deadline passes, like Kamailio's module does.
 */
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { BDict, BInputDict, BValue, decode, encode, isDict, PlainValue, toPlain } from './bencode';

export interface NgReply {
  cookie: string;
  /** The whole reply datagram, byte for byte. */
  datagram: Buffer;
  /** The bytes after `<cookie><space>`. */
  body: Buffer;
  /** The decoded body; a non-dict or undecodable body makes the request fail with a message saying so. */
  dict: BDict;
  /** The decoded body with Buffers as text, for readable assertions. */
  plain: { [key: string]: PlainValue };
}

export interface RequestTiming {
  /** Resend the same datagram this often while no reply has come (0 = never resend). */
  retransmitMs?: number;
  /** Give up after this long. */
  deadlineMs?: number;
}

const DEFAULT_TIMING: Required<RequestTiming> = { retransmitMs: 500, deadlineMs: 5000 };

interface Waiter {
  resolve: (datagram: Buffer) => void;
}

export class NgRawClient {
  private readonly socket: dgram.Socket;
  private readonly cookiePrefix = randomBytes(4).toString('hex');
  private sequence = 0;
  /** Replies not yet taken, per cookie (a retransmitted request can get more than one). */
  private readonly inbox = new Map<string, Buffer[]>();
  private readonly waiters = new Map<string, Waiter[]>();
  /** Datagrams without a cookie separator: kept so a test can show them. */
  readonly unparsable: Buffer[] = [];

  private constructor(
    readonly host: string,
    readonly port: number,
    socket: dgram.Socket,
  ) {
    this.socket = socket;
    socket.on('message', (datagram) => this.onDatagram(datagram));
  }

  /**
   * `recvBufferSize`: SO_RCVBUF for a client that takes many replies at once (load generators).
   * `bindAddress`: where the client's socket is bound; loopback unless given (ngrelay-bench, for a relay
   * on another address).
   */
  static async open(port: number, host = '127.0.0.1', recvBufferSize?: number, bindAddress?: string): Promise<NgRawClient> {
    const socket = dgram.createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', recvBufferSize });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, bindAddress ?? (host.includes(':') ? '::1' : '127.0.0.1'), () => {
        socket.off('error', reject);
        resolve();
      });
    });
    return new NgRawClient(host, port, socket);
  }

  newCookie(): string {
    this.sequence += 1;
    return `${this.cookiePrefix}_${this.sequence}`;
  }

  /** Builds `<cookie><space><body>`; the body is bencoded unless given as bytes. */
  static frame(cookie: string, body: BInputDict | Buffer): Buffer {
    const bytes = Buffer.isBuffer(body) ? body : encode(body);
    return Buffer.concat([Buffer.from(`${cookie} `, 'latin1'), bytes]);
  }

  /** Sends a dict (or raw body bytes) under a fresh cookie and waits for the decoded reply. */
  async request(body: BInputDict | Buffer, timing: RequestTiming = {}): Promise<NgReply> {
    const cookie = this.newCookie();
    return this.exchange(cookie, NgRawClient.frame(cookie, body), timing);
  }

  /**
   * Sends a complete datagram (which must start with `cookie` + space, unless the test wants a reply to
   * something malformed there too) and waits for the reply carrying `cookie`, resending on the way.
   */
  async exchange(cookie: string, datagram: Buffer, timing: RequestTiming = {}): Promise<NgReply> {
    const { retransmitMs, deadlineMs } = { ...DEFAULT_TIMING, ...timing };
    const pending = this.nextReply(cookie, deadlineMs);
    this.sendDatagram(datagram);
    const resend = retransmitMs > 0 ? setInterval(() => this.sendDatagram(datagram), retransmitMs) : undefined;
    try {
      const reply = await pending;
      return reply;
    } finally {
      if (resend) clearInterval(resend);
      // Late replies to our own retransmits are not news; drop them so they cannot answer a later wait.
      setTimeout(() => this.inbox.delete(cookie), Math.max(retransmitMs, 50) * 2).unref();
    }
  }

  /** Fire and forget; pair with nextReply() to observe each reply separately. */
  sendDatagram(datagram: Buffer): void {
    this.socket.send(datagram, this.port, this.host);
  }

  /** The next reply that carries `cookie` (already received or still to come), or an error at the deadline. */
  nextReply(cookie: string, deadlineMs = DEFAULT_TIMING.deadlineMs): Promise<NgReply> {
    const queued = this.inbox.get(cookie);
    const ready = queued?.shift();
    if (ready) return Promise.resolve(parseReply(cookie, ready));
    return new Promise<NgReply>((resolve, reject) => {
      const waiter: Waiter = {
        resolve: (datagram) => {
          clearTimeout(timer);
          try {
            resolve(parseReply(cookie, datagram));
          } catch (err) {
            reject(err as Error);
          }
        },
      };
      const timer = setTimeout(() => {
        const list = this.waiters.get(cookie) ?? [];
        this.waiters.set(
          cookie,
          list.filter((w) => w !== waiter),
        );
        reject(new Error(`no ng reply from ${this.host}:${this.port} for cookie ${cookie} within ${deadlineMs} ms`));
      }, deadlineMs);
      const list = this.waiters.get(cookie) ?? [];
      list.push(waiter);
      this.waiters.set(cookie, list);
    });
  }

  /** Whether another reply for `cookie` arrives within `waitMs` (used to prove there is none). */
  async replyArrives(cookie: string, waitMs: number): Promise<boolean> {
    try {
      await this.nextReply(cookie, waitMs);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.socket.close();
  }

  /** The local port replies come to. */
  localPort(): number {
    return this.socket.address().port;
  }

  private onDatagram(datagram: Buffer): void {
    const space = datagram.indexOf(0x20);
    if (space <= 0) {
      this.unparsable.push(datagram);
      return;
    }
    const cookie = datagram.toString('latin1', 0, space);
    const waiter = this.waiters.get(cookie)?.shift();
    if (waiter) {
      waiter.resolve(datagram);
      return;
    }
    const queued = this.inbox.get(cookie) ?? [];
    queued.push(datagram);
    this.inbox.set(cookie, queued);
  }
}

function parseReply(cookie: string, datagram: Buffer): NgReply {
  const body = datagram.subarray(cookie.length + 1);
  let value: BValue;
  try {
    // The reply comes in the request's encoding: JSON when the request was JSON.
    value = body[0] === 0x7b /* { */ ? fromJson(JSON.parse(body.toString('utf8')) as unknown) : decode(body);
  } catch (err) {
    throw new Error(`ng reply for ${cookie} is not valid bencode/JSON (${(err as Error).message}): ${JSON.stringify(body.toString('latin1'))}`);
  }
  if (!isDict(value)) {
    throw new Error(`ng reply for ${cookie} is not a dict: ${JSON.stringify(body.toString('latin1'))}`);
  }
  const plain = toPlain(value) as { [key: string]: PlainValue };
  return { cookie, datagram, body, dict: value, plain };
}

/** JSON values in the bencode model: strings become Buffers so both encodings read alike. */
function fromJson(value: unknown): BValue {
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map(fromJson);
  if (value !== null && typeof value === 'object') {
    const dict: BDict = Object.create(null) as BDict;
    for (const [key, item] of Object.entries(value)) dict[key] = fromJson(item);
    return dict;
  }
  throw new Error(`JSON value ${JSON.stringify(value)} has no bencode equivalent`);
}

/** A text field of a reply dict, or undefined when missing or not a string. */
export function textOf(dict: BDict, key: string): string | undefined {
  const value = dict[key];
  return Buffer.isBuffer(value) ? value.toString('utf8') : undefined;
}
