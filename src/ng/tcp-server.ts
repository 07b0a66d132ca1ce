/**
 * The ng protocol over TCP (rtpengine's `--listen-tcp-ng`): a stream of `<cookie><SP><bencode dict>`
 * messages back to back with no other framing; the bencode value's own length ends a message. Each reply is
 * written as `<cookie><SP><dict>` in request order (a pipelining client reads them in the order it sent).
 * Everything past framing is the shared NgProcessor's, so the reply bytes are those of UDP.
 *
 * JSON cannot be delimited in a stream, so (like rtpengine) TCP carries bencode only. Unlike rtpengine 10.5,
 * which then waits forever, bytes that can never become a bencode value get an error reply and the
 * connection is closed: the stream has lost its framing. Bounds: a cookie longer than MAX_COOKIE or a
 * message longer than MAX_MESSAGE ends the connection the same way.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Logger } from '../logger';
import { BencodeError, bencodeLength, encode } from './bencode';
import { ngDict } from './dict';
import { ERR_BAD_BENCODE, type NgProcessor } from './processor';
import { listenTcp } from '../control/tcp-listen';

const SPACE = 0x20;
const MAX_COOKIE = 256;
/** rtpengine's UDP limit is 64 KiB; a TCP message may carry a bigger SDP, but not without bound. */
const MAX_MESSAGE = 1024 * 1024;

export interface NgTcpServerOptions {
  address: string;
  port: number;
  processor: NgProcessor;
  logger: Logger;
}

export class NgTcpServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: NgTcpServerOptions) {
    if (net.isIP(options.address) === 0) throw new TypeError(`listen address is not an IP literal: ${options.address}`);
    this.server = net.createServer((socket) => this.onConnection(socket));
    this.server.on('error', (err) => options.logger.error({ err }, 'ng tcp listener error'));
  }

  async listen(): Promise<{ address: string; port: number }> {
    const a = await listenTcp(this.server, this.options.address, this.options.port);
    this.options.logger.info(a, 'ng tcp control listening');
    return a;
  }

  /**
   * An unsolicited message (rtpengine's notify_ng_tcp_clients, `--dtmf-log-ng-tcp`) to every connected
   * client: `<cookie><SP><body>` with a fresh 16-hex-digit cookie each, as rtpengine sends it. One write per
   * client, so it never lands inside a reply.
   */
  notifyClients(body: Buffer): void {
    for (const socket of this.sockets) {
      if (socket.destroyed) continue;
      socket.write(Buffer.concat([Buffer.from(`${randomBytes(8).toString('hex')} `), body]));
    }
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    const remote = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport: 'tcp' as const };
    const log = this.options.logger;
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => log.debug({ err }, 'ng tcp connection error'));
    let pending: Buffer = Buffer.alloc(0);
    // Replies leave in request order even when a later command finishes first.
    let chain: Promise<void> = Promise.resolve();
    const send = (reply: Promise<Buffer | null>): void => {
      chain = chain.then(async () => {
        const bytes = await reply;
        if (bytes && !socket.destroyed) socket.write(bytes);
      });
    };
    const giveUp = (cookie: Buffer, detail: string): void => {
      log.warn({ remote: `${remote.address}:${remote.port}`, detail }, 'ng tcp stream unframed, closing');
      const body = encode(ngDict([['result', 'error'], ['error-reason', ERR_BAD_BENCODE]]));
      send(Promise.resolve(Buffer.concat([cookie, Buffer.from(' '), body])));
      pending = Buffer.alloc(0);
      void chain.then(() => socket.end());
    };
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        const space = pending.indexOf(SPACE);
        if (space < 0) {
          if (pending.length > MAX_COOKIE) giveUp(Buffer.from('-'), 'no cookie');
          return;
        }
        const cookie = pending.subarray(0, space);
        if (space === 0 || space > MAX_COOKIE) return giveUp(space === 0 ? Buffer.from('-') : Buffer.from(cookie), 'bad cookie');
        let length: number | null;
        try {
          length = bencodeLength(pending.subarray(space + 1));
        } catch (err) {
          if (!(err instanceof BencodeError)) throw err;
          return giveUp(Buffer.from(cookie), err.message);
        }
        if (length === null) {
          if (pending.length > MAX_MESSAGE) giveUp(Buffer.from(cookie), 'message too long');
          return;
        }
        const end = space + 1 + length;
        // Copy: the processor's decoded values point into the message, and `pending` is reused.
        const message = Buffer.from(pending.subarray(0, end));
        pending = pending.subarray(end);
        send(this.options.processor.handleMessage(message, remote));
        if (pending.length === 0) return;
      }
    });
  }
}
