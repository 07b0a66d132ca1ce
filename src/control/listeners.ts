/**
 * Starts the control listeners the config asks for besides --listen-ng: --listen-cli, --listen-tcp-ng,
 * --listen-http and --listen-https. All ng transports share the relay's one NgProcessor (one cookie cache,
 * one set of counters). If one cannot start, those already started are closed and the error is thrown.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { RelayConfig } from '../config/types';
import { ConfigError } from '../errors';
import type { Logger } from '../logger';
import type { NgProcessor } from '../ng/processor';
import { NgTcpServer } from '../ng/tcp-server';
import type { HttpControl } from '../http/http-server';
import type { MetricsContext, createMetricsRegistry } from '../http/metrics';
import { CliCommands, type CliContext } from './cli-commands';
import { CliServer } from './cli-server';
import { listenTcp } from './tcp-listen';

export interface Listener {
  /** What it serves and where, for logs and tests ("cli", "tcp-ng", "http", "https"). */
  readonly kind: 'cli' | 'tcp-ng' | 'http' | 'https';
  readonly address: { address: string; port: number };
  close(): Promise<void>;
  /** tcp-ng only: sends an unsolicited ng message to every connected client (see NgTcpServer.notifyClients). */
  notifyClients?(body: Buffer): void;
}

export interface ControlListenerDeps {
  processor: NgProcessor;
  logger: Logger;
  cli: CliContext;
  metrics: MetricsContext;
}

/**
 * The HTTP control modules, loaded only when --listen-http or --listen-https asks for them: they bring ws and
 * prom-client, ~10 MB of RSS that a relay serving ng over UDP alone does not need.
 */
function httpModules(): { HttpControl: typeof HttpControl; createMetricsRegistry: typeof createMetricsRegistry } {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { HttpControl: control } = require('../http/http-server') as typeof import('../http/http-server');
  const { createMetricsRegistry: registry } = require('../http/metrics') as typeof import('../http/metrics');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { HttpControl: control, createMetricsRegistry: registry };
}

type ListenConfig = Pick<RelayConfig, 'listenCli' | 'listenTcpNg' | 'listenHttp' | 'listenHttps' | 'httpsCert' | 'httpsKey'>;

export async function startControlListeners(config: ListenConfig, deps: ControlListenerDeps): Promise<Listener[]> {
  const started: Listener[] = [];
  const cli = new CliCommands(deps.cli);
  try {
    if (config.listenCli) {
      const server = new CliServer({ ...config.listenCli, commands: cli, logger: deps.logger });
      started.push({ kind: 'cli', address: await server.listen(), close: () => server.close() });
    }
    if (config.listenTcpNg) {
      const server = new NgTcpServer({ ...config.listenTcpNg, processor: deps.processor, logger: deps.logger });
      started.push({
        kind: 'tcp-ng',
        address: await server.listen(),
        close: () => server.close(),
        notifyClients: (body) => server.notifyClients(body),
      });
    }
    const web = config.listenHttp || config.listenHttps ? httpModules() : null;
    const metrics = web ? web.createMetricsRegistry(deps.metrics) : null;
    const serve = async (kind: 'http' | 'https', where: { address: string; port: number }, server: http.Server | https.Server) => {
      const control = new web!.HttpControl(server, { processor: deps.processor, cli, metrics: metrics!, logger: deps.logger });
      const address = await listenTcp(server, where.address, where.port);
      deps.logger.info({ ...address, kind }, 'http control listening');
      started.push({
        kind,
        address,
        close: () =>
          new Promise<void>((resolve) => {
            control.close();
            server.close(() => resolve());
          }),
      });
    };
    if (config.listenHttp) await serve('http', config.listenHttp, http.createServer());
    if (config.listenHttps) {
      if (!config.httpsCert || !config.httpsKey) throw new ConfigError('--listen-https needs --https-cert and --https-key');
      const read = (path: string, option: string): Buffer => {
        try {
          return readFileSync(path);
        } catch (err) {
          throw new ConfigError(`cannot read ${option} ${path}: ${err instanceof Error ? err.message : String(err)}`);
        }
      };
      const server = https.createServer({ cert: read(config.httpsCert, '--https-cert'), key: read(config.httpsKey, '--https-key') });
      await serve('https', config.listenHttps, server);
    }
  } catch (err) {
    await Promise.all(started.map((l) => l.close()));
    throw err;
  }
  return started;
}
