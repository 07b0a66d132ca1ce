/**
 * systemd's Type=notify, as systemd sees it: a real AF_UNIX datagram socket (bound by a small python3
 * listener, since Node cannot bind one) given to bin/ngrelay as $NOTIFY_SOCKET. READY=1 must come once ng
 * answers, STOPPING=1 on SIGTERM; a path socket and an abstract (@name) one both work.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NgRawClient, textOf } from '../support/ng-client';
import { NGRELAY_BIN, REPO_ROOT } from '../support/ngrelay';
import { startProcess, type ManagedProcess } from '../support/process';
import { relayArgs } from '../support/relay';

/** Prints each datagram it receives as one JSON string line; "bound" once it listens. */
const LISTENER = `
import json, socket, sys
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + path[1:] if path.startswith("@") else path)
print(json.dumps("bound"), flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;

const dir = mkdtempSync(join(tmpdir(), 'ngrelay-sdnotify-'));
const started: ManagedProcess[] = [];
afterAll(async () => {
  for (const p of started) await p.stop();
  rmSync(dir, { recursive: true, force: true });
});

function messages(listener: ManagedProcess): string[] {
  return listener.stdoutText
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as string);
}

async function waitFor<T>(what: string, probe: () => T | undefined, deadlineMs = 15_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function notifiedRun(socketPath: string): Promise<void> {
  const listener = startProcess({ name: 'notify-listener', command: 'python3', args: ['-c', LISTENER, socketPath] });
  started.push(listener);
  await waitFor('the listener to bind', () => (messages(listener).includes('bound') ? true : undefined));

  const ngPort = 46000 + Math.floor(Math.random() * 3000);
  const portMin = 47000 + 2 * Math.floor(Math.random() * 4000);
  const relay = startProcess({
    name: 'ngrelay',
    command: process.execPath,
    args: [NGRELAY_BIN, ...relayArgs({ ngPort, portMin, portMax: portMin + 19 })],
    cwd: REPO_ROOT,
    env: { ...process.env, NOTIFY_SOCKET: socketPath },
  });
  started.push(relay);

  const ready = await waitFor('READY=1', () => {
    if (relay.hasExited) throw new Error(`ngrelay exited before READY=1\n${relay.describe()}`);
    return messages(listener).find((m) => m.split('\n').includes('READY=1'));
  });
  expect(ready.split('\n')).toContain(`MAINPID=${relay.pid}`);
  // READY means ready: ng answers at once, no retry needed.
  const client = await NgRawClient.open(ngPort);
  try {
    const pong = await client.request({ command: 'ping' }, { retransmitMs: 0, deadlineMs: 1000 });
    expect(textOf(pong.dict, 'result')).toBe('pong');
  } finally {
    client.close();
  }
  expect(messages(listener).some((m) => m.includes('STOPPING=1'))).toBe(false);

  const exit = await relay.stop();
  expect(exit.code).toBe(0);
  await waitFor('STOPPING=1', () => (messages(listener).some((m) => m.split('\n').includes('STOPPING=1')) ? true : undefined), 2000);
  expect(relay.stderrText).not.toContain('systemd notification failed');
}

describe('systemd Type=notify', () => {
  it('READY=1 once ng answers and STOPPING=1 on SIGTERM, on a socket file', async () => {
    await notifiedRun(join(dir, 'notify.sock'));
  }, 30_000);

  it('the same on an abstract socket (@name), as systemd uses', async () => {
    await notifiedRun(`@ngrelay-test-${randomBytes(6).toString('hex')}`);
  }, 30_000);

  it('an unreachable $NOTIFY_SOCKET is logged, and the relay runs on', async () => {
    const ngPort = 49000 + Math.floor(Math.random() * 1000);
    const portMin = 52000 + 2 * Math.floor(Math.random() * 2000);
    const relay = startProcess({
      name: 'ngrelay',
      command: process.execPath,
      args: [NGRELAY_BIN, ...relayArgs({ ngPort, portMin, portMax: portMin + 19 })],
      cwd: REPO_ROOT,
      env: { ...process.env, NOTIFY_SOCKET: join(dir, 'nobody-listens.sock') },
    });
    started.push(relay);
    await waitFor('the warning', () => (relay.stderrText.includes('systemd notification failed') ? true : undefined));
    expect(relay.stderrText).toContain('ENOENT');
    const client = await NgRawClient.open(ngPort);
    try {
      const pong = await client.request({ command: 'ping' }, { deadlineMs: 2000 });
      expect(textOf(pong.dict, 'result')).toBe('pong');
    } finally {
      client.close();
    }
  }, 30_000);
});
