/**
 * rtpengine's `--listen-http` / `--listen-https` (daemon/websocket.c, docs/http_websocket_support.md):
 *   GET  /ping                 "pong\n"
 *   GET  /metrics              Prometheus text (metrics.ts)
 *   GET  /cli/<cmd>            rtpengine-ctl's text, '+' for spaces (`/cli/list+totals`)
 *   POST /ng                   `<cookie> <dict>`, content-type application/x-rtpengine-ng; the UDP reply bytes
 *   POST /ng-plain             `<dict>` without cookie, content-type application/x-rtpengine-ng or application/json
 *   WebSocket subprotocols     ng.rtpengine.com, ng-plain.rtpengine.com, cli.rtpengine.com, echo.rtpengine.com
 * Anything else is rtpengine's `404 not found`. A /ng body without cookie gets rtpengine's status 600 "error".
 * Bodies and WebSocket messages are bounded by MAX_BODY; more is refused (413 / close 1009), never buffered.
 */
import type http from 'node:http';
import type https from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger';
import type { CliCommands } from '../control/cli-commands';
import { encode } from '../ng/bencode';
import { ngDict } from '../ng/dict';
import type { NgProcessor, NgRemote } from '../ng/processor';

const MAX_BODY = 1024 * 1024;
const MAX_DRAIN = 64 * MAX_BODY;
const CT_NG = 'application/x-rtpengine-ng';
const CT_JSON = 'application/json';
const CT_TEXT = 'text/plain';
const WS_PROTOCOLS = ['ng.rtpengine.com', 'ng-plain.rtpengine.com', 'cli.rtpengine.com', 'echo.rtpengine.com'] as const;
/** Sent on ng.rtpengine.com for a message without cookie (UDP drops it; a connection can be told). */
const ERR_NO_COOKIE = 'Invalid data (no cookie)';

export interface HttpHandlerOptions {
  processor: NgProcessor;
  cli: CliCommands;
  metrics: Registry;
  logger: Logger;
}

/** Body too large: the request is refused before more of it is read. */
class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

/**
 * The request body, or BodyTooLargeError past MAX_BODY. The excess is read and dropped (not kept) so the
 * client gets to read the 413 instead of a reset; past MAX_DRAIN the connection is cut.
 */
function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAIN) req.destroy();
      else if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on('end', () => (size > MAX_BODY ? reject(new BodyTooLargeError(`body over ${MAX_BODY} bytes`)) : resolve(Buffer.concat(chunks))));
    req.on('error', reject);
  });
}

function contentType(req: http.IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function reply(res: http.ServerResponse, status: number, type: string, body: string | Buffer): void {
  const headers = { 'content-type': type, 'content-length': Buffer.byteLength(body) };
  // 600 is rtpengine's own status, sent without a reason phrase.
  if (status === 600) res.writeHead(status, '', headers);
  else res.writeHead(status, headers);
  res.end(body);
}

function remoteOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }, transport: 'http' | 'ws'): NgRemote {
  return { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0, transport };
}

/** Serves HTTP requests and WebSocket upgrades for one http or https server. */
export class HttpControl {
  private readonly wss: WebSocketServer;

  constructor(
    private readonly server: http.Server | https.Server,
    private readonly options: HttpHandlerOptions,
  ) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: MAX_BODY,
      handleProtocols: (protocols) => WS_PROTOCOLS.find((p) => protocols.has(p)) ?? false,
    });
    server.on('request', (req, res) => {
      this.onRequest(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url }, 'http request failed');
        if (!res.headersSent) reply(res, 500, CT_TEXT, 'internal error\n');
        else res.destroy();
      });
    });
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onWebSocket(ws, req));
    });
    // A malformed request line or header: node answers 400 itself once we tell it to close the socket.
    server.on('clientError', (err, socket) => {
      options.logger.debug({ err }, 'malformed http request');
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections?.();
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const path = url.split('?')[0]!;
    const { processor, logger } = this.options;
    if (req.method === 'GET' && path === '/ping') return reply(res, 200, CT_TEXT, 'pong\n');
    if (req.method === 'GET' && path === '/metrics') {
      return reply(res, 200, this.options.metrics.contentType, await this.options.metrics.metrics());
    }
    if (req.method === 'GET' && path.startsWith('/cli/')) {
      let command: string;
      try {
        command = decodeURIComponent(path.slice('/cli/'.length).replace(/\+/g, ' '));
      } catch {
        return reply(res, 400, CT_TEXT, 'bad command encoding\n');
      }
      // Call-ids are byte strings inside (src/ng/byte-string.ts): the command's UTF-8 bytes one char per
      // byte in, the reply's bytes out as they are.
      const bytes = Buffer.from(command, 'utf8').toString('latin1');
      return reply(res, 200, CT_TEXT, Buffer.from(this.options.cli.run(bytes), 'latin1'));
    }
    const type = contentType(req);
    const ng = req.method === 'POST' && path === '/ng' && type === CT_NG;
    const plain = req.method === 'POST' && path === '/ng-plain' && (type === CT_NG || type === CT_JSON);
    if (!ng && !plain) {
      req.resume();
      return reply(res, 404, CT_TEXT, 'not found\n');
    }
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return reply(res, 413, CT_TEXT, 'request body too large\n');
      throw err;
    }
    const remote = remoteOf(req.socket, 'http');
    if (plain) return reply(res, 200, type, await processor.handlePlain(body, remote));
    const out = await processor.handleMessage(body, remote);
    if (out === null) {
      logger.warn({ remote: `${remote.address}:${remote.port}` }, 'http ng body without cookie');
      return reply(res, 600, CT_TEXT, 'error\n');
    }
    return reply(res, 200, CT_NG, out);
  }

  private onWebSocket(ws: WebSocket, req: http.IncomingMessage): void {
    const protocol = ws.protocol;
    const remote = remoteOf(req.socket, 'ws');
    const { processor, cli, logger } = this.options;
    if (!(WS_PROTOCOLS as readonly string[]).includes(protocol)) {
      // rtpengine serves no default protocol; say why instead of ignoring every message.
      ws.close(1002, 'unsupported subprotocol');
      return;
    }
    ws.on('error', (err) => logger.debug({ err }, 'websocket error'));
    // Replies leave in message order, as on a TCP connection.
    let chain: Promise<void> = Promise.resolve();
    ws.on('message', (data: RawData, isBinary: boolean) => {
      const message = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      const answer = async (): Promise<Buffer | string> => {
        switch (protocol) {
          case 'ng.rtpengine.com':
            return (await processor.handleMessage(message, remote)) ?? encode(ngDict([['result', 'error'], ['error-reason', ERR_NO_COOKIE]]));
          case 'ng-plain.rtpengine.com':
            return processor.handlePlain(message, remote);
          case 'cli.rtpengine.com':
            // Call-ids are byte strings inside (src/ng/byte-string.ts): the frame's bytes are read one char per
            // byte, and the reply's bytes go back as the text frame a CLI client expects.
            return Buffer.from(cli.run(message.toString('latin1')), 'latin1').toString('utf8');
          default:
            return message;
        }
      };
      const pending = answer();
      chain = chain.then(async () => {
        const out = await pending;
        if (ws.readyState === ws.OPEN) ws.send(out, { binary: isBinary });
      }).catch((err: unknown) => logger.error({ err }, 'websocket message failed'));
    });
  }
}
