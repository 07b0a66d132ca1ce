/**
 * The README's quick start, as a new user runs it: a fresh clone of this repository, the first shell block
 * under "Quick start" run exactly as written, and a ping to 127.0.0.1:2223. The README once started nothing
 * for two sessions because every test started bin/ngrelay directly; this test reads the command from the
 * README itself, so the two cannot drift apart again.
 *
 * It also checks the setup contract around it: `npm ci` works with the committed lock, the clone stays
 * clean after the install, and `.ci/run` runs the README's test command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import { assertUdpPortFree } from '../support/process';
import { REPO_ROOT } from '../support/ngrelay';

/** The shell blocks under the README's "Quick start" heading, in order. */
function quickStartCommands(): string[] {
  const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Quick start');
  if (start < 0) throw new Error('README.md has no "## Quick start" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
}

const clones: string[] = [];
let started: ChildProcess | null = null;

/** A fresh clone of the committed HEAD (what a user gets), in a temp dir removed after the file. */
function freshClone(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ngrelay-quickstart-'));
  clones.push(dir);
  const clone = path.join(dir, 'ngrelay');
  const r = spawnSync('git', ['clone', '--quiet', REPO_ROOT, clone], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git clone failed: ${r.stderr}`);
  return clone;
}

function gitStatus(clone: string): string {
  return spawnSync('git', ['status', '--porcelain', '--ignored=no'], { cwd: clone, encoding: 'utf8' }).stdout;
}

/** Stops the shell we started and everything under it (its own process group, created by `detached`). */
async function stopGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise<void>((resolve) => child.once('close', () => resolve()));
  try {
    process.kill(-child.pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }, 5000);
  await gone;
  clearTimeout(timer);
}

afterAll(async () => {
  if (started) await stopGroup(started);
  for (const dir of clones) rmSync(dir, { recursive: true, force: true });
});

describe("the README's quick start, in a fresh clone", () => {
  it('shows exactly two commands: start the relay, run the tests (the one .ci/run runs)', () => {
    const commands = quickStartCommands();
    expect(commands).toHaveLength(2);
    const ciRun = readFileSync(path.join(REPO_ROOT, '.ci', 'run'), 'utf8');
    expect(ciRun).toContain(`${commands[1]!}\n`);
    expect(commands[1]).toMatch(/^npm ci\b/);
  });

  it('the first command installs and starts a relay that answers ping on 127.0.0.1:2223 and keeps running; the clone stays clean', async () => {
    const [startCommand] = quickStartCommands();
    await assertUdpPortFree('127.0.0.1', 2223);
    const clone = freshClone();
    let output = '';
    const child = spawn('bash', ['-c', startCommand!], { cwd: clone, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    started = child;
    child.stdout!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));
    child.stderr!.on('data', (c: Buffer) => (output = (output + c.toString()).slice(-20_000)));

    const client = await NgRawClient.open(2223);
    try {
      const deadline = Date.now() + 300_000;
      let pong = false;
      while (!pong && Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`"${startCommand!}" exited with ${child.exitCode} before answering ping:\n${output}`);
        try {
          const reply = await client.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 300 });
          pong = textOf(reply.dict, 'result') === 'pong';
        } catch {
          await new Promise((r) => setTimeout(r, 500));
        }
      }
      expect(pong, `no pong on 127.0.0.1:2223 within 300 s:\n${output}`).toBe(true);
      // "Keeps running until stopped": still there and still answering a few seconds later.
      await new Promise((r) => setTimeout(r, 3000));
      expect(child.exitCode).toBeNull();
      const again = await client.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 1000 });
      expect(textOf(again.dict, 'result')).toBe('pong');
    } finally {
      client.close();
    }
    expect(gitStatus(clone), 'the install left the clone dirty').toBe('');
    await stopGroup(child);
    started = null;
  }, 360_000);

  it('`npm ci` works with the committed package-lock.json and leaves the clone clean', () => {
    const clone = freshClone();
    // --ignore-scripts: the lock is what is under test here; the build ran in the case above.
    const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd: clone, encoding: 'utf8', timeout: 300_000 });
    expect(r.status, `npm ci failed:\n${r.stdout}\n${r.stderr}`).toBe(0);
    expect(gitStatus(clone)).toBe('');
  }, 320_000);
});
