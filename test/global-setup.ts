/**
 * Runs once before the suite: installs the Debian packages the tests use (scripts/install-test-deps.sh),
 * so a fresh machine passes and no test has to skip. A failure here stops the run with apt's message.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const script = path.resolve(__dirname, '..', 'scripts', 'install-test-deps.sh');
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) {
    throw new Error(`installing the test dependencies failed (${script}):\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`);
  }
}
