/**
 * The reference: Debian's rtpengine 10.5 (`rtpengine-daemon`), userspace only (`--table=-1`), on loopback.
 * If it is missing the tests install it (scripts/install-debian-packages.sh, as root), waiting out a busy dpkg lock; if that is
 * impossible they fail with a message saying what to do. They never skip.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { startNgProcess } from './process';
import { RelayOptions, RelayUnderTest, LOOPBACK, relayArgs, relayUnderTest } from './relay';

export const RTPENGINE_BIN = '/usr/bin/rtpengine';
export const RTPENGINE_PACKAGE = 'rtpengine-daemon';
/** The version line the compatibility claims are made against. */
export const RTPENGINE_VERSION_PREFIX = '10.5.';

interface CommandResult {
  code: number | null;
  output: string;
}

function run(command: string, args: string[], timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    let output = '';
    const collect = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    const timer = setTimeout(() => {
      output += `\n[timed out after ${timeoutMs} ms; sent SIGKILL to pid ${String(child.pid)}]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, output: `${output}\n[spawn error] ${err.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The project's one installer of Debian packages (waits out a busy dpkg lock, refreshes the lists once). */
const INSTALLER = path.resolve(__dirname, '..', '..', 'scripts', 'install-debian-packages.sh');

async function aptInstall(deadline: number): Promise<CommandResult> {
  return run('bash', [INSTALLER, RTPENGINE_PACKAGE], Math.max(10_000, deadline - Date.now()));
}

let versionChecked: string | undefined;

/**
 * Makes sure /usr/bin/rtpengine exists and is 10.5.x; installs the package if it is missing.
 * Throws (never skips) with instructions when that cannot be done.
 */
export async function ensureRtpengineInstalled(timeoutMs = 540_000): Promise<string> {
  if (versionChecked) return versionChecked;
  if (!existsSync(RTPENGINE_BIN)) {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      throw new Error(
        `${RTPENGINE_BIN} is missing and the tests are not running as root, so they cannot install it. ` +
          `Run \`apt-get install -y ${RTPENGINE_PACKAGE}\` as root (Debian 12), then rerun the tests.`,
      );
    }
    const result = await aptInstall(Date.now() + timeoutMs);
    if (result.code !== 0 || !existsSync(RTPENGINE_BIN)) {
      throw new Error(
        `Installing ${RTPENGINE_PACKAGE} failed (apt-get exit ${String(result.code)}); the compatibility tests need ` +
          `rtpengine 10.5 at ${RTPENGINE_BIN}. apt-get said:\n${result.output.slice(-4000)}`,
      );
    }
  }
  const version = await run(RTPENGINE_BIN, ['--version'], 10_000);
  const match = /Version:\s*(\S+)/.exec(version.output);
  const found = match?.[1] ?? '';
  if (!found.startsWith(RTPENGINE_VERSION_PREFIX)) {
    throw new Error(
      `${RTPENGINE_BIN} is not rtpengine ${RTPENGINE_VERSION_PREFIX}x (it says ${JSON.stringify(version.output.trim())}); ` +
        `the compatibility tests compare against Debian 12's ${RTPENGINE_PACKAGE} 10.5.`,
    );
  }
  versionChecked = found;
  return found;
}

/** Installs rtpengine if needed, starts it with `--config-file=none --table=-1` on loopback and waits for ping. */
export async function startRtpengine(options: RelayOptions): Promise<RelayUnderTest> {
  await ensureRtpengineInstalled();
  const proc = await startNgProcess(
    { name: 'rtpengine', command: RTPENGINE_BIN, args: relayArgs(options) },
    { host: LOOPBACK, port: options.ngPort, deadlineMs: 15_000 },
  );
  return relayUnderTest('rtpengine', options, proc);
}
