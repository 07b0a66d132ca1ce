/**
 * Runs once before the suite: installs the Debian packages the tests use (scripts/install-test-deps.sh),
 * so a fresh machine passes and no test has to skip. A failure here stops the run with apt's message.
 * On a fresh machine `npm ci` built the addon before clang and libbpf-dev were installed (the kernel fast
 * path is then compiled out, by design: `npm install` must work without them); once they are here the
 * addon is configured and built again (build:native re-runs the configure step: a plain build would keep
 * the cached "clang not found"), so the kernel-path tests test the real thing.
 */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..');

function run(command: string, args: string[], what: string, timeoutMs: number): void {
  const r = spawnSync(command, args, { cwd: ROOT, encoding: 'utf8', timeout: timeoutMs });
  if (r.status !== 0) throw new Error(`${what} failed:\n${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`);
}

export default function setup(): void {
  const script = path.join(ROOT, 'scripts', 'install-test-deps.sh');
  run('bash', [script], `installing the test dependencies (${script})`, 900_000);
  const bpfObject = path.join(ROOT, 'native', 'build', 'fastpath.bpf.o');
  if (!existsSync(bpfObject)) {
    run('npm', ['run', 'build:native'], 'rebuilding the addon with the kernel fast path (clang, libbpf-dev now installed)', 600_000);
    if (!existsSync(bpfObject)) throw new Error(`the addon was rebuilt but ${bpfObject} is still missing: see cmake-js's output`);
  }
}
