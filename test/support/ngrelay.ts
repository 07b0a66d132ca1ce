/**
 * The system under test: the real `ngrelay` binary (`node bin/ngrelay`, which loads dist/cli.js), started
 * with rtpengine's command line. dist/ is built by `npm test` (tsc) before vitest runs.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { runToExit, RunResult, startNgProcess } from './process';
import { RelayOptions, RelayUnderTest, LOOPBACK, relayArgs, relayUnderTest } from './relay';
import { testTable } from './kernel-table';

/** rtpengine's command line, with the kernel fast path as NGRELAY_TEST_TABLE asks (ngrelay only). */
function ngrelayArgs(options: RelayOptions): string[] {
  return relayArgs(options).map((a) => (a === '--table=-1' ? `--table=${testTable()}` : a));
}

export const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const NGRELAY_BIN = path.join(REPO_ROOT, 'bin', 'ngrelay');
const NGRELAY_CLI = path.join(REPO_ROOT, 'dist', 'cli.js');

function assertBuilt(): void {
  if (!existsSync(NGRELAY_CLI)) {
    throw new Error(
      `${NGRELAY_CLI} does not exist: build first (\`npm run build:ts\`, or run the tests with \`npm test\`, which builds).`,
    );
  }
}

/** Starts `node bin/ngrelay <rtpengine-style options>` from the repo root and waits until it answers ping. */
export async function startNgrelay(options: RelayOptions): Promise<RelayUnderTest> {
  assertBuilt();
  const proc = await startNgProcess(
    { name: 'ngrelay', command: process.execPath, args: [NGRELAY_BIN, ...ngrelayArgs(options)], cwd: REPO_ROOT },
    { host: LOOPBACK, port: options.ngPort, deadlineMs: 15_000 },
  );
  return relayUnderTest('ngrelay', options, proc);
}

/** Runs `node bin/ngrelay <args>` to completion, e.g. to see how it rejects a bad command line. */
export async function runNgrelay(args: string[], timeoutMs = 15_000): Promise<RunResult> {
  assertBuilt();
  return runToExit({
    name: 'ngrelay',
    command: process.execPath,
    args: [NGRELAY_BIN, ...args],
    cwd: REPO_ROOT,
    timeoutMs,
  });
}
