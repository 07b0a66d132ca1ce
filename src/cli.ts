/** The `ngrelay` command: rtpengine's command line, a relay that runs until SIGTERM/SIGINT. */
import { writeFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { parseInvocation, usage, versionText, type Invocation } from './config';
import { checkInterfacesAreLocal } from './config/local-addresses';
import { ConfigError } from './errors';
import { createLogger } from './logger';
import { Relay } from './relay';
import { sdNotify } from './sd-notify';
import { giveTo, ownerFor } from './recording/file-owner';

export async function main(argv: string[]): Promise<void> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ngrelay: ${err.message.split('\n')[0]}\n`);
      process.exit(2);
    }
    throw err;
  }
  if (invocation.action === 'help') {
    process.stdout.write(usage());
    return;
  }
  if (invocation.action === 'version') {
    process.stdout.write(`${versionText()}\n`);
    return;
  }
  const { config, warnings } = invocation;
  const logger = createLogger({ level: config.logLevel, stderr: config.logStderr, timestamps: config.logTimestamps });
  for (const warning of warnings) logger.warn(warning);
  let relay: Relay;
  try {
    await checkInterfacesAreLocal(config.interfaces);
    relay = await Relay.start(config, { logger });
  } catch (err) {
    logger.fatal({ err }, 'cannot start');
    process.stderr.write(`ngrelay: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  }
  if (config.pidfile) {
    writeFileSync(config.pidfile, `${process.pid}\n`);
    // In rtpengine's /run/rtpengine (owner rtpengine) the pidfile becomes rtpengine's, like the spool files.
    giveTo(config.pidfile, ownerFor(dirname(config.pidfile)));
  }
  // systemd (Type=notify): READY=1 once ng and media are up and the signal handlers are in place (below);
  // the pidfile is written first, as systemd may read it on READY.
  const notify = (fields: string[]): void => {
    try {
      sdNotify(fields);
    } catch (err) {
      logger.warn({ err }, 'systemd notification failed');
    }
  };
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    notify(['STOPPING=1']);
    relay
      .close()
      .catch((err: unknown) => logger.error({ err }, 'error while shutting down'))
      .finally(() => {
        if (config.pidfile) {
          try {
            unlinkSync(config.pidfile);
          } catch {
            /* already gone */
          }
        }
        logger.flush();
        process.exit(0);
      });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  // rtpengine's other signals: HUP keeps running (logs go to stdout/stderr, nothing to reopen), USR1/USR2
  // raise/lower the log level by one. Our own USR1 listener also keeps Node from opening its inspector.
  process.on('SIGHUP', () => logger.info({ signal: 'SIGHUP' }, 'SIGHUP received; still running'));
  const shiftLevel = (signal: string, by: number): void => {
    logger.warn({ signal, logLevel: relay.logLevel.shift(by) }, 'log level changed');
  };
  process.on('SIGUSR1', () => shiftLevel('SIGUSR1', 1));
  process.on('SIGUSR2', () => shiftLevel('SIGUSR2', -1));
  notify(['READY=1', `MAINPID=${process.pid}`, `STATUS=ng on ${config.listenNg.address}:${config.listenNg.port}`]);
}

// `node dist/cli.js` (npm start) runs the relay; `bin/ngrelay` and embedders call main() themselves.
if (require.main === module) void main(process.argv.slice(2));
