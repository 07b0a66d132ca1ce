/**
 * rtpengine's `--listen-cli` over TCP, as rtpengine-ctl speaks it: the client sends one command line ending
 * in "\n", reads until the server closes the connection. One command per connection, like rtpengine.
 * A line longer than MAX_LINE, or a connection closed before its newline, still gets its answer (the words
 * received so far); a client that sends nothing is closed after IDLE_MS.
 */
import net from 'node:net';
import type { Logger } from '../logger';
import type { CliCommands } from './cli-commands';
import { listenTcp } from './tcp-listen';

const MAX_LINE = 4096;
const IDLE_MS = 10_000;

export interface CliServerOptions {
  address: string;
  /** 0 = pick a free port (tests). */
  port: number;
  commands: CliCommands;
  logger: Logger;
}

export class CliServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly options: CliServerOptions) {
    if (net.isIP(options.address) === 0) throw new TypeError(`listen address is not an IP literal: ${options.address}`);
    this.server = net.createServer((socket) => this.onConnection(socket));
    this.server.on('error', (err) => options.logger.error({ err }, 'cli listener error'));
  }

  listen(): Promise<{ address: string; port: number }> {
    return listenTcp(this.server, this.options.address, this.options.port).then((a) => {
      this.options.logger.info(a, 'cli listening');
      return a;
    });
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', (err) => this.options.logger.debug({ err }, 'cli connection error'));
    socket.setTimeout(IDLE_MS, () => socket.destroy());
    let received: Buffer = Buffer.alloc(0);
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      const nl = received.indexOf(0x0a);
      // latin1 both ways: call-ids are byte strings inside (one char per byte, src/ng/byte-string.ts), so
      // `terminate <call-id>` finds a call whose id is not UTF-8 and `list sessions` prints its bytes back.
      const line = (nl >= 0 ? received.subarray(0, nl) : received.subarray(0, MAX_LINE)).toString('latin1');
      let reply: string;
      try {
        reply = this.options.commands.run(line);
      } catch (err) {
        // A bug in a command must not take the relay down; the operator sees that it failed.
        this.options.logger.error({ err, command: line }, 'cli command failed');
        reply = 'Internal error while processing command\n';
      }
      this.options.logger.info({ command: line, remote: `${socket.remoteAddress}:${socket.remotePort}` }, 'cli command');
      socket.end(Buffer.from(reply, 'latin1'));
    };
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      received = Buffer.concat([received, chunk]);
      if (received.includes(0x0a) || received.length >= MAX_LINE) answer();
    });
    socket.on('end', () => {
      if (received.length > 0) answer();
      else socket.end();
    });
  }
}
